// Who may use the local API, from where, and how often (docs/api.md, "Authentication"): a wrapper around any
// net::ServerHandlers that decides before routing, so a refused request never reaches a route and changes
// nothing, whatever paths the wrapped handlers serve.
//
// In order, for every HTTP request and WebSocket upgrade:
//   1. Browsers: a request whose Origin is not http://<Host> is refused (403 cross_origin; an upgrade before
//      the handshake) unless the origin is in cors_origins. A CORS preflight (OPTIONS with
//      Access-Control-Request-Method) from an allowed origin is answered here, without credentials.
//   2. Credentials: an Authorization header is always checked, from anywhere. Without one, mode kAuto lets a
//      request through when it comes from a loopback address and names a loopback Host (so a DNS-rebinding
//      page cannot pass for a local tool), unless it is a cross-origin request allowed only by "*"; anything
//      else is 401 "missing credentials". WebSocket upgrades may carry an API key as the access_token query
//      parameter instead (browsers cannot set headers there); it is removed from the target before routing.
//   3. Scope: GET and HEAD (and upgrades) need read, every other method submit (403 insufficient_scope).
//   4. Rate: one token bucket per principal (429 rate_limited with Retry-After); failed credentials count
//      against the remote address.
// HTTP refusals are JSON errors (api_error.hpp) with WWW-Authenticate on 401; a refused upgrade after step 1
// is accepted and closed at once with 4401, 4403 or 4429 and the reason. Responses to an allowed origin
// carry Access-Control-Allow-Origin and Vary: Origin.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.hpp"
#include "api/rate_limit.hpp"
#include "core/result.hpp"
#include "net/server.hpp"

namespace infernet::api {

// Config api.auth.
enum class AuthMode {
  kAuto,      // loopback requests without credentials are allowed; others need credentials
  kRequired,  // every request needs credentials
};

// "auto" or "required". Errors: kInvalidInput "api.auth: expected auto or required, got '...'".
Result<AuthMode> parse_auth_mode(std::string_view text);

// Config api.cors_origins: comma-separated origins "scheme://host[:port]" (http or https, no path, compared
// case-insensitively, stored lower-case) or "*". Errors: kInvalidInput "api.cors_origins: ..." naming the
// entry.
Result<std::vector<std::string>> parse_cors_origins(std::string_view list);

// Close codes of a refused WebSocket upgrade: the HTTP status plus 4000, as the job stream's.
constexpr uint16_t kCloseUnauthorized = 4401;
constexpr uint16_t kCloseForbidden = 4403;
constexpr uint16_t kCloseRateLimited = 4429;

struct AccessOptions {
  AuthMode mode = AuthMode::kAuto;
  CredentialOptions credentials;
  std::vector<std::string> cors_origins;  // as parse_cors_origins returns them; empty: no cross-origin use
  RateLimitOptions rate_limit;
  // Monotonic milliseconds for the rate limiter; empty means the steady clock.
  std::function<int64_t()> steady_ms;
};

// The handlers `inner` wrapped in the checks above. The returned handlers share one checker and limiter
// (copies of them share state) and may be called from any thread.
net::ServerHandlers guard_handlers(net::ServerHandlers inner, AccessOptions options);

// True for 127.0.0.0/8, ::1 and their IPv4-mapped forms.
bool is_loopback_address(std::string_view address);

}  // namespace infernet::api
