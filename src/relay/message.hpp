// The relay's side of NIP-01 (and NIP-42, NIP-45) on the wire: client messages parsed into structs at the
// edge, relay messages written straight to text.
//
// parse_client_message never throws and never trusts its input: every failure is a MessageError that says
// what to answer (an OK false with the event id when one could be read, CLOSED for a subscription, NOTICE
// otherwise). Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.hpp"
#include "nostr/event.hpp"
#include "nostr/filter.hpp"

namespace infernet::relay {

struct EventMessage {
  nostr::Event event;
};
struct ReqMessage {
  std::string subscription_id;
  std::vector<nostr::Filter> filters;
};
struct CountMessage {
  std::string subscription_id;
  std::vector<nostr::Filter> filters;
};
struct CloseMessage {
  std::string subscription_id;
};
struct AuthMessage {
  nostr::Event event;
};
using ClientMessage = std::variant<EventMessage, ReqMessage, CountMessage, CloseMessage, AuthMessage>;

struct MessageLimits {
  size_t max_message_bytes = 128 * 1024;
  size_t max_subscription_id_length = 64;
  size_t max_filters = 10;
  nostr::EventLimits event;
  nostr::FilterLimits filter;
};

// Why a message was refused, with what the relay needs to answer it in the right shape.
struct MessageError {
  Error error;
  std::string command;                  // "EVENT", "REQ", ... or empty when not even that could be read
  std::optional<std::string> event_id;  // hex, for ["OK", id, false, ...]
  std::optional<std::string> subscription_id;  // for ["CLOSED", sub, ...]
};

tl::expected<ClientMessage, MessageError> parse_client_message(std::string_view text,
                                                               const MessageLimits& limits);

// Relay -> client messages, as a client (RelayPool) reads them.
struct RelayEvent {
  std::string subscription_id;
  nostr::Event event;  // parsed, not yet verified
};
struct RelayOk {
  std::string event_id;  // hex
  bool accepted = false;
  std::string message;
};
struct RelayEose {
  std::string subscription_id;
};
struct RelayClosed {
  std::string subscription_id;
  std::string message;
};
struct RelayNotice {
  std::string message;
};
struct RelayAuthChallenge {
  std::string challenge;
};
struct RelayCount {
  std::string subscription_id;
  uint64_t count = 0;
};
using RelayMessage =
    std::variant<RelayEvent, RelayOk, RelayEose, RelayClosed, RelayNotice, RelayAuthChallenge, RelayCount>;

// Errors: kInvalidInput naming the problem (a relay is just another untrusted peer); kLimitExceeded.
Result<RelayMessage> parse_relay_message(std::string_view text, const nostr::EventLimits& limits);

// Relay -> client messages. `event_json` is an event already serialized with nostr::to_json.
std::string event_message(std::string_view subscription_id, std::string_view event_json);
std::string ok_message(std::string_view event_id_hex, bool accepted, std::string_view message);
std::string eose_message(std::string_view subscription_id);
std::string closed_message(std::string_view subscription_id, std::string_view message);
std::string notice_message(std::string_view message);
std::string auth_message(std::string_view challenge);
std::string count_message(std::string_view subscription_id, size_t count);

// Client -> relay messages, as a client writes them.
std::string client_event_message(std::string_view event_json);
std::string client_auth_message(std::string_view event_json);
std::string client_req_message(std::string_view subscription_id, const std::vector<nostr::Filter>& filters);
std::string client_close_message(std::string_view subscription_id);

}  // namespace infernet::relay
