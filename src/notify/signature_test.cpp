// The delivery signature against OpenSSL's one-shot HMAC, the receiver's check, and webhook validation.
#include "notify/signature.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "core/encoding.hpp"
#include "notify/webhooks.hpp"

namespace infernet::notify {
namespace {

std::string openssl_hmac_hex(const std::string& key, const std::string& message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  return hex_encode(std::span<const uint8_t>(out, len));
}

TEST(SignatureTest, IsHmacSha256OfTimestampDotBody) {
  const std::string body = R"({"id":7,"type":"job.completed"})";
  EXPECT_EQ(sign_delivery("whsec_test-secret", 1700000000, body),
            openssl_hmac_hex("whsec_test-secret", "1700000000." + body));
  EXPECT_EQ(signature_header("k", 12, "b"), "t=12,v1=" + openssl_hmac_hex("k", "12.b"));
  // The RFC 4231-style check that the key is the secret's bytes as written.
  EXPECT_EQ(openssl_hmac_hex("key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

TEST(SignatureTest, AReceiverAcceptsOnlyTheSignedBodyUnderTheSecretInTime) {
  const std::string secret = new_webhook_secret();
  EXPECT_TRUE(secret.starts_with("whsec_"));
  EXPECT_EQ(secret.size(), 6u + 64u);
  EXPECT_NE(secret, new_webhook_secret());
  const std::string body = R"({"id":1})";
  const std::string header = signature_header(secret, 1000, body);
  EXPECT_TRUE(verify_signature(secret, header, body, 1000));
  EXPECT_TRUE(verify_signature(secret, header, body, 1200));
  EXPECT_EQ(verify_signature(secret, header, R"({"id":2})", 1000).error().message,
            "signature: does not match");
  EXPECT_EQ(verify_signature("whsec_other", header, body, 1000).error().message, "signature: does not match");
  EXPECT_EQ(verify_signature(secret, header, body, 2000).error().message,
            "signature: timestamp outside the tolerance");
  EXPECT_EQ(verify_signature(secret, "v1=abc", body, 1000).error().message, "signature: malformed");
  EXPECT_EQ(verify_signature(secret, "t=x,v1=" + std::string(64, '0'), body, 1000).error().message,
            "signature: malformed");
}

TEST(WebhookCheckTest, RefusesBadUrlsTypesAndSecretsNamingTheField) {
  auto problem = [](WebhookSpec spec) {
    auto st = check_webhook(spec);
    return st ? std::string() : st.error().message;
  };
  EXPECT_EQ(problem({.url = "http://127.0.0.1:9000/hook"}), "");
  EXPECT_EQ(problem({.url = "http://example.com/h?x=1", .types = {"job.completed", "budget.threshold"}}), "");
  EXPECT_EQ(problem({.url = ""}), "url: required");
  EXPECT_TRUE(problem({.url = "https://example.com/"}).starts_with("url: https is not supported"));
  EXPECT_TRUE(problem({.url = "ftp://example.com/"}).starts_with("url: "));
  EXPECT_TRUE(problem({.url = "http:///nohost"}).starts_with("url: "));
  EXPECT_TRUE(problem({.url = "http://a.example/" + std::string(3000, 'x')}).starts_with("url: longer than"));
  EXPECT_EQ(problem({.url = "http://h/", .types = {"job.done"}}), "types: unknown type \"job.done\"");
  EXPECT_EQ(problem({.url = "http://h/", .types = {"job.failed", "job.failed"}}),
            "types: \"job.failed\" given twice");
  EXPECT_TRUE(problem({.url = "http://h/", .secret = "short"}).starts_with("secret: must be 16 to 256"));
  EXPECT_TRUE(problem({.url = "http://h/", .secret = "sixteen chars with spaces"}).starts_with("secret:"));
}

}  // namespace
}  // namespace infernet::notify
