// Hex, base64 and UTF-8 helpers used at every edge where bytes meet text.
//
// Decoders are strict: they return kInvalidInput naming the offending position instead of guessing, because a
// lenient decoder in a signature path is a way to smuggle two spellings of one value past a check.
// All functions are thread-safe and allocate only their result.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace infernet {

using Bytes = std::vector<uint8_t>;

// Lower-case hex of the bytes.
std::string hex_encode(std::span<const uint8_t> bytes);
// Appends lower-case hex to `out` (no allocation beyond growing `out`).
void hex_append(std::string& out, std::span<const uint8_t> bytes);

// Accepts only lower-case hex of even length. Upper-case is refused: Nostr ids and keys are lower-case, and a
// second spelling of the same id would break equality checks downstream.
Result<Bytes> hex_decode(std::string_view hex);

// Decodes exactly N bytes (2N lower-case hex characters) into `out`; false on any deviation. The hot-path
// variant for ids, keys and signatures: no allocation, no error text.
bool hex_decode_fixed(std::string_view hex, std::span<uint8_t> out);

template <size_t N>
Result<std::array<uint8_t, N>> hex_decode_array(std::string_view hex) {
  std::array<uint8_t, N> out{};
  if (!hex_decode_fixed(hex, out)) {
    return make_error(ErrorCode::kInvalidInput,
                      "must be " + std::to_string(2 * N) + " lowercase hex characters");
  }
  return out;
}

// Standard base64 (RFC 4648 section 4) with '=' padding.
std::string base64_encode(std::span<const uint8_t> bytes);
// Accepts standard base64 with or without padding; refuses whitespace, the URL-safe alphabet and non-zero
// trailing bits.
Result<Bytes> base64_decode(std::string_view text);

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text);

inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace infernet
