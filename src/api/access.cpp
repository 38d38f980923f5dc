#include "api/access.hpp"

#include <algorithm>
#include <memory>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

#include "api/api_error.hpp"
#include "api/job_stream.hpp"
#include "api/routes.hpp"

namespace infernet::api {
namespace {

constexpr size_t kMaxCorsOrigins = 64;
constexpr size_t kMaxOriginBytes = 256;
constexpr std::string_view kAccessToken = "access_token";
constexpr std::string_view kChallenge = R"(Bearer realm="infernet", Nostr realm="infernet")";
constexpr std::string_view kPreflightMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
constexpr std::string_view kPreflightHeaders = "Authorization, Content-Type";
constexpr std::string_view kPreflightMaxAge = "600";
constexpr std::string_view kExposedHeaders = "Location, Retry-After, WWW-Authenticate";

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s;
}

// The host part of a Host header: "127.0.0.1:7448" -> "127.0.0.1", "[::1]:7448" -> "::1".
std::string_view host_name(std::string_view host) {
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(1, close - 1);
  }
  size_t colon = host.find(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool names_loopback_host(const net::HttpRequest& request) {
  const std::string* host = request.header("host");
  if (host == nullptr) return true;  // no name for a rebinding page to hide behind
  std::string name = lower(host_name(*host));
  return name == "localhost" || is_loopback_address(name);
}

// The query parameters of a target other than access_token, and access_token's value if present.
struct SplitTarget {
  std::string target;  // without access_token
  std::optional<std::string> access_token;
};

SplitTarget split_access_token(const net::HttpRequest& request) {
  std::string_view query = request.query();
  SplitTarget out{std::string(request.path()), std::nullopt};
  std::string rest;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t amp = query.find('&', start);
    std::string_view param = query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    std::string_view name = param.substr(0, param.find('='));
    if (name == kAccessToken) {
      size_t eq = param.find('=');
      out.access_token = std::string(eq == std::string_view::npos ? "" : param.substr(eq + 1));
    } else if (!param.empty()) {
      rest += (rest.empty() ? "" : "&") + std::string(param);
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  if (!rest.empty()) out.target += "?" + rest;
  return out;
}

// Why a request was not let through; becomes a JSON error (HTTP) or a close frame (WebSocket).
struct Refusal {
  int status = 401;
  std::string code;
  std::string message;
  int64_t retry_after_seconds = 0;  // 429 only
};

Refusal rate_limited(int64_t retry_after) {
  return Refusal{429, "rate_limited",
                 "rate limited: too many requests; retry after " + std::to_string(retry_after) + " s",
                 retry_after};
}

Refusal credential_refusal(const Error& error) {
  if (error.code == ErrorCode::kUnauthorized) return Refusal{401, "unauthorized", error.message, 0};
  if (error.code == ErrorCode::kLimitExceeded) {
    Refusal r = rate_limited(1);
    r.message = error.message;
    return r;
  }
  ApiError api = to_api_error(error);  // kIo: the key file could not be read (503)
  return Refusal{api.status, api.code, api.message, 0};
}

net::HttpResponse to_response(const Refusal& refusal) {
  auto response = error_response(ApiError{refusal.status, refusal.code, refusal.message, ""});
  if (refusal.status == 401) response.headers.emplace_back("WWW-Authenticate", std::string(kChallenge));
  if (refusal.status == 429) {
    response.headers.emplace_back("Retry-After", std::to_string(refusal.retry_after_seconds));
  }
  return response;
}

// What happens to one request; shared by every copy of the guarded handlers.
class Gate {
 public:
  Gate(net::ServerHandlers inner, AccessOptions options)
      : inner_(std::move(inner)),
        mode_(options.mode),
        origins_(std::move(options.cors_origins)),
        credentials_(std::move(options.credentials)),
        limiter_(options.rate_limit, std::move(options.steady_ms)) {}

  net::HttpResponse http(const net::HttpRequest& request) {
    Origin origin = classify_origin(request);
    if (origin.refused) return finish(cross_origin_refusal(), origin);
    if (origin.cross && request.method == "OPTIONS" && request.header("access-control-request-method")) {
      return preflight(origin);
    }
    SplitTarget split = split_access_token(request);
    if (split.access_token) {
      return finish(error_response(ApiError{400, "invalid_input",
                                            "access_token: accepted on WebSocket upgrades only; send "
                                            "'Authorization: Bearer <key>' instead",
                                            "access_token"}),
                    origin);
    }
    Scope needed = (request.method == "GET" || request.method == "HEAD") ? Scope::kRead : Scope::kSubmit;
    auto admitted = admit(request, std::nullopt, origin, needed);
    if (!admitted) return finish(to_response(admitted.error()), origin);
    if (!inner_.http) return finish(to_response(Refusal{404, "not_found", "no such endpoint", 0}), origin);
    return finish(inner_.http(request), origin);
  }

  std::unique_ptr<net::WebSocketHandler> websocket(std::shared_ptr<net::WebSocketConnection> connection,
                                                   const net::HttpRequest& request) {
    Origin origin = classify_origin(request);
    if (origin.refused) return nullptr;  // 403 before the handshake, as for any other origin
    SplitTarget split = split_access_token(request);
    auto admitted = admit(request, split.access_token, origin, Scope::kRead);
    if (!admitted) {
      const Refusal& refused = admitted.error();
      return refuse_stream(*connection, static_cast<uint16_t>(4000 + refused.status), refused.message);
    }
    if (!inner_.websocket) return nullptr;
    if (!split.access_token) return inner_.websocket(std::move(connection), request);
    net::HttpRequest routed = request;
    routed.target = std::move(split.target);
    return inner_.websocket(std::move(connection), routed);
  }

 private:
  struct Origin {
    bool cross = false;          // a browser request from another origin that is allowed
    bool refused = false;        // ... that is not allowed
    bool wildcard_only = false;  // allowed only because cors_origins has "*"
    std::string value;
  };

  Origin classify_origin(const net::HttpRequest& request) const {
    Origin out;
    if (!is_cross_origin(request)) return out;
    const std::string* origin = request.header("origin");
    out.value = origin != nullptr ? *origin : "";
    std::string key = lower(out.value);
    bool listed = std::find(origins_.begin(), origins_.end(), key) != origins_.end();
    bool wildcard = std::find(origins_.begin(), origins_.end(), "*") != origins_.end();
    out.cross = listed || wildcard;
    out.refused = !out.cross;
    out.wildcard_only = !listed && wildcard;
    return out;
  }

  // The principal of an admitted request, or the refusal to send.
  tl::expected<Principal, Refusal> admit(const net::HttpRequest& request,
                                         const std::optional<std::string>& access_token, const Origin& origin,
                                         Scope needed) {
    const std::string* authorization = request.header("authorization");
    Result<Principal> principal = tl::unexpected(Error{ErrorCode::kUnauthorized, "missing credentials"});
    if (authorization != nullptr && access_token) {
      principal = tl::unexpected(
          Error{ErrorCode::kUnauthorized, "send one credential: the Authorization header or access_token"});
    } else if (authorization != nullptr) {
      principal = credentials_.check_authorization(*authorization, request);
    } else if (access_token) {
      principal = credentials_.check_api_key(*access_token);
    } else if (mode_ == AuthMode::kAuto && !origin.wildcard_only &&
               is_loopback_address(request.remote_address) && names_loopback_host(request)) {
      principal = Principal{"addr:" + request.remote_address, Scope::kSubmit};
    }
    if (!principal) {
      spdlog::debug("api: {} {} from {} refused: {}", request.method, request.path(), request.remote_address,
                    principal.error().message);
      // Failed attempts spend the address's requests, so guessing costs the guesser.
      RateDecision rate = limiter_.take("addr:" + request.remote_address);
      if (!rate.allowed) return tl::unexpected(rate_limited(rate.retry_after_seconds));
      return tl::unexpected(credential_refusal(principal.error()));
    }
    if (!scope_allows(principal->scope, needed)) {
      return tl::unexpected(Refusal{403, "insufficient_scope",
                                    "this credential has scope " + std::string(scope_name(principal->scope)) +
                                        "; " + request.method + " needs " + std::string(scope_name(needed)),
                                    0});
    }
    RateDecision rate = limiter_.take(principal->id);
    if (!rate.allowed) return tl::unexpected(rate_limited(rate.retry_after_seconds));
    return std::move(*principal);
  }

  static net::HttpResponse cross_origin_refusal() {
    return to_response(Refusal{403, "cross_origin",
                               "requests from other origins are refused (Origin must be http://<Host> or one "
                               "of api.cors_origins)",
                               0});
  }

  net::HttpResponse preflight(const Origin& origin) const {
    net::HttpResponse response;
    response.status = 204;
    response.headers.emplace_back("Access-Control-Allow-Methods", std::string(kPreflightMethods));
    response.headers.emplace_back("Access-Control-Allow-Headers", std::string(kPreflightHeaders));
    response.headers.emplace_back("Access-Control-Max-Age", std::string(kPreflightMaxAge));
    return finish(std::move(response), origin);
  }

  // Adds the CORS headers an allowed origin needs to read the response.
  net::HttpResponse finish(net::HttpResponse response, const Origin& origin) const {
    if (origin.cross) {
      response.headers.emplace_back("Access-Control-Allow-Origin", origin.value);
      response.headers.emplace_back("Access-Control-Expose-Headers", std::string(kExposedHeaders));
    }
    if (!origins_.empty()) response.headers.emplace_back("Vary", "Origin");
    return response;
  }

  net::ServerHandlers inner_;
  AuthMode mode_;
  std::vector<std::string> origins_;
  CredentialChecker credentials_;
  RateLimiter limiter_;
};

}  // namespace

Result<AuthMode> parse_auth_mode(std::string_view text) {
  if (text == "auto") return AuthMode::kAuto;
  if (text == "required") return AuthMode::kRequired;
  return make_error(ErrorCode::kInvalidInput,
                    "api.auth: expected auto or required, got '" + std::string(text) + "'");
}

Result<std::vector<std::string>> parse_cors_origins(std::string_view list) {
  std::vector<std::string> out;
  std::stringstream entries{std::string(list)};
  std::string entry;
  while (std::getline(entries, entry, ',')) {
    std::string origin = lower(trim(entry));
    if (origin.empty()) continue;
    if (out.size() == kMaxCorsOrigins) {
      return make_error(ErrorCode::kLimitExceeded,
                        "api.cors_origins: at most " + std::to_string(kMaxCorsOrigins) + " origins");
    }
    if (origin != "*") {
      size_t scheme_end = origin.find("://");
      std::string_view scheme = std::string_view(origin).substr(0, scheme_end);
      std::string_view host =
          scheme_end == std::string::npos ? "" : std::string_view(origin).substr(scheme_end + 3);
      bool ok = (scheme == "http" || scheme == "https") && !host.empty() &&
                origin.size() <= kMaxOriginBytes && host.find_first_of("/?#@ ") == std::string_view::npos;
      if (!ok) {
        return make_error(ErrorCode::kInvalidInput,
                          "api.cors_origins: '" + origin +
                              "' is not an origin (expected http(s)://host[:port] without a path, or *)");
      }
    }
    out.push_back(std::move(origin));
  }
  return out;
}

bool is_loopback_address(std::string_view address) {
  constexpr std::string_view kMapped = "::ffff:";
  if (address.starts_with(kMapped)) address.remove_prefix(kMapped.size());
  if (address == "::1") return true;
  // 127.0.0.0/8 in dotted form: "127." and three more numbers.
  if (!address.starts_with("127.")) return false;
  int dots = 0;
  for (char c : address) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

net::ServerHandlers guard_handlers(net::ServerHandlers inner, AccessOptions options) {
  auto gate = std::make_shared<Gate>(std::move(inner), std::move(options));
  net::ServerHandlers guarded;
  guarded.http = [gate](const net::HttpRequest& request) { return gate->http(request); };
  guarded.websocket = [gate](std::shared_ptr<net::WebSocketConnection> connection,
                             const net::HttpRequest& request) {
    return gate->websocket(std::move(connection), request);
  };
  return guarded;
}

}  // namespace infernet::api
