// The credentials the local API accepts (docs/api.md, "Authentication"): an API key ("Authorization: Bearer
// inf_...", or the access_token query parameter of a WebSocket upgrade) or a NIP-98 token ("Authorization:
// Nostr <base64 event>") signed by an allowed Nostr key. This file checks one credential and names who sent
// it; the policy (which requests need one, CORS, rate limits) is in access.hpp.
//
// Thread-safe: the checker's only mutable state, the NIP-98 replay set, is behind a mutex; the key store is
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "api/api_keys.hpp"
#include "core/result.hpp"
#include "net/http.hpp"

namespace infernet::api {

// A Nostr key allowed to use the API with NIP-98, and what it may do.
struct NostrGrant {
  std::string pubkey;  // 64 lower-case hex characters
  Scope scope = Scope::kSubmit;
};

// Config api.nostr_keys: comma-separated entries "KEY" or "KEY:SCOPE", KEY an npub or 64 hex characters,
// SCOPE read or submit (default submit). Errors: kInvalidInput "api.nostr_keys: ..." naming the entry.
Result<std::vector<NostrGrant>> parse_nostr_keys(std::string_view list);

// Who a request comes from, for rate limits and logs, and what it may do.
struct Principal {
  std::string id;  // "key:<key id>", "nostr:<pubkey hex>" or "addr:<remote address>"
  Scope scope = Scope::kRead;
};

struct CredentialOptions {
  std::shared_ptr<ApiKeyStore> keys;  // null: no API key is valid
  std::vector<NostrGrant> nostr_keys;
  int64_t nip98_max_age_seconds = 60;  // config nip98.max_age_seconds
  // Accepted NIP-98 tokens remembered until they expire, so none is used twice. When this many are
  // remembered and none has expired, new tokens are refused (503) rather than forgetting one early.
  size_t max_remembered_tokens = 16384;
  // Unix seconds now, for NIP-98 windows and key expiry; empty means the system clock.
  std::function<int64_t()> now_unix;
};

class CredentialChecker {
 public:
  explicit CredentialChecker(CredentialOptions options);

  // Checks an Authorization header value against `request` (its Host, target, method and body, for NIP-98).
  // Errors: kUnauthorized with the reason for the client ("unknown or revoked API key", "expired API key",
  // "NIP-98: token expired ...", "NIP-98: token already used", "NIP-98: URL does not match ...", "NIP-98:
  // method does not match ...", "NIP-98: payload hash does not match ...", "NIP-98: key not allowed",
  // "unsupported authorization scheme ..."); kIo when the key file cannot be read; kLimitExceeded when the
  // replay set is full.
  Result<Principal> check_authorization(std::string_view authorization, const net::HttpRequest& request);

  // Checks an API key given without a scheme (the access_token parameter). Errors: as above.
  Result<Principal> check_api_key(std::string_view key);

 private:
  Result<Principal> check_nip98(std::string_view authorization, const net::HttpRequest& request, int64_t now);
  // Records an accepted token's event id until `expires_at`; false when it was already recorded.
  Result<bool> remember_token(const std::string& event_id, int64_t expires_at, int64_t now);
  int64_t now() const;

  CredentialOptions options_;
  std::mutex mu_;
  std::unordered_set<std::string> seen_;                   // guarded by mu_
  std::set<std::pair<int64_t, std::string>> seen_expiry_;  // guarded by mu_
};

}  // namespace infernet::api
