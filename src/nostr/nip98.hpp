// NIP-98 HTTP authentication: a signed kind-27235 event in "Authorization: Nostr <base64(event)>".
//
// A token binds a key to one request: its exact absolute URL (query included), its method and, when the
// request has a body, the sha256 of that body. Verification checks all of them plus a time window around now,
// so a token captured from one request cannot be replayed against another or later. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "nostr/event.hpp"
#include "nostr/keys.hpp"

namespace infernet::nostr::nip98 {

constexpr uint32_t kKind = 27235;
constexpr int64_t kDefaultMaxAgeSeconds = 60;
// Tokens are small; anything bigger is refused before it is decoded.
constexpr size_t kMaxTokenChars = 64 * 1024;

struct RequestTarget {
  std::string_view url;     // absolute, as the client sent it
  std::string_view method;  // compared case-insensitively
  // The request body, when there is one. A token that carries a payload tag must match it.
  std::optional<std::span<const uint8_t>> body;
};

// Returns the full header value, "Nostr <base64>". With a body, adds ["payload", sha256 hex of the body].
std::string create_token(const Keypair& keys, const RequestTarget& target, int64_t now);

// Checks the header value against the request. Returns the verified event (its pubkey is the caller's
// identity). Errors: kInvalidInput for a malformed header, base64 or event; kInvalidId / kInvalidSignature
// from verification; kUnauthorized for a wrong kind, a created_at outside now +- max_age_seconds, a URL or
// method that differs, a missing or different payload hash.
Result<Event> verify_token(std::string_view authorization, const RequestTarget& target, int64_t now,
                           int64_t max_age_seconds = kDefaultMaxAgeSeconds);

}  // namespace infernet::nostr::nip98
