#include "core/encoding.hpp"

#include <cstring>

namespace infernet {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

constexpr uint8_t kInvalid = 0xff;

// kInvalid for anything but '0'-'9' and 'a'-'f'.
constexpr std::array<uint8_t, 256> make_hex_table() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t)
    v = kInvalid;
  for (int i = 0; i < 10; ++i)
    t['0' + i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 6; ++i)
    t['a' + i] = static_cast<uint8_t>(10 + i);
  return t;
}
constexpr auto kHexTable = make_hex_table();

constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<uint8_t, 256> make_base64_table() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t)
    v = kInvalid;
  for (int i = 0; i < 64; ++i)
    t[static_cast<uint8_t>(kBase64Alphabet[i])] = static_cast<uint8_t>(i);
  return t;
}
constexpr auto kBase64Table = make_base64_table();

}  // namespace

std::string hex_encode(std::span<const uint8_t> bytes) {
  std::string out;
  hex_append(out, bytes);
  return out;
}

void hex_append(std::string& out, std::span<const uint8_t> bytes) {
  size_t pos = out.size();
  out.resize(pos + bytes.size() * 2);
  for (uint8_t b : bytes) {
    out[pos++] = kHexDigits[b >> 4];
    out[pos++] = kHexDigits[b & 0xf];
  }
}

bool hex_decode_fixed(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned hi = kHexTable[static_cast<uint8_t>(hex[2 * i])];
    unsigned lo = kHexTable[static_cast<uint8_t>(hex[2 * i + 1])];
    if ((hi | lo) > 0xf) return false;
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

Result<Bytes> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return make_error(ErrorCode::kInvalidInput, "hex has an odd number of characters");
  }
  for (size_t i = 0; i < hex.size(); ++i) {
    if (kHexTable[static_cast<uint8_t>(hex[i])] == kInvalid) {
      bool upper = hex[i] >= 'A' && hex[i] <= 'F';
      return make_error(ErrorCode::kInvalidInput,
                        std::string(upper ? "uppercase hex is not accepted" : "not a hex character") +
                            " at position " + std::to_string(i));
    }
  }
  Bytes out(hex.size() / 2);
  hex_decode_fixed(hex, out);
  return out;
}

std::string base64_encode(std::span<const uint8_t> bytes) {
  // Sized once and written by index: NIP-44 payloads are base64 and this sits on their hot path.
  std::string out((bytes.size() + 2) / 3 * 4, '=');
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out[o++] = kBase64Alphabet[(v >> 18) & 63];
    out[o++] = kBase64Alphabet[(v >> 12) & 63];
    out[o++] = kBase64Alphabet[(v >> 6) & 63];
    out[o++] = kBase64Alphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest != 0) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (rest == 2) v |= uint32_t{bytes[i + 1]} << 8;
    out[o++] = kBase64Alphabet[(v >> 18) & 63];
    out[o++] = kBase64Alphabet[(v >> 12) & 63];
    if (rest == 2) out[o] = kBase64Alphabet[(v >> 6) & 63];
  }
  return out;
}

Result<Bytes> base64_decode(std::string_view text) {
  size_t len = text.size();
  if (len % 4 == 0 && len >= 4) {
    if (text[len - 1] == '=') --len;
    if (text[len - 1] == '=') --len;
  }
  if (len % 4 == 1) return make_error(ErrorCode::kInvalidInput, "base64 has an impossible length");
  Bytes out(len * 3 / 4);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; ++i) {
    uint8_t v = kBase64Table[static_cast<uint8_t>(text[i])];
    if (v == kInvalid) {
      return make_error(ErrorCode::kInvalidInput, "not a base64 character at position " + std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = static_cast<uint8_t>(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return make_error(ErrorCode::kInvalidInput, "base64 has non-zero trailing bits");
  return out;
}

bool is_valid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Skip ASCII eight bytes at a time; most event content is ASCII.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= n) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace infernet
