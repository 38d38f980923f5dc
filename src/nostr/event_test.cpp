#include "nostr/event.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include <boost/json.hpp>

#include "core/encoding.hpp"

namespace infernet::nostr {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Events signed by nostr-tools (tests/data/nostr-tools-events.json): our parser, canonical serializer and
// verifier must agree with it on every one.
TEST(Event, ReproducesNostrToolsIdsForTrickyContent) {
  auto doc = boost::json::parse(read_file(std::string(INFERNET_TEST_DATA_DIR) + "/nostr-tools-events.json"));
  const auto& events = doc.at("events").as_array();
  ASSERT_GE(events.size(), 10u);
  for (const auto& item : events) {
    std::string name(item.at("name").as_string());
    SCOPED_TRACE(name);
    std::string text = boost::json::serialize(item.at("event"));
    auto ev = parse_event(text);
    ASSERT_TRUE(ev) << ev.error().to_string();
    EXPECT_EQ(hex_encode(compute_id(*ev)), std::string(item.at("event").at("id").as_string()));
    EXPECT_TRUE(verify_event(*ev)) << verify_event(*ev).error().to_string();
    // Re-serializing and re-parsing keeps the id.
    auto again = parse_event(to_json(*ev));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, ev->id);
    EXPECT_TRUE(verify_event(*again));
  }
}

TEST(Event, CanonicalEscapingMatchesJsonStringify) {
  std::string out;
  static constexpr char kRaw[] = "a\"b\\c/d\x7f\b\f\n\r\t\x01\x1f";
  append_json_string(out, std::string_view(kRaw, sizeof(kRaw) - 1));
  EXPECT_EQ(out, "\"a\\\"b\\\\c/d\x7f\\b\\f\\n\\r\\t\\u0001\\u001f\"");
  out.clear();
  append_json_string(out, std::string("\0", 1));
  EXPECT_EQ(out, "\"\\u0000\"");
  out.clear();
  append_json_string(out, "h\xc3\xa9 \xf0\x9f\x8e\x89");
  EXPECT_EQ(out, "\"h\xc3\xa9 \xf0\x9f\x8e\x89\"");
}

TEST(Event, CanonicalFormLayout) {
  Event e;
  e.pubkey.fill(0xab);
  e.created_at = 1700000000;
  e.kind = 1;
  e.tags = {{"e", "x"}, {}};
  e.content = "hi";
  std::string out;
  append_canonical(out, e.pubkey, e.created_at, e.kind, e.tags, e.content);
  EXPECT_EQ(out, "[0,\"" + std::string(64, 'a').replace(0, 64, hex_encode(e.pubkey)) +
                     "\",1700000000,1,[[\"e\",\"x\"],[]],\"hi\"]");
}

TEST(Event, SignThenVerifyAndDetectTampering) {
  auto keys = Keypair::generate();
  EventDraft d{1700000000, 1, {{"t", "infernet"}}, "hello"};
  Event e = sign_event(d, keys);
  EXPECT_TRUE(verify_event(e));
  EXPECT_EQ(e.pubkey, keys.public_key().bytes());

  Event content_changed = e;
  content_changed.content = "hellO";
  auto r = verify_event(content_changed);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidId);

  Event sig_changed = e;
  sig_changed.sig[0] ^= 1;
  r = verify_event(sig_changed);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidSignature);

  // A different author with a recomputed id: the id matches, the signature is not theirs.
  Event other_author = e;
  other_author.pubkey = Keypair::generate().public_key().bytes();
  other_author.id = compute_id(other_author);
  r = verify_event(other_author);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidSignature);
}

TEST(Event, ToJsonRoundTrips) {
  auto keys = Keypair::generate();
  Event e = sign_event({1, 30001, {{"d", "a\nb"}, {"p", keys.public_key().hex()}}, "\"quoted\""}, keys);
  auto back = parse_event(to_json(e));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->id, e.id);
  EXPECT_EQ(back->tags, e.tags);
  EXPECT_EQ(back->content, e.content);
  EXPECT_EQ(back->sig, e.sig);
  EXPECT_EQ(back->tag_value("d"), "a\nb");
  EXPECT_EQ(back->find_tag("x"), nullptr);
}

struct BadCase {
  std::string mutation;
  std::string expected_fragment;
};

// Keeps ctest's test names short and stable (gtest would otherwise print the struct's raw bytes).
void PrintTo(const BadCase& c, std::ostream* os) {
  std::string shown = c.mutation.substr(0, c.mutation.find('='));
  *os << shown;
}

class EventParseErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(EventParseErrors, NameTheProblem) {
  auto keys = Keypair::from_secret_hex(std::string(63, '0') + "1");
  ASSERT_TRUE(keys);
  Event e = sign_event({1700000000, 1, {}, "x"}, *keys);
  auto v = boost::json::parse(to_json(e)).as_object();
  const std::string& m = GetParam().mutation;
  std::string text;
  if (m == "truncated") {
    text = to_json(e).substr(0, 40);
  } else if (m == "not-object") {
    text = "[1,2,3]";
  } else if (m == "bad-utf8") {
    text = to_json(e);
    text.replace(text.find("\"x\""), 3, "\"\xff\"");
  } else {
    auto colon = m.find('=');
    std::string field = m.substr(0, colon);
    if (colon == std::string::npos) {
      v.erase(field);
    } else {
      v[field] = boost::json::parse(m.substr(colon + 1));
    }
    text = boost::json::serialize(v);
  }
  auto r = parse_event(text);
  ASSERT_FALSE(r) << m;
  EXPECT_NE(r.error().message.find(GetParam().expected_fragment), std::string::npos)
      << m << " gave: " << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, EventParseErrors,
    ::testing::Values(BadCase{"truncated", "invalid JSON"}, BadCase{"not-object", "JSON object"},
                      BadCase{"bad-utf8", "invalid JSON"}, BadCase{"id", "id: missing"},
                      BadCase{"id=\"ABCDEF\"", "id: must be 64 lowercase hex"},
                      BadCase{"id=\"" + std::string(64, 'A') + "\"", "id: must be 64 lowercase hex"},
                      BadCase{"pubkey=123", "pubkey: must be a string"},
                      BadCase{"sig=\"" + std::string(126, 'a') + "\"", "sig: must be 128 lowercase hex"},
                      BadCase{"kind=-1", "kind: must be an integer"}, BadCase{"kind=65536", "kind: must be"},
                      BadCase{"kind=1.5", "kind: must be"}, BadCase{"kind=\"1\"", "kind: must be"},
                      BadCase{"created_at=-5", "created_at: must be a non-negative"},
                      BadCase{"created_at=18446744073709551615", "created_at"},
                      BadCase{"tags={}", "tags: must be an array"}, BadCase{"tags=[1]", "tags[0]: must be"},
                      BadCase{"tags=[[\"e\",2]]", "tags[0][1]: must be a string"},
                      BadCase{"content", "content: missing"},
                      BadCase{"content=null", "content: must be a string"}));

TEST(Event, LimitsAreEnforced) {
  EventLimits small;
  small.max_json_bytes = 100;
  auto keys = Keypair::generate();
  Event e = sign_event({1, 1, {}, std::string(200, 'x')}, keys);
  auto r = parse_event(to_json(e), small);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kLimitExceeded);

  EventLimits few_tags;
  few_tags.max_tags = 2;
  Event many = sign_event({1, 1, {{"a"}, {"b"}, {"c"}}, ""}, keys);
  r = parse_event(to_json(many), few_tags);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kLimitExceeded);
}

TEST(Event, IntegralDoublesAreIntegers) {
  auto keys = Keypair::generate();
  Event e = sign_event({1700000000, 1, {}, ""}, keys);
  std::string text = to_json(e);
  text.replace(text.find("1700000000"), 10, "1.7e9");
  auto r = parse_event(text);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->created_at, 1700000000);
  EXPECT_TRUE(verify_event(*r));
}

TEST(Event, KindClasses) {
  EXPECT_EQ(classify_kind(1), KindClass::kRegular);
  EXPECT_EQ(classify_kind(0), KindClass::kReplaceable);
  EXPECT_EQ(classify_kind(3), KindClass::kReplaceable);
  EXPECT_EQ(classify_kind(10002), KindClass::kReplaceable);
  EXPECT_EQ(classify_kind(20001), KindClass::kEphemeral);
  EXPECT_EQ(classify_kind(30023), KindClass::kAddressable);
  EXPECT_EQ(classify_kind(40000), KindClass::kRegular);
}

TEST(EventDraft, ParsesTemplates) {
  auto d = parse_event_draft(R"({"kind":1,"content":"hi","tags":[["t","x"]]})");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, 1u);
  EXPECT_EQ(d->content, "hi");
  EXPECT_EQ(d->created_at, 0);
  EXPECT_FALSE(parse_event_draft(R"({"content":"hi"})"));
  EXPECT_FALSE(parse_event_draft(R"({"kind":1,"tags":"x"})"));
}

}  // namespace
}  // namespace infernet::nostr
