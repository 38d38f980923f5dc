#include "nostr/nip98.hpp"

#include <gtest/gtest.h>

#include "core/encoding.hpp"

namespace infernet::nostr::nip98 {
namespace {

constexpr int64_t kNow = 1'800'000'000;
const std::string kUrl = "https://node.example/api/v1/jobs?limit=5";

TEST(Nip98, TokenVerifiesForItsRequest) {
  auto keys = Keypair::generate();
  std::string body = R"({"model":"tiny"})";
  RequestTarget target{kUrl, "POST", as_bytes(body)};
  std::string token = create_token(keys, target, kNow);
  ASSERT_TRUE(token.starts_with("Nostr "));
  auto ev = verify_token(token, target, kNow + 30);
  ASSERT_TRUE(ev) << ev.error().to_string();
  EXPECT_EQ(ev->pubkey, keys.public_key().bytes());
  // Method is case-insensitive; padding-free base64 is accepted.
  RequestTarget lower{kUrl, "post", as_bytes(body)};
  EXPECT_TRUE(verify_token(token, lower, kNow));
  std::string unpadded = token;
  while (unpadded.back() == '=')
    unpadded.pop_back();
  EXPECT_TRUE(verify_token(unpadded, target, kNow));
}

TEST(Nip98, RefusesEveryMismatch) {
  auto keys = Keypair::generate();
  std::string body = "abc";
  RequestTarget target{kUrl, "POST", as_bytes(body)};
  std::string token = create_token(keys, target, kNow);
  auto expect_unauthorized = [&](const RequestTarget& t, int64_t now, const char* fragment) {
    auto r = verify_token(token, t, now);
    ASSERT_FALSE(r) << fragment;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthorized) << r.error().message;
    EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  };
  expect_unauthorized({kUrl + "&x=1", "POST", as_bytes(body)}, kNow, "URL");
  expect_unauthorized({kUrl, "GET", as_bytes(body)}, kNow, "method");
  std::string other = "abd";
  expect_unauthorized({kUrl, "POST", as_bytes(other)}, kNow, "payload");
  expect_unauthorized({kUrl, "POST", std::nullopt}, kNow, "payload");
  expect_unauthorized(target, kNow + 61, "window");
  expect_unauthorized(target, kNow - 61, "window");

  // No payload tag while the request has a body.
  std::string bodiless = create_token(keys, {kUrl, "POST", std::nullopt}, kNow);
  auto r = verify_token(bodiless, target, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthorized);
}

TEST(Nip98, RefusesMalformedAndForgedTokens) {
  auto keys = Keypair::generate();
  RequestTarget target{kUrl, "GET", std::nullopt};
  EXPECT_EQ(verify_token("Bearer abc", target, kNow).error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(verify_token("Nostr !!!", target, kNow).error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(verify_token("Nostr " + base64_encode(as_bytes("{}")), target, kNow).error().code,
            ErrorCode::kInvalidInput);
  EXPECT_EQ(verify_token(std::string(kMaxTokenChars + 1, 'a'), target, kNow).error().code,
            ErrorCode::kLimitExceeded);

  // A valid event of the wrong kind.
  Event note = sign_event({kNow, 1, {{"u", kUrl}, {"method", "GET"}}, ""}, keys);
  auto r = verify_token("Nostr " + base64_encode(as_bytes(to_json(note))), target, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthorized);

  // A token whose URL was edited after signing.
  Event good = sign_event({kNow, kKind, {{"u", "https://other/"}, {"method", "GET"}}, ""}, keys);
  good.tags[0][1] = kUrl;
  r = verify_token("Nostr " + base64_encode(as_bytes(to_json(good))), target, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidId);
}

}  // namespace
}  // namespace infernet::nostr::nip98
