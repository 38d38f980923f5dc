// Nostr keys and BIP-340 Schnorr signatures over libsecp256k1.
//
// One secp256k1 context serves the whole process: libsecp256k1 (0.2) takes it as const in every signing and
// verification call, so it is shared across threads without locking. Parsed forms are kept inside the objects
// (a PublicKey holds the parsed x-only point, a Keypair the precomputed keypair) because parsing costs about
// 10% of a verification; build them once and reuse them.
//
// Thread-safety: all types are values; const methods are safe to call concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "core/sha256.hpp"

#include <secp256k1_extrakeys.h>

namespace infernet::nostr {

using Signature = std::array<uint8_t, 64>;

// An x-only public key (BIP-340), validated to be on the curve.
class PublicKey {
 public:
  // Errors: kInvalidInput when the 32 bytes are not the x coordinate of a curve point.
  static Result<PublicKey> from_bytes(std::span<const uint8_t, 32> x);
  // Accepts 64 lower-case hex characters. Errors: kInvalidInput.
  static Result<PublicKey> from_hex(std::string_view hex);

  const std::array<uint8_t, 32>& bytes() const { return bytes_; }
  std::string hex() const;

  // BIP-340 verification of a signature over a 32-byte message (an event id).
  bool verify(const Hash32& message, const Signature& sig) const;
  // Verification over a message of any length (BIP-340 allows it; the official vectors use it).
  bool verify_message(std::span<const uint8_t> message, const Signature& sig) const;

  friend bool operator==(const PublicKey& a, const PublicKey& b) { return a.bytes_ == b.bytes_; }

  // The parsed point, for the few callers (ECDH) that need libsecp256k1 directly.
  const secp256k1_xonly_pubkey& parsed() const { return parsed_; }

 private:
  friend class Keypair;
  PublicKey() = default;
  std::array<uint8_t, 32> bytes_{};
  secp256k1_xonly_pubkey parsed_{};
};

// A secret key with its public key precomputed. The secret bytes are wiped when the object is destroyed.
class Keypair {
 public:
  // A fresh key from the OS CSPRNG (getrandom).
  static Keypair generate();
  // Errors: kInvalidInput when the bytes are zero or not below the curve order.
  static Result<Keypair> from_secret(std::span<const uint8_t, 32> secret);
  // Accepts 64 lower-case hex characters. Errors: kInvalidInput.
  static Result<Keypair> from_secret_hex(std::string_view hex);

  Keypair(const Keypair&) = default;
  Keypair& operator=(const Keypair&) = default;
  ~Keypair();

  const PublicKey& public_key() const { return public_key_; }
  const std::array<uint8_t, 32>& secret() const { return secret_; }
  std::string secret_hex() const;

  // BIP-340 signature over a 32-byte message with 32 fresh random bytes of auxiliary randomness.
  Signature sign(const Hash32& message) const;
  // Deterministic variant with caller-chosen auxiliary randomness (test vectors).
  Signature sign(const Hash32& message, const std::array<uint8_t, 32>& aux_rand) const;
  // Signature over a message of any length (secp256k1_schnorrsig_sign_custom).
  Signature sign_message(std::span<const uint8_t> message, const std::array<uint8_t, 32>& aux_rand) const;

  // Raw 32-byte x coordinate of this key times `peer` (peer lifted with even y), as NIP-44 needs: unhashed.
  Hash32 ecdh_x(const PublicKey& peer) const;

 private:
  Keypair() = default;
  std::array<uint8_t, 32> secret_{};
  secp256k1_keypair keypair_{};
  PublicKey public_key_;
};

}  // namespace infernet::nostr
