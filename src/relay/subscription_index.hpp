// Live subscriptions, indexed so that a new event is tested only against the filters that could match it.
//
// Each filter is filed under one key, the most selective it has: its ids, else its authors, else one tag
// condition, else its kinds; a filter with none of these goes on the short list of filters that see every
// event. Matching an event looks up its id, its author, its kind and each of its single-letter tags, then
// runs the full Filter::matches on those candidates only, and reports each (connection, subscription) once.
//
// Thread-safe: a shared mutex lets many events match at once while subscribing and unsubscribing take turns.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "nostr/event.hpp"
#include "nostr/filter.hpp"

namespace infernet::relay {

using ConnectionId = uint64_t;

class SubscriptionIndex {
 public:
  // Adds or replaces (same connection and id) a subscription.
  void subscribe(ConnectionId connection, const std::string& subscription_id,
                 std::vector<nostr::Filter> filters);
  // Returns whether the subscription existed.
  bool unsubscribe(ConnectionId connection, const std::string& subscription_id);
  void remove_connection(ConnectionId connection);

  size_t subscription_count(ConnectionId connection) const;
  size_t total_subscriptions() const;

  // Calls `deliver` once for every subscription with a filter that matches, while holding a shared lock:
  // `deliver` must be quick and must not call back into the index.
  void match(const nostr::Event& event,
             const std::function<void(ConnectionId, const std::string& subscription_id)>& deliver) const;

 private:
  struct Subscription {
    ConnectionId connection;
    std::string id;
    std::vector<nostr::Filter> filters;
  };
  using SubscriptionPtr = std::shared_ptr<const Subscription>;
  // One posting per (subscription, filter); the filter index lets match() test just that filter.
  struct Posting {
    const Subscription* subscription;
    size_t filter;
  };
  struct Key32Hash {
    size_t operator()(const std::array<uint8_t, 32>& k) const noexcept {
      size_t h;
      std::memcpy(&h, k.data(), sizeof(h));  // ids and keys are uniformly random already
      return h;
    }
  };

  void index_locked(const SubscriptionPtr& sub);
  void unindex_locked(const Subscription& sub);

  mutable std::shared_mutex mu_;
  // guarded by mu_
  std::map<std::pair<ConnectionId, std::string>, SubscriptionPtr> subscriptions_;
  std::unordered_map<std::array<uint8_t, 32>, std::vector<Posting>, Key32Hash> by_id_;
  std::unordered_map<std::array<uint8_t, 32>, std::vector<Posting>, Key32Hash> by_author_;
  std::unordered_map<uint32_t, std::vector<Posting>> by_kind_;
  std::unordered_map<std::string, std::vector<Posting>> by_tag_;  // "<name>\n<value>"
  std::vector<Posting> unindexed_;
};

}  // namespace infernet::relay
