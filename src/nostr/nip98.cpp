#include "nostr/nip98.hpp"

#include <strings.h>

#include "core/encoding.hpp"
#include "core/sha256.hpp"

namespace infernet::nostr::nip98 {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

Error unauthorized(std::string message) {
  return Error{ErrorCode::kUnauthorized, std::move(message)};
}

}  // namespace

std::string create_token(const Keypair& keys, const RequestTarget& target, int64_t now) {
  EventDraft draft;
  draft.kind = kKind;
  draft.created_at = now;
  draft.tags = {{"u", std::string(target.url)}, {"method", std::string(target.method)}};
  if (target.body && !target.body->empty()) {
    draft.tags.push_back({"payload", hex_encode(sha256(*target.body))});
  }
  Event e = sign_event(std::move(draft), keys);
  return "Nostr " + base64_encode(as_bytes(to_json(e)));
}

Result<Event> verify_token(std::string_view authorization, const RequestTarget& target, int64_t now,
                           int64_t max_age_seconds) {
  constexpr std::string_view kScheme = "Nostr ";
  if (authorization.size() > kMaxTokenChars) {
    return make_error(ErrorCode::kLimitExceeded, "authorization token is too long");
  }
  if (authorization.size() < kScheme.size() || !iequals(authorization.substr(0, kScheme.size()), kScheme)) {
    return make_error(ErrorCode::kInvalidInput, "authorization: expected the scheme 'Nostr <base64 event>'");
  }
  std::string_view b64 = authorization.substr(kScheme.size());
  while (!b64.empty() && b64.front() == ' ')
    b64.remove_prefix(1);
  auto json = base64_decode(b64);
  if (!json) return make_error(ErrorCode::kInvalidInput, "authorization: " + json.error().message);
  auto event = parse_event(as_chars(*json));
  if (!event) return tl::unexpected(with_context(event.error(), "authorization event"));
  if (auto st = verify_event(*event); !st)
    return tl::unexpected(with_context(st.error(), "authorization event"));

  if (event->kind != kKind) {
    return tl::unexpected(
        unauthorized("authorization event has kind " + std::to_string(event->kind) + ", expected 27235"));
  }
  int64_t skew = event->created_at - now;
  if (skew > max_age_seconds || -skew > max_age_seconds) {
    return tl::unexpected(unauthorized("authorization event created_at is " + std::to_string(skew) +
                                       " s from now; the window is +-" + std::to_string(max_age_seconds) +
                                       " s"));
  }
  auto u = event->tag_value("u");
  if (!u) return tl::unexpected(unauthorized("authorization event has no 'u' tag"));
  if (*u != target.url) {
    return tl::unexpected(unauthorized("authorization is for URL '" + std::string(*u) + "', not '" +
                                       std::string(target.url) + "'"));
  }
  auto method = event->tag_value("method");
  if (!method) return tl::unexpected(unauthorized("authorization event has no 'method' tag"));
  if (!iequals(*method, target.method)) {
    return tl::unexpected(unauthorized("authorization is for method " + std::string(*method) + ", not " +
                                       std::string(target.method)));
  }
  auto payload = event->tag_value("payload");
  bool has_body = target.body && !target.body->empty();
  if (has_body) {
    if (!payload)
      return tl::unexpected(unauthorized("request has a body but the authorization has no payload hash"));
    if (*payload != hex_encode(sha256(*target.body))) {
      return tl::unexpected(unauthorized("authorization payload hash does not match the request body"));
    }
  } else if (payload && *payload != hex_encode(sha256(std::string_view()))) {
    return tl::unexpected(unauthorized("authorization carries a payload hash but the request has no body"));
  }
  return std::move(*event);
}

}  // namespace infernet::nostr::nip98
