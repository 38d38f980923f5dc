#include "relay/subscription_index.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_set>

namespace infernet::relay {
namespace {

std::string tag_key(const std::string& name, const std::string& value) {
  std::string k;
  k.reserve(name.size() + value.size() + 1);
  k += name;
  k += '\n';
  k += value;
  return k;
}

template <class Map, class Key>
void erase_postings(Map& map, const Key& key, const void* subscription) {
  auto it = map.find(key);
  if (it == map.end()) return;
  auto& list = it->second;
  list.erase(
      std::remove_if(list.begin(), list.end(), [&](const auto& p) { return p.subscription == subscription; }),
      list.end());
  if (list.empty()) map.erase(it);
}

}  // namespace

void SubscriptionIndex::index_locked(const SubscriptionPtr& sub) {
  for (size_t i = 0; i < sub->filters.size(); ++i) {
    const nostr::Filter& f = sub->filters[i];
    Posting p{sub.get(), i};
    if (f.ids) {
      for (const auto& id : *f.ids)
        by_id_[id].push_back(p);
    } else if (f.authors) {
      for (const auto& a : *f.authors)
        by_author_[a].push_back(p);
    } else if (!f.tags.empty()) {
      for (const auto& v : f.tags.front().values)
        by_tag_[tag_key(f.tags.front().name, v)].push_back(p);
    } else if (f.kinds) {
      for (uint32_t k : *f.kinds)
        by_kind_[k].push_back(p);
    } else {
      unindexed_.push_back(p);
    }
  }
}

void SubscriptionIndex::unindex_locked(const Subscription& sub) {
  for (const nostr::Filter& f : sub.filters) {
    if (f.ids) {
      for (const auto& id : *f.ids)
        erase_postings(by_id_, id, &sub);
    } else if (f.authors) {
      for (const auto& a : *f.authors)
        erase_postings(by_author_, a, &sub);
    } else if (!f.tags.empty()) {
      for (const auto& v : f.tags.front().values)
        erase_postings(by_tag_, tag_key(f.tags.front().name, v), &sub);
    } else if (f.kinds) {
      for (uint32_t k : *f.kinds)
        erase_postings(by_kind_, k, &sub);
    }
  }
  unindexed_.erase(std::remove_if(unindexed_.begin(), unindexed_.end(),
                                  [&](const Posting& p) { return p.subscription == &sub; }),
                   unindexed_.end());
}

void SubscriptionIndex::subscribe(ConnectionId connection, const std::string& subscription_id,
                                  std::vector<nostr::Filter> filters) {
  auto sub =
      std::make_shared<const Subscription>(Subscription{connection, subscription_id, std::move(filters)});
  std::unique_lock lock(mu_);
  auto key = std::make_pair(connection, subscription_id);
  auto it = subscriptions_.find(key);
  if (it != subscriptions_.end()) {
    unindex_locked(*it->second);
    it->second = sub;
  } else {
    subscriptions_.emplace(std::move(key), sub);
  }
  index_locked(sub);
}

bool SubscriptionIndex::unsubscribe(ConnectionId connection, const std::string& subscription_id) {
  std::unique_lock lock(mu_);
  auto it = subscriptions_.find(std::make_pair(connection, subscription_id));
  if (it == subscriptions_.end()) return false;
  unindex_locked(*it->second);
  subscriptions_.erase(it);
  return true;
}

void SubscriptionIndex::remove_connection(ConnectionId connection) {
  std::unique_lock lock(mu_);
  auto it = subscriptions_.lower_bound(std::make_pair(connection, std::string()));
  while (it != subscriptions_.end() && it->first.first == connection) {
    unindex_locked(*it->second);
    it = subscriptions_.erase(it);
  }
}

size_t SubscriptionIndex::subscription_count(ConnectionId connection) const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (auto it = subscriptions_.lower_bound(std::make_pair(connection, std::string()));
       it != subscriptions_.end() && it->first.first == connection; ++it) {
    ++n;
  }
  return n;
}

size_t SubscriptionIndex::total_subscriptions() const {
  std::shared_lock lock(mu_);
  return subscriptions_.size();
}

void SubscriptionIndex::match(const nostr::Event& event,
                              const std::function<void(ConnectionId, const std::string&)>& deliver) const {
  std::shared_lock lock(mu_);
  // A subscription with several matching filters, or filed under several keys, is delivered once.
  std::vector<const Subscription*> delivered;
  auto consider = [&](const std::vector<Posting>& postings) {
    for (const Posting& p : postings) {
      if (std::find(delivered.begin(), delivered.end(), p.subscription) != delivered.end()) continue;
      if (!p.subscription->filters[p.filter].matches(event)) continue;
      delivered.push_back(p.subscription);
      deliver(p.subscription->connection, p.subscription->id);
    }
  };
  if (auto it = by_id_.find(event.id); it != by_id_.end()) consider(it->second);
  if (auto it = by_author_.find(event.pubkey); it != by_author_.end()) consider(it->second);
  if (!by_tag_.empty()) {
    for (const auto& t : event.tags) {
      if (t.size() < 2) continue;
      if (auto it = by_tag_.find(tag_key(t[0], t[1])); it != by_tag_.end()) consider(it->second);
    }
  }
  if (auto it = by_kind_.find(event.kind); it != by_kind_.end()) consider(it->second);
  consider(unindexed_);
}

}  // namespace infernet::relay
