#include "notify/signature.hpp"

#include <openssl/crypto.h>

#include <array>
#include <charconv>
#include <span>

#include "core/encoding.hpp"
#include "core/random.hpp"
#include "core/sha256.hpp"

namespace infernet::notify {
namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

std::string sign_delivery(std::string_view secret, int64_t timestamp, std::string_view body) {
  const std::string prefix = std::to_string(timestamp) + ".";
  return hex_encode(hmac_sha256(bytes_of(secret), {bytes_of(prefix), bytes_of(body)}));
}

std::string signature_header(std::string_view secret, int64_t timestamp, std::string_view body) {
  return "t=" + std::to_string(timestamp) + ",v1=" + sign_delivery(secret, timestamp, body);
}

Status verify_signature(std::string_view secret, std::string_view header, std::string_view body, int64_t now,
                        int64_t tolerance_s) {
  std::string_view t;
  std::string_view v1;
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view part = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (part.starts_with("t=")) t = part.substr(2);
    if (part.starts_with("v1=")) v1 = part.substr(3);
  }
  int64_t timestamp = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), timestamp);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v1.size() != 64) {
    return make_error(ErrorCode::kInvalidInput, "signature: malformed");
  }
  const std::string expected = sign_delivery(secret, timestamp, body);
  if (CRYPTO_memcmp(expected.data(), v1.data(), expected.size()) != 0) {
    return make_error(ErrorCode::kInvalidInput, "signature: does not match");
  }
  if (timestamp < now - tolerance_s || timestamp > now + tolerance_s) {
    return make_error(ErrorCode::kInvalidInput, "signature: timestamp outside the tolerance");
  }
  return {};
}

std::string new_webhook_secret() {
  std::array<uint8_t, 32> key{};
  fill_random(key);
  return "whsec_" + hex_encode(key);
}

}  // namespace infernet::notify
