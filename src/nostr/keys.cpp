#include "nostr/keys.hpp"

#include <cstring>
#include <stdexcept>

#include <openssl/crypto.h>
#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <secp256k1_schnorrsig.h>

#include "core/encoding.hpp"
#include "core/random.hpp"
#include "nostr/internal/secp_context.hpp"

namespace infernet::nostr {

namespace internal {

const secp256k1_context* secp_context() {
  static secp256k1_context* ctx = [] {
    secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    std::array<uint8_t, 32> seed{};
    fill_random(seed);
    // Randomization blinds signing against side channels; it must happen before the context is shared.
    if (secp256k1_context_randomize(c, seed.data()) != 1)
      throw std::runtime_error("secp256k1: randomize failed");
    return c;
  }();
  return ctx;
}

}  // namespace internal

using internal::secp_context;

Result<PublicKey> PublicKey::from_bytes(std::span<const uint8_t, 32> x) {
  PublicKey pk;
  std::memcpy(pk.bytes_.data(), x.data(), 32);
  if (secp256k1_xonly_pubkey_parse(secp_context(), &pk.parsed_, x.data()) != 1) {
    return make_error(ErrorCode::kInvalidInput, "public key is not a valid secp256k1 x coordinate");
  }
  return pk;
}

Result<PublicKey> PublicKey::from_hex(std::string_view hex) {
  std::array<uint8_t, 32> x{};
  if (!hex_decode_fixed(hex, x)) {
    return make_error(ErrorCode::kInvalidInput, "public key must be 64 lowercase hex characters");
  }
  return from_bytes(x);
}

std::string PublicKey::hex() const {
  return hex_encode(bytes_);
}

bool PublicKey::verify(const Hash32& message, const Signature& sig) const {
  return secp256k1_schnorrsig_verify(secp_context(), sig.data(), message.data(), message.size(), &parsed_) ==
         1;
}

bool PublicKey::verify_message(std::span<const uint8_t> message, const Signature& sig) const {
  return secp256k1_schnorrsig_verify(secp_context(), sig.data(), message.data(), message.size(), &parsed_) ==
         1;
}

Keypair::~Keypair() {
  OPENSSL_cleanse(secret_.data(), secret_.size());
  OPENSSL_cleanse(&keypair_, sizeof(keypair_));
}

Result<Keypair> Keypair::from_secret(std::span<const uint8_t, 32> secret) {
  Keypair kp;
  std::memcpy(kp.secret_.data(), secret.data(), 32);
  if (secp256k1_keypair_create(secp_context(), &kp.keypair_, secret.data()) != 1) {
    return make_error(ErrorCode::kInvalidInput, "secret key is zero or not below the curve order");
  }
  secp256k1_xonly_pubkey xonly;
  secp256k1_keypair_xonly_pub(secp_context(), &xonly, nullptr, &kp.keypair_);
  std::array<uint8_t, 32> x{};
  secp256k1_xonly_pubkey_serialize(secp_context(), x.data(), &xonly);
  kp.public_key_.bytes_ = x;
  kp.public_key_.parsed_ = xonly;
  return kp;
}

Result<Keypair> Keypair::from_secret_hex(std::string_view hex) {
  std::array<uint8_t, 32> s{};
  if (!hex_decode_fixed(hex, s)) {
    return make_error(ErrorCode::kInvalidInput, "secret key must be 64 lowercase hex characters");
  }
  auto kp = from_secret(s);
  OPENSSL_cleanse(s.data(), s.size());
  return kp;
}

Keypair Keypair::generate() {
  std::array<uint8_t, 32> s{};
  for (;;) {
    fill_random(s);
    // Fails with probability ~2^-128 (a value at or above the curve order); draw again.
    if (auto kp = from_secret(s)) {
      OPENSSL_cleanse(s.data(), s.size());
      return *kp;
    }
  }
}

std::string Keypair::secret_hex() const {
  return hex_encode(secret_);
}

Signature Keypair::sign(const Hash32& message) const {
  std::array<uint8_t, 32> aux{};
  fill_random(aux);
  return sign(message, aux);
}

Signature Keypair::sign(const Hash32& message, const std::array<uint8_t, 32>& aux_rand) const {
  Signature sig{};
  if (secp256k1_schnorrsig_sign32(secp_context(), sig.data(), message.data(), &keypair_, aux_rand.data()) !=
      1) {
    throw std::runtime_error("secp256k1: schnorr signing failed");
  }
  return sig;
}

Signature Keypair::sign_message(std::span<const uint8_t> message,
                                const std::array<uint8_t, 32>& aux_rand) const {
  Signature sig{};
  secp256k1_schnorrsig_extraparams params = SECP256K1_SCHNORRSIG_EXTRAPARAMS_INIT;
  params.ndata = const_cast<uint8_t*>(aux_rand.data());
  if (secp256k1_schnorrsig_sign_custom(secp_context(), sig.data(), message.data(), message.size(), &keypair_,
                                       &params) != 1) {
    throw std::runtime_error("secp256k1: schnorr signing failed");
  }
  return sig;
}

namespace {
// secp256k1_ecdh hashes the shared point by default; NIP-44 wants the bare x coordinate.
int copy_x(unsigned char* out, const unsigned char* x32, const unsigned char* /*y32*/, void* /*data*/) {
  std::memcpy(out, x32, 32);
  return 1;
}
}  // namespace

Hash32 Keypair::ecdh_x(const PublicKey& peer) const {
  // Lift the x-only key to the point with even y by prefixing 0x02.
  uint8_t compressed[33];
  compressed[0] = 0x02;
  std::memcpy(compressed + 1, peer.bytes().data(), 32);
  secp256k1_pubkey point;
  if (secp256k1_ec_pubkey_parse(secp_context(), &point, compressed, sizeof(compressed)) != 1) {
    throw std::logic_error("secp256k1: validated x-only key failed to lift");
  }
  Hash32 x{};
  if (secp256k1_ecdh(secp_context(), x.data(), &point, secret_.data(), copy_x, nullptr) != 1) {
    throw std::runtime_error("secp256k1: ecdh failed");
  }
  return x;
}

}  // namespace infernet::nostr
