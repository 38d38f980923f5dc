#include "protocol/conversation_key_cache.hpp"

#include <openssl/crypto.h>

#include <cstring>

namespace infernet::protocol {

size_t ConversationKeyCache::PairHash::operator()(const Pair& p) const {
  // Public keys are curve x coordinates, uniform enough to use their bytes directly. Someone who grinds keys
  // into one bucket gains little: the cache is bounded, so a chain is at most `capacity` entries long.
  uint64_t a;
  uint64_t b;
  std::memcpy(&a, p.data(), sizeof(a));
  std::memcpy(&b, p.data() + 32, sizeof(b));
  return static_cast<size_t>(a ^ (b * 0x9e3779b97f4a7c15ULL));
}

ConversationKeyCache::ConversationKeyCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

ConversationKeyCache::~ConversationKeyCache() {
  clear();
}

nostr::nip44::ConversationKey ConversationKeyCache::get(const nostr::Keypair& mine,
                                                        const nostr::PublicKey& theirs) {
  Pair pair;
  std::memcpy(pair.data(), mine.public_key().bytes().data(), 32);
  std::memcpy(pair.data() + 32, theirs.bytes().data(), 32);
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(pair);
    if (it != keys_.end()) return it->second;
  }
  // Derived outside the lock: two threads may both derive a new pair's key, which is harmless (same value).
  const nostr::nip44::ConversationKey key = nostr::nip44::conversation_key(mine, theirs);
  std::lock_guard lock(mu_);
  if (keys_.size() >= capacity_ && keys_.find(pair) == keys_.end()) {
    auto victim = keys_.begin();
    OPENSSL_cleanse(victim->second.data(), victim->second.size());
    keys_.erase(victim);
  }
  keys_.emplace(pair, key);
  return key;
}

void ConversationKeyCache::clear() {
  std::lock_guard lock(mu_);
  for (auto& [pair, key] : keys_)
    OPENSSL_cleanse(key.data(), key.size());
  keys_.clear();
}

size_t ConversationKeyCache::size() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

ConversationKeyCache& conversation_key_cache() {
  static ConversationKeyCache cache;
  return cache;
}

}  // namespace infernet::protocol
