#include "relay/subscription_index.hpp"

#include <gtest/gtest.h>

#include <set>

#include "core/encoding.hpp"

namespace infernet::relay {
namespace {

nostr::Filter filter(const std::string& json) {
  return *nostr::parse_filter(json);
}

std::set<std::pair<ConnectionId, std::string>> matches(const SubscriptionIndex& index,
                                                       const nostr::Event& e) {
  std::set<std::pair<ConnectionId, std::string>> out;
  index.match(e, [&](ConnectionId c, const std::string& s) {
    EXPECT_TRUE(out.emplace(c, s).second) << "delivered twice: " << c << " " << s;
  });
  return out;
}

TEST(SubscriptionIndex, DeliversToEveryMatchingSubscriptionOnce) {
  auto alice = nostr::Keypair::generate();
  auto bob = nostr::Keypair::generate();
  nostr::Event note = nostr::sign_event({100, 1, {{"e", "root"}, {"t", "ai"}}, "x"}, alice);

  SubscriptionIndex index;
  index.subscribe(1, "by-kind", {filter(R"({"kinds":[1]})")});
  index.subscribe(1, "by-author", {filter(R"({"authors":[")" + alice.public_key().hex() + R"("]})")});
  index.subscribe(2, "by-other-author", {filter(R"({"authors":[")" + bob.public_key().hex() + R"("]})")});
  index.subscribe(2, "by-tag", {filter(R"({"#t":["ai"],"kinds":[1]})")});
  index.subscribe(2, "by-tag-wrong-kind", {filter(R"({"#t":["ai"],"kinds":[7]})")});
  index.subscribe(3, "everything", {filter("{}")});
  index.subscribe(3, "two-filters-both-match", {filter(R"({"kinds":[1]})"), filter(R"({"#e":["root"]})")});
  index.subscribe(3, "by-id", {filter(R"({"ids":[")" + hex_encode(note.id) + R"("]})")});
  index.subscribe(4, "too-late", {filter(R"({"since":101})")});

  std::set<std::pair<ConnectionId, std::string>> expected = {
      {1, "by-kind"}, {1, "by-author"}, {2, "by-tag"}, {3, "everything"}, {3, "two-filters-both-match"},
      {3, "by-id"}};
  EXPECT_EQ(matches(index, note), expected);
}

TEST(SubscriptionIndex, ReplaceUnsubscribeAndDisconnect) {
  auto alice = nostr::Keypair::generate();
  nostr::Event note = nostr::sign_event({100, 1, {}, "x"}, alice);
  SubscriptionIndex index;
  index.subscribe(1, "s", {filter(R"({"kinds":[1]})")});
  EXPECT_EQ(matches(index, note).size(), 1u);
  index.subscribe(1, "s", {filter(R"({"kinds":[2]})")});  // same id replaces
  EXPECT_TRUE(matches(index, note).empty());
  EXPECT_EQ(index.subscription_count(1), 1u);
  index.subscribe(1, "t", {filter("{}")});
  index.subscribe(2, "u", {filter("{}")});
  EXPECT_TRUE(index.unsubscribe(1, "t"));
  EXPECT_FALSE(index.unsubscribe(1, "t"));
  EXPECT_EQ(matches(index, note).size(), 1u);
  index.remove_connection(2);
  index.remove_connection(1);
  EXPECT_TRUE(matches(index, note).empty());
  EXPECT_EQ(index.total_subscriptions(), 0u);
}

TEST(SubscriptionIndex, ManySubscribersOnlyMatchingOnesAreTested) {
  SubscriptionIndex index;
  std::vector<nostr::Keypair> authors;
  for (int i = 0; i < 200; ++i) {
    authors.push_back(nostr::Keypair::generate());
    index.subscribe(static_cast<ConnectionId>(i), "s",
                    {filter(R"({"authors":[")" + authors.back().public_key().hex() + R"("]})")});
  }
  nostr::Event e = nostr::sign_event({1, 1, {}, ""}, authors[123]);
  auto m = matches(index, e);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.begin()->first, 123u);
}

}  // namespace
}  // namespace infernet::relay
