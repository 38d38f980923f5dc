// The Nostr event (NIP-01): its model, canonical serialization, id, signing and verification.
//
// Parsing turns JSON into an Event once, at the edge; everything inside the program works on the struct. The
// canonical serialization that an id hashes is byte-identical to nostr-tools' (JSON.stringify's escaping:
// \" \\ \b \f \n \r \t as short escapes, other bytes below 0x20 as \u00xx in lower case, everything else,
// including 0x7f, '/' and all non-ASCII UTF-8, verbatim). Strings are required to be valid UTF-8, so the lone
// surrogates JSON.stringify would escape never reach us.
//
// All functions are thread-safe; Event is a plain value.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/sha256.hpp"
#include "nostr/keys.hpp"

namespace infernet::nostr {

using Tag = std::vector<std::string>;
using Tags = std::vector<Tag>;
using EventId = Hash32;

constexpr uint32_t kMaxKind = 65535;

// What an author fills in; signing adds pubkey, id and sig.
struct EventDraft {
  int64_t created_at = 0;
  uint32_t kind = 0;
  Tags tags;
  std::string content;
};

struct Event {
  EventId id{};
  std::array<uint8_t, 32> pubkey{};
  int64_t created_at = 0;
  uint32_t kind = 0;
  Tags tags;
  std::string content;
  Signature sig{};

  // The first tag whose name is `name`, or nullptr.
  const Tag* find_tag(std::string_view name) const;
  // The value (second element) of the first tag named `name`, if it has one.
  std::optional<std::string_view> tag_value(std::string_view name) const;
};

// NIP-01 storage classes, which decide how relays keep an event.
enum class KindClass { kRegular, kReplaceable, kEphemeral, kAddressable };
KindClass classify_kind(uint32_t kind);

// Bounds on what parse_event accepts. Relays tighten these; the defaults only stop absurd input.
struct EventLimits {
  size_t max_json_bytes = 4 * 1024 * 1024;
  size_t max_tags = 10'000;
  size_t max_tag_elements = 1'000;
};

// Parses and validates the shape of an event: every field present with the right JSON type, id and pubkey 64
// lower-case hex, sig 128, kind 0..65535, created_at a non-negative integer, tags an array of arrays of
// strings, all strings valid UTF-8. Does not check the id or signature (verify_event does).
// Errors: kInvalidInput naming the field ("kind: must be an integer from 0 to 65535"); kLimitExceeded.
Result<Event> parse_event(std::string_view json, const EventLimits& limits = {});

// Parses an unsigned event template ({"kind", "content", "tags"?, "created_at"?}); extra fields such as
// pubkey, id and sig are ignored because signing replaces them. created_at defaults to 0 (caller fills it).
Result<EventDraft> parse_event_draft(std::string_view json, const EventLimits& limits = {});

// Appends the canonical form [0,"<pubkey>",created_at,kind,tags,"<content>"] to `out`.
void append_canonical(std::string& out, const std::array<uint8_t, 32>& pubkey, int64_t created_at,
                      uint32_t kind, const Tags& tags, std::string_view content);

// sha256 of the canonical form.
EventId compute_id(const Event& event);

// Checks that the id is the hash of the contents and the signature is the author's over it.
// Errors: kInvalidId ("id does not match the event's contents"), kInvalidInput (pubkey not on the curve),
// kInvalidSignature.
Status verify_event(const Event& event);

// Fills pubkey, id and sig. Pure apart from the signature's fresh auxiliary randomness.
Event sign_event(EventDraft draft, const Keypair& keys);

// The event as a JSON object on one line: {"id","pubkey","created_at","kind","tags","content","sig"}.
std::string to_json(const Event& event);
void append_json(std::string& out, const Event& event);

// Appends `s` as a JSON string literal with JSON.stringify's escaping (see the top of this file).
void append_json_string(std::string& out, std::string_view s);

}  // namespace infernet::nostr
