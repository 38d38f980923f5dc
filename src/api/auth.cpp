#include "api/auth.hpp"

#include <strings.h>

#include <chrono>
#include <sstream>

#include "core/encoding.hpp"
#include "nostr/event.hpp"
#include "nostr/identity.hpp"
#include "nostr/nip98.hpp"

namespace infernet::api {
namespace {

constexpr size_t kMaxNostrKeys = 256;
// Longer than any real key or token header; refused before any decoding.
constexpr size_t kMaxAuthorizationBytes = nostr::nip98::kMaxTokenChars + 16;

Error unauthorized(std::string message) {
  return Error{ErrorCode::kUnauthorized, std::move(message)};
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && strncasecmp(text.data(), prefix.data(), prefix.size()) == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The `u` tag of a token, read without verifying anything, to learn which scheme the client signed.
std::string signed_url(std::string_view authorization) {
  std::string_view b64 = trim(authorization.substr(std::min<size_t>(6, authorization.size())));
  auto json = base64_decode(b64);
  if (!json) return "";
  auto event = nostr::parse_event(as_chars(*json));
  if (!event) return "";
  auto u = event->tag_value("u");
  return u ? std::string(*u) : "";
}

// The absolute URL a token for `request` must name. The node sees only the Host header and the target, not
// the scheme the client used (a TLS proxy may stand in front), so any of http, https, ws and wss is accepted
// as long as host and target are exactly what arrived.
std::string expected_url(std::string_view authorization, const net::HttpRequest& request) {
  std::string rest = *request.header("host") + request.target;
  std::string client = signed_url(authorization);
  for (std::string_view scheme : {"http://", "https://", "ws://", "wss://"}) {
    if (client.size() == scheme.size() + rest.size() && client.starts_with(scheme) &&
        client.ends_with(rest)) {
      return client;
    }
  }
  return "http://" + rest;
}

// nip98::verify_token's reasons, each turned into the stable text clients and docs rely on.
Error nip98_reason(const Error& error) {
  const std::string& m = error.message;
  auto has = [&](std::string_view part) { return m.find(part) != std::string::npos; };
  if (has("created_at is")) return unauthorized("NIP-98: token expired (" + m + ")");
  if (has("is for URL")) return unauthorized("NIP-98: URL does not match (" + m + ")");
  if (has("is for method")) return unauthorized("NIP-98: method does not match (" + m + ")");
  if (has("payload hash")) return unauthorized("NIP-98: payload hash does not match (" + m + ")");
  if (error.code == ErrorCode::kLimitExceeded) return unauthorized("NIP-98: token is too long");
  return unauthorized("NIP-98: " + m);
}

int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::vector<NostrGrant>> parse_nostr_keys(std::string_view list) {
  std::vector<NostrGrant> out;
  std::stringstream entries{std::string(list)};
  std::string entry;
  while (std::getline(entries, entry, ',')) {
    std::string_view item = trim(entry);
    if (item.empty()) continue;
    if (out.size() == kMaxNostrKeys) {
      return make_error(ErrorCode::kLimitExceeded,
                        "api.nostr_keys: at most " + std::to_string(kMaxNostrKeys) + " keys");
    }
    NostrGrant grant;
    size_t colon = item.find(':');
    if (colon != std::string_view::npos) {
      auto scope = parse_scope("api.nostr_keys", item.substr(colon + 1));
      if (!scope) return tl::unexpected(scope.error());
      grant.scope = *scope;
      item = item.substr(0, colon);
    }
    auto key = nostr::parse_public_key(item);
    if (!key) {
      return make_error(ErrorCode::kInvalidInput,
                        "api.nostr_keys: '" + std::string(item) + "': " + key.error().message);
    }
    grant.pubkey = key->hex();
    out.push_back(std::move(grant));
  }
  return out;
}

CredentialChecker::CredentialChecker(CredentialOptions options) : options_(std::move(options)) {}

int64_t CredentialChecker::now() const {
  return options_.now_unix ? options_.now_unix() : system_now();
}

Result<Principal> CredentialChecker::check_api_key(std::string_view key) {
  if (!options_.keys) return tl::unexpected(unauthorized("unknown or revoked API key"));
  auto record = options_.keys->verify(key, now());
  if (!record) return tl::unexpected(record.error());
  return Principal{"key:" + record->id, record->scope};
}

Result<Principal> CredentialChecker::check_authorization(std::string_view authorization,
                                                         const net::HttpRequest& request) {
  if (authorization.size() > kMaxAuthorizationBytes) {
    return tl::unexpected(unauthorized("authorization: header is too long"));
  }
  if (starts_with_nocase(authorization, "Bearer ")) return check_api_key(trim(authorization.substr(7)));
  if (starts_with_nocase(authorization, "Nostr ")) return check_nip98(authorization, request, now());
  return tl::unexpected(
      unauthorized("unsupported authorization scheme (use 'Bearer <API key>' or 'Nostr "
                   "<base64 NIP-98 event>')"));
}

Result<Principal> CredentialChecker::check_nip98(std::string_view authorization,
                                                 const net::HttpRequest& request, int64_t now) {
  if (request.header("host") == nullptr) {
    return tl::unexpected(unauthorized("NIP-98: the request has no Host header to build its URL from"));
  }
  std::string url = expected_url(authorization, request);
  nostr::nip98::RequestTarget target{url, request.method, std::nullopt};
  if (!request.body.empty()) target.body = as_bytes(request.body);
  auto event = nostr::nip98::verify_token(authorization, target, now, options_.nip98_max_age_seconds);
  if (!event) return tl::unexpected(nip98_reason(event.error()));

  std::string pubkey = hex_encode(event->pubkey);
  const NostrGrant* grant = nullptr;
  for (const auto& g : options_.nostr_keys) {
    if (g.pubkey == pubkey) grant = &g;
  }
  if (grant == nullptr) return tl::unexpected(unauthorized("NIP-98: key " + pubkey + " is not allowed"));
  // Only verified tokens of allowed keys are remembered, so nobody else can fill the replay set.
  auto fresh = remember_token(hex_encode(event->id), event->created_at + options_.nip98_max_age_seconds, now);
  if (!fresh) return tl::unexpected(fresh.error());
  if (!*fresh) return tl::unexpected(unauthorized("NIP-98: token already used"));
  return Principal{"nostr:" + pubkey, grant->scope};
}

Result<bool> CredentialChecker::remember_token(const std::string& event_id, int64_t expires_at, int64_t now) {
  std::lock_guard lock(mu_);
  while (!seen_expiry_.empty() && seen_expiry_.begin()->first < now) {
    seen_.erase(seen_expiry_.begin()->second);
    seen_expiry_.erase(seen_expiry_.begin());
  }
  if (seen_.contains(event_id)) return false;
  if (seen_.size() >= options_.max_remembered_tokens) {
    return make_error(ErrorCode::kLimitExceeded, "NIP-98: too many tokens in the last " +
                                                     std::to_string(options_.nip98_max_age_seconds) +
                                                     " s; try again shortly");
  }
  seen_.insert(event_id);
  seen_expiry_.emplace(expires_at, event_id);
  return true;
}

}  // namespace infernet::api
