// NIP-44 v2: authenticated encryption of a payload to one counterpart.
//
// Scheme: conversation key = HKDF-extract(SHA-256, salt "nip44-v2", raw ECDH x); per message a 32-byte nonce
// is expanded into a ChaCha20 key and nonce and an HMAC key; the padded plaintext is ChaCha20-encrypted and
// authenticated with HMAC-SHA256(nonce || ciphertext). Payload = base64(0x02 || nonce || ciphertext || mac).
//
// Lengths follow the extended form (as in nostr-tools): plaintexts of 1..65535 bytes carry a u16 big-endian
// length prefix, plaintexts of 65536..2^32-1 bytes carry 00 00 followed by a u32 big-endian length.
//
// Derive the conversation key once per counterpart and reuse it: the ECDH costs far more than encrypting a
// message. Key material derived inside encrypt/decrypt is wiped before returning.
//
// Thread-safety: every function is safe to call concurrently (each thread reuses its own cipher context).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "nostr/keys.hpp"

namespace infernet::nostr::nip44 {

using ConversationKey = std::array<uint8_t, 32>;

// The three per-message keys HKDF-expand derives from a conversation key and a nonce. Secret: wipe when done.
struct MessageKeys {
  std::array<uint8_t, 32> chacha_key;
  std::array<uint8_t, 12> chacha_nonce;
  std::array<uint8_t, 32> hmac_key;
};

// Protocol limit on the plaintext length (the extended length prefix is a u32).
constexpr size_t kMaxPlaintextBytes = 0xffffffff;
// Default bound decrypt() puts on the payload it accepts, so that a hostile peer cannot make us decode and
// decrypt gigabytes. Callers expecting larger payloads pass their own limit.
constexpr size_t kDefaultMaxPayloadChars = 64 * 1024 * 1024;

// HKDF-extract(salt = "nip44-v2", IKM = unhashed x of ECDH(mine, theirs)). Symmetric: conversation_key(a, B)
// == conversation_key(b, A). Cannot fail: both keys were validated when they were built.
ConversationKey conversation_key(const Keypair& mine, const PublicKey& theirs);

// HKDF-expand(PRK = conversation key, info = nonce, L = 76), split into the ChaCha20 key [0:32], the ChaCha20
// nonce [32:44] and the HMAC key [44:76].
MessageKeys message_keys(const ConversationKey& key, const std::array<uint8_t, 32>& nonce);

// Length of the padded plaintext (without its length prefix) for a plaintext of `unpadded_len` bytes.
// Errors: kInvalidInput for 0; kLimitExceeded above kMaxPlaintextBytes.
Result<size_t> calc_padded_len(size_t unpadded_len);

// Encrypts with a fresh random nonce and returns the base64 payload (with '=' padding).
// Errors: kInvalidInput when the plaintext is empty or not valid UTF-8; kLimitExceeded when it is longer than
// kMaxPlaintextBytes.
Result<std::string> encrypt(std::string_view plaintext, const ConversationKey& key);

// Same with a caller-chosen nonce. Only for test vectors: reusing a nonce under one conversation key reveals
// the XOR of the plaintexts.
Result<std::string> encrypt(std::string_view plaintext, const ConversationKey& key,
                            const std::array<uint8_t, 32>& nonce);

// Authenticates, then decrypts a payload. The MAC is checked (in constant time) before anything is decrypted.
// Errors, each message naming the problem:
//   kInvalidInput   "invalid payload length: N", "invalid base64: ...", "invalid data length: N";
//   kUnsupported    "unknown encryption version" (leading '#'), "unknown encryption version N" (byte 0);
//   kLimitExceeded  the payload is longer than `max_payload_chars`;
//   kDecryptFailed  "invalid MAC", "invalid padding", or the plaintext is not valid UTF-8.
// Any input string is safe to pass: nothing is read outside it.
Result<std::string> decrypt(std::string_view payload, const ConversationKey& key,
                            size_t max_payload_chars = kDefaultMaxPayloadChars);

}  // namespace infernet::nostr::nip44
