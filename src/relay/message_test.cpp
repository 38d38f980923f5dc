#include "relay/message.hpp"

#include <gtest/gtest.h>

#include "core/encoding.hpp"

namespace infernet::relay {
namespace {

MessageLimits limits() {
  return MessageLimits{};
}

TEST(ClientMessage, ParsesEveryCommand) {
  auto keys = nostr::Keypair::generate();
  nostr::Event e = nostr::sign_event({1, 1, {}, "hi"}, keys);
  std::string ev = nostr::to_json(e);

  auto m = parse_client_message("[\"EVENT\"," + ev + "]", limits());
  ASSERT_TRUE(m);
  ASSERT_TRUE(std::holds_alternative<EventMessage>(*m));
  EXPECT_EQ(std::get<EventMessage>(*m).event.id, e.id);

  m = parse_client_message(
      R"(["REQ","sub1",{"kinds":[1]},{"authors":[")" + keys.public_key().hex() + R"("]}])", limits());
  ASSERT_TRUE(m);
  auto& req = std::get<ReqMessage>(*m);
  EXPECT_EQ(req.subscription_id, "sub1");
  EXPECT_EQ(req.filters.size(), 2u);

  m = parse_client_message(R"(["COUNT","c",{}])", limits());
  ASSERT_TRUE(m);
  EXPECT_TRUE(std::holds_alternative<CountMessage>(*m));
  m = parse_client_message(R"(["CLOSE","sub1"])", limits());
  ASSERT_TRUE(m);
  EXPECT_EQ(std::get<CloseMessage>(*m).subscription_id, "sub1");
  m = parse_client_message("[\"AUTH\"," + ev + "]", limits());
  ASSERT_TRUE(m);
  EXPECT_TRUE(std::holds_alternative<AuthMessage>(*m));
  // A REQ with no filter is valid (it matches everything).
  EXPECT_TRUE(parse_client_message(R"(["REQ","all"])", limits()));
}

TEST(ClientMessage, RefusalsSayHowToAnswer) {
  auto keys = nostr::Keypair::generate();
  nostr::Event e = nostr::sign_event({1, 1, {}, "hi"}, keys);
  std::string ev = nostr::to_json(e);
  std::string bad_kind = ev;
  bad_kind.replace(bad_kind.find("\"kind\":1"), 8, "\"kind\":-1");

  auto m = parse_client_message("[\"EVENT\"," + bad_kind + "]", limits());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().command, "EVENT");
  EXPECT_EQ(m.error().event_id, hex_encode(e.id));  // so the relay can answer OK false for this id
  EXPECT_NE(m.error().error.message.find("kind"), std::string::npos);

  m = parse_client_message(R"(["REQ","s",{"kinds":"x"}])", limits());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().subscription_id, "s");
  EXPECT_NE(m.error().error.message.find("kinds"), std::string::npos);

  MessageLimits few = limits();
  few.max_filters = 1;
  m = parse_client_message(R"(["REQ","s",{},{}])", few);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().error.code, ErrorCode::kLimitExceeded);

  const std::pair<std::string, std::string> cases[] = {
      {"not json", "invalid JSON"},
      {"{}", "JSON array"},
      {"[]", "JSON array"},
      {"[1]", "JSON array"},
      {R"(["HELLO"])", "unknown command"},
      {R"(["REQ"])", "subscription id"},
      {R"(["REQ",""])", "subscription id"},
      {R"(["REQ",")" + std::string(65, 'x') + R"("])", "subscription id"},
      {R"(["CLOSE",1])", "subscription id"},
      {R"(["EVENT"])", "expected"},
      {R"(["EVENT",{}])", "missing"},
  };
  for (const auto& [text, fragment] : cases) {
    auto r = parse_client_message(text, limits());
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().error.message.find(fragment), std::string::npos)
        << text << ": " << r.error().error.message;
  }
  MessageLimits tiny = limits();
  tiny.max_message_bytes = 10;
  auto r = parse_client_message(R"(["REQ","abcdefgh"])", tiny);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().error.code, ErrorCode::kLimitExceeded);
}

TEST(RelayMessage, Shapes) {
  EXPECT_EQ(event_message("s", "{}"), R"(["EVENT","s",{}])");
  EXPECT_EQ(ok_message("ab", false, "invalid: \"x\""), R"(["OK","ab",false,"invalid: \"x\""])");
  EXPECT_EQ(eose_message("s"), R"(["EOSE","s"])");
  EXPECT_EQ(closed_message("s", "error: x"), R"(["CLOSED","s","error: x"])");
  EXPECT_EQ(notice_message("n"), R"(["NOTICE","n"])");
  EXPECT_EQ(auth_message("c"), R"(["AUTH","c"])");
  EXPECT_EQ(count_message("s", 3), R"(["COUNT","s",{"count":3}])");
}

}  // namespace
}  // namespace infernet::relay
