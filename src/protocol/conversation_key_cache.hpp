// NIP-44 conversation keys, remembered per (our key, their key).
//
// A conversation key costs an ECDH (tens of microseconds), more than signing a message and about as much as
// verifying one; encrypting or decrypting the message itself costs a few microseconds. A node exchanges many
// messages with few counterparts (about five sealed and five opened events per job, all with the same peer),
// so seal() and open() take their keys from a process-wide cache instead of deriving one per message.
//
// Keyed by both public keys: the x-only public key fixes the conversation key (a secret d and its negation
// n - d share the x-only key and give the same ECDH x), so two Keypair objects of one identity share entries
// and different identities in one process never do. Bounded: when full, an arbitrary entry is dropped.
// Entries are wiped when dropped and when the cache is destroyed.
//
// Thread-safety: every method may be called from any thread (one mutex; the ECDH runs outside it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "nostr/keys.hpp"
#include "nostr/nip44.hpp"

namespace infernet::protocol {

class ConversationKeyCache {
 public:
  static constexpr size_t kDefaultCapacity = 4096;

  explicit ConversationKeyCache(size_t capacity = kDefaultCapacity);
  ConversationKeyCache(const ConversationKeyCache&) = delete;
  ConversationKeyCache& operator=(const ConversationKeyCache&) = delete;
  ~ConversationKeyCache();

  // The conversation key of `mine` with `theirs`, derived on first use.
  nostr::nip44::ConversationKey get(const nostr::Keypair& mine, const nostr::PublicKey& theirs);

  // Drops (and wipes) every entry.
  void clear();
  size_t size() const;

 private:
  using Pair = std::array<uint8_t, 64>;  // our x-only key, then theirs
  struct PairHash {
    size_t operator()(const Pair& p) const;
  };

  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<Pair, nostr::nip44::ConversationKey, PairHash> keys_;  // guarded by mu_
};

// The cache seal() and open() use.
ConversationKeyCache& conversation_key_cache();

}  // namespace infernet::protocol
