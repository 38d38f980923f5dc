#include "nostr/nip44.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>

#include "core/encoding.hpp"
#include "core/random.hpp"
#include "core/sha256.hpp"

namespace infernet::nostr::nip44 {
namespace {

constexpr uint8_t kVersion = 2;
constexpr size_t kNonceBytes = 32;
constexpr size_t kMacBytes = 32;
constexpr size_t kHeaderBytes = 1 + kNonceBytes;
// Smallest payload: version, nonce, a 2-byte prefix with 32 padded bytes, mac = 99 bytes = 132 base64 chars.
constexpr size_t kMinDataBytes = kHeaderBytes + 2 + 32 + kMacBytes;
constexpr size_t kMinPayloadChars = 132;
// Plaintexts from this length on carry the 6-byte extended prefix (00 00, then a u32).
constexpr size_t kExtendedThreshold = 65536;
constexpr size_t kShortPrefixBytes = 2;
constexpr size_t kExtendedPrefixBytes = 6;
// Largest payload the protocol can produce: a 2^32-1 byte plaintext pads to 2^32 bytes. Computed in 64 bits
// so the bound stays meaningful on any platform; base64 with '=' padding is never shorter than without.
constexpr uint64_t kMaxDataBytes = kHeaderBytes + kExtendedPrefixBytes + (uint64_t{1} << 32) + kMacBytes;
constexpr uint64_t kMaxPayloadChars = (kMaxDataBytes + 2) / 3 * 4;
// EVP_EncryptUpdate takes an int length; longer inputs go through in chunks. A multiple of ChaCha20's 64-byte
// block, so each chunk starts on a block boundary.
constexpr size_t kCipherChunkBytes = size_t{1} << 30;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

const EVP_CIPHER* fetched_chacha20() {
  // An implicit EVP_chacha20() lookup goes through the provider store on every init; fetch once per process.
  static EVP_CIPHER* cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "ChaCha20", nullptr);
    if (c == nullptr) throw std::runtime_error("OpenSSL: ChaCha20 unavailable");
    return c;
  }();
  return cipher;
}

EVP_CIPHER_CTX* thread_chacha_ctx() {
  // Bound to the cipher once per thread: later inits pass a null cipher, which keeps the provider context
  // instead of freeing and re-creating it for every message.
  thread_local std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx = [] {
    std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> c(EVP_CIPHER_CTX_new());
    if (c == nullptr || EVP_EncryptInit_ex2(c.get(), fetched_chacha20(), nullptr, nullptr, nullptr) != 1) {
      throw std::runtime_error("OpenSSL: ChaCha20 context setup failed");
    }
    return c;
  }();
  return ctx.get();
}

// XORs `data` in place with the RFC 8439 ChaCha20 keystream (counter 0). Encryption and decryption are the
// same.
void chacha20_xor(const MessageKeys& keys, std::span<uint8_t> data) {
  // OpenSSL's 16-byte IV is the 32-bit little-endian block counter followed by the 96-bit nonce.
  uint8_t iv[16] = {};
  std::memcpy(iv + 4, keys.chacha_nonce.data(), keys.chacha_nonce.size());
  EVP_CIPHER_CTX* ctx = thread_chacha_ctx();
  bool ok = EVP_EncryptInit_ex2(ctx, nullptr, keys.chacha_key.data(), iv, nullptr) == 1;
  uint8_t* p = data.data();
  size_t left = data.size();
  while (ok && left > 0) {
    const size_t take = std::min(left, kCipherChunkBytes);
    int out_len = 0;
    ok = EVP_EncryptUpdate(ctx, p, &out_len, p, static_cast<int>(take)) == 1 &&
         static_cast<size_t>(out_len) == take;
    p += take;
    left -= take;
  }
  // Re-key the long-lived per-thread context with zeros so the message key does not outlive the call there.
  static constexpr uint8_t kZeroKey[32] = {};
  ok = EVP_EncryptInit_ex2(ctx, nullptr, kZeroKey, kZeroKey, nullptr) == 1 && ok;
  OPENSSL_cleanse(iv, sizeof(iv));
  if (!ok) throw std::runtime_error("OpenSSL: ChaCha20 failed");
}

// Wipes the message keys when the scope ends, on every return path.
class KeysWiper {
 public:
  explicit KeysWiper(MessageKeys& keys) : keys_(keys) {}
  KeysWiper(const KeysWiper&) = delete;
  KeysWiper& operator=(const KeysWiper&) = delete;
  ~KeysWiper() { OPENSSL_cleanse(&keys_, sizeof(keys_)); }

 private:
  MessageKeys& keys_;
};

Hash32 payload_mac(const MessageKeys& keys, std::span<const uint8_t> nonce,
                   std::span<const uint8_t> ciphertext) {
  return hmac_sha256(keys.hmac_key, {nonce, ciphertext});
}

// Returns the plaintext inside a decrypted, padded buffer (length prefix, plaintext, zero padding), checking
// that the prefix is well-formed and the buffer has exactly the padded size the length implies. Padding bytes
// are not required to be zero, as in nostr-tools: they are covered by the MAC already.
Result<std::span<const uint8_t>> unpad(std::span<const uint8_t> padded) {
  auto invalid = [] { return make_error(ErrorCode::kDecryptFailed, "invalid padding"); };
  if (padded.size() < kShortPrefixBytes) return invalid();
  size_t len = (size_t{padded[0]} << 8) | padded[1];
  size_t prefix = kShortPrefixBytes;
  if (len == 0) {
    if (padded.size() < kExtendedPrefixBytes) return invalid();
    len = (size_t{padded[2]} << 24) | (size_t{padded[3]} << 16) | (size_t{padded[4]} << 8) | padded[5];
    prefix = kExtendedPrefixBytes;
    // A length that fits the short form must use it: one plaintext, one encoding.
    if (len < kExtendedThreshold) return invalid();
  }
  auto want = calc_padded_len(len);
  // want >= len, so this also keeps prefix + len inside the buffer.
  if (!want || padded.size() - prefix != *want) return invalid();
  return padded.subspan(prefix, len);
}

}  // namespace

ConversationKey conversation_key(const Keypair& mine, const PublicKey& theirs) {
  Hash32 shared = mine.ecdh_x(theirs);
  // HKDF-extract is HMAC(salt, IKM).
  ConversationKey key = hmac_sha256(as_bytes("nip44-v2"), {shared});
  OPENSSL_cleanse(shared.data(), shared.size());
  return key;
}

MessageKeys message_keys(const ConversationKey& key, const std::array<uint8_t, 32>& nonce) {
  // HKDF-expand for L = 76: T(i) = HMAC(PRK, T(i-1) || info || i), three blocks, output T1 || T2 || T3[0:12].
  const uint8_t one = 1, two = 2, three = 3;
  Hash32 t1 = hmac_sha256(key, {nonce, std::span<const uint8_t>(&one, 1)});
  Hash32 t2 = hmac_sha256(key, {t1, nonce, std::span<const uint8_t>(&two, 1)});
  Hash32 t3 = hmac_sha256(key, {t2, nonce, std::span<const uint8_t>(&three, 1)});
  MessageKeys keys;
  std::memcpy(keys.chacha_key.data(), t1.data(), 32);
  std::memcpy(keys.chacha_nonce.data(), t2.data(), 12);
  std::memcpy(keys.hmac_key.data(), t2.data() + 12, 20);
  std::memcpy(keys.hmac_key.data() + 20, t3.data(), 12);
  OPENSSL_cleanse(t1.data(), t1.size());
  OPENSSL_cleanse(t2.data(), t2.size());
  OPENSSL_cleanse(t3.data(), t3.size());
  return keys;
}

Result<size_t> calc_padded_len(size_t unpadded_len) {
  if (unpadded_len == 0) return make_error(ErrorCode::kInvalidInput, "plaintext length must be at least 1");
  if (unpadded_len > kMaxPlaintextBytes) {
    return make_error(ErrorCode::kLimitExceeded, "plaintext length must be at most 4294967295");
  }
  if (unpadded_len <= 32) return size_t{32};
  // 64-bit arithmetic: for lengths above 2^31 the next power of two is 2^32.
  const uint64_t n = unpadded_len - 1;
  const uint64_t next_power = uint64_t{1} << std::bit_width(n);
  const uint64_t chunk = next_power <= 256 ? 32 : next_power / 8;
  return static_cast<size_t>(chunk * (n / chunk + 1));
}

Result<std::string> encrypt(std::string_view plaintext, const ConversationKey& key) {
  std::array<uint8_t, 32> nonce;
  fill_random(nonce);
  return encrypt(plaintext, key, nonce);
}

Result<std::string> encrypt(std::string_view plaintext, const ConversationKey& key,
                            const std::array<uint8_t, 32>& nonce) {
  if (plaintext.empty()) return make_error(ErrorCode::kInvalidInput, "plaintext is empty");
  if (plaintext.size() > kMaxPlaintextBytes) {
    return make_error(ErrorCode::kLimitExceeded, "plaintext is longer than 4294967295 bytes");
  }
  if (!is_valid_utf8(plaintext)) return make_error(ErrorCode::kInvalidInput, "plaintext is not valid UTF-8");

  const size_t len = plaintext.size();
  const size_t padded_len = *calc_padded_len(len);
  const bool extended = len >= kExtendedThreshold;
  const size_t prefix = extended ? kExtendedPrefixBytes : kShortPrefixBytes;
  const size_t ciphertext_len = prefix + padded_len;

  // One buffer laid out as the final payload: version, nonce, padded plaintext (encrypted in place), mac. It
  // is zero-initialised, which is already the padding.
  Bytes data(kHeaderBytes + ciphertext_len + kMacBytes);
  data[0] = kVersion;
  std::memcpy(data.data() + 1, nonce.data(), kNonceBytes);
  uint8_t* body = data.data() + kHeaderBytes;
  if (extended) {
    body[2] = static_cast<uint8_t>(len >> 24);
    body[3] = static_cast<uint8_t>(len >> 16);
    body[4] = static_cast<uint8_t>(len >> 8);
    body[5] = static_cast<uint8_t>(len);
  } else {
    body[0] = static_cast<uint8_t>(len >> 8);
    body[1] = static_cast<uint8_t>(len);
  }
  std::memcpy(body + prefix, plaintext.data(), len);

  MessageKeys keys = message_keys(key, nonce);
  KeysWiper wiper(keys);
  const std::span<uint8_t> ciphertext(body, ciphertext_len);
  chacha20_xor(keys, ciphertext);
  const Hash32 mac = payload_mac(keys, nonce, ciphertext);
  std::memcpy(body + ciphertext_len, mac.data(), kMacBytes);
  return base64_encode(data);
}

Result<std::string> decrypt(std::string_view payload, const ConversationKey& key, size_t max_payload_chars) {
  if (payload.empty()) return make_error(ErrorCode::kInvalidInput, "invalid payload length: 0");
  // '#' marks a future, non-base64 encoding (NIP-44).
  if (payload[0] == '#') return make_error(ErrorCode::kUnsupported, "unknown encryption version");
  if (payload.size() < kMinPayloadChars || payload.size() > kMaxPayloadChars) {
    return make_error(ErrorCode::kInvalidInput, "invalid payload length: " + std::to_string(payload.size()));
  }
  // Checked before decoding, so an oversized payload costs nothing.
  if (payload.size() > max_payload_chars) {
    return make_error(ErrorCode::kLimitExceeded, "payload is " + std::to_string(payload.size()) +
                                                     " characters, above the limit of " +
                                                     std::to_string(max_payload_chars));
  }

  auto decoded = base64_decode(payload);
  if (!decoded) return make_error(ErrorCode::kInvalidInput, "invalid base64: " + decoded.error().message);
  Bytes& data = *decoded;
  if (data.size() < kMinDataBytes) {
    return make_error(ErrorCode::kInvalidInput, "invalid data length: " + std::to_string(data.size()));
  }
  if (data[0] != kVersion) {
    return make_error(ErrorCode::kUnsupported, "unknown encryption version " + std::to_string(data[0]));
  }

  std::array<uint8_t, 32> nonce;
  std::memcpy(nonce.data(), data.data() + 1, kNonceBytes);
  const std::span<uint8_t> ciphertext(data.data() + kHeaderBytes, data.size() - kHeaderBytes - kMacBytes);
  const uint8_t* mac = data.data() + data.size() - kMacBytes;

  MessageKeys keys = message_keys(key, nonce);
  KeysWiper wiper(keys);
  // Authenticate before decrypting: nothing from an unauthenticated ciphertext reaches the padding parser.
  const Hash32 expected = payload_mac(keys, nonce, ciphertext);
  if (CRYPTO_memcmp(expected.data(), mac, kMacBytes) != 0) {
    return make_error(ErrorCode::kDecryptFailed, "invalid MAC");
  }
  chacha20_xor(keys, ciphertext);

  auto plain = unpad(ciphertext);
  if (!plain) return tl::unexpected(plain.error());
  const std::string_view text = as_chars(*plain);
  if (!is_valid_utf8(text)) return make_error(ErrorCode::kDecryptFailed, "plaintext is not valid UTF-8");
  return std::string(text);
}

}  // namespace infernet::nostr::nip44
