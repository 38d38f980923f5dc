#include "nostr/filter.hpp"

#include <gtest/gtest.h>

#include "core/encoding.hpp"

namespace infernet::nostr {
namespace {

class FilterTest : public ::testing::Test {
 protected:
  Keypair alice_ = Keypair::generate();
  Keypair bob_ = Keypair::generate();
  Event note_ = sign_event({1000, 1, {{"e", "abc"}, {"t", "ai"}, {"p"}}, "hi"}, alice_);
  Event profile_ = sign_event({2000, 0, {}, "{}"}, bob_);

  Filter parse(const std::string& json) {
    auto f = parse_filter(json);
    EXPECT_TRUE(f) << json << ": " << f.error().to_string();
    return f ? *f : Filter{};
  }
};

TEST_F(FilterTest, EmptyFilterMatchesEverything) {
  EXPECT_TRUE(parse("{}").matches(note_));
  EXPECT_TRUE(parse("{}").matches(profile_));
}

TEST_F(FilterTest, EachFieldNarrows) {
  EXPECT_TRUE(parse(R"({"kinds":[1,7]})").matches(note_));
  EXPECT_FALSE(parse(R"({"kinds":[1,7]})").matches(profile_));
  EXPECT_TRUE(parse(R"({"authors":[")" + alice_.public_key().hex() + R"("]})").matches(note_));
  EXPECT_FALSE(parse(R"({"authors":[")" + alice_.public_key().hex() + R"("]})").matches(profile_));
  EXPECT_TRUE(parse(R"({"ids":[")" + hex_encode(note_.id) + R"("]})").matches(note_));
  EXPECT_FALSE(parse(R"({"ids":[]})").matches(note_));  // an empty list matches nothing
  EXPECT_TRUE(parse(R"({"since":1000,"until":1000})").matches(note_));
  EXPECT_FALSE(parse(R"({"since":1001})").matches(note_));
  EXPECT_FALSE(parse(R"({"until":999})").matches(note_));
  EXPECT_TRUE(parse(R"({"#e":["x","abc"]})").matches(note_));
  EXPECT_FALSE(parse(R"({"#e":["x"]})").matches(note_));
  EXPECT_FALSE(parse(R"({"#p":[""]})").matches(note_));  // a tag without a value matches no value
  EXPECT_TRUE(parse(R"({"#e":["abc"],"#t":["ai"],"kinds":[1]})").matches(note_));
  EXPECT_FALSE(parse(R"({"#e":["abc"],"#t":["ml"]})").matches(note_));
}

TEST_F(FilterTest, AnyOfSeveralFilters) {
  std::vector<Filter> filters = {parse(R"({"kinds":[0]})"), parse(R"({"#t":["ai"]})")};
  EXPECT_TRUE(matches_any(filters, note_));
  EXPECT_TRUE(matches_any(filters, profile_));
  filters.pop_back();
  EXPECT_FALSE(matches_any(filters, note_));
}

TEST_F(FilterTest, RoundTripsThroughJson) {
  Filter f = parse(R"({"ids":[")" + hex_encode(note_.id) +
                   R"("],"kinds":[1],"#t":["a\"b"],"since":5,"until":9,"limit":3})");
  auto back = parse_filter(to_json(f));
  ASSERT_TRUE(back);
  EXPECT_EQ(to_json(*back), to_json(f));
  EXPECT_EQ(back->limit, 3u);
  EXPECT_EQ(back->tags.at(0).values.at(0), "a\"b");
}

TEST(FilterErrors, NameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([])", "JSON object"},
      {R"({"ids":"x"})", "ids: must be an array"},
      {R"({"authors":["ABC"]})", "authors[0]: must be 64 lowercase hex"},
      {R"({"kinds":[70000]})", "kinds[0]"},
      {R"({"kinds":[-1]})", "kinds[0]"},
      {R"({"since":-1})", "since: must be a non-negative integer"},
      {R"({"limit":"10"})", "limit: must be a non-negative integer"},
      {R"({"#e":[1]})", "#e[0]: must be a string"},
      {R"({"kinds":[1)", "invalid JSON"},
  };
  for (const auto& [json, fragment] : cases) {
    auto f = parse_filter(json);
    ASSERT_FALSE(f) << json;
    EXPECT_NE(f.error().message.find(fragment), std::string::npos) << json << " gave " << f.error().message;
  }
  FilterLimits limits;
  limits.max_values = 2;
  auto f = parse_filter(R"({"kinds":[1,2,3]})", limits);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ErrorCode::kLimitExceeded);
}

}  // namespace
}  // namespace infernet::nostr
