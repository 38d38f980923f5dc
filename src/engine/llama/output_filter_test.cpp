#include "engine/llama/output_filter.hpp"

#include <gtest/gtest.h>

namespace infernet::engine::llama {
namespace {

TEST(OutputFilterTest, PassesTextThroughWhenThereAreNoStopSequences) {
  OutputFilter f({});
  EXPECT_EQ(f.push("Hello"), "Hello");
  EXPECT_EQ(f.push(", world"), ", world");
  EXPECT_EQ(f.finish(), "");
  EXPECT_FALSE(f.stopped());
}

TEST(OutputFilterTest, HoldsBackAnUnfinishedUtf8CharacterUntilItCompletes) {
  OutputFilter f({});
  const std::string euro = "\xE2\x82\xAC";  // U+20AC in three bytes, split across tokens
  EXPECT_EQ(f.push("a" + euro.substr(0, 1)), "a");
  EXPECT_EQ(f.push(euro.substr(1, 1)), "");
  EXPECT_EQ(f.push(euro.substr(2, 1) + "b"), euro + "b");
}

TEST(OutputFilterTest, DropsAPartialCharacterLeftAtTheEnd) {
  OutputFilter f({});
  EXPECT_EQ(f.push("ok\xF0\x9F"), "ok");
  EXPECT_EQ(f.finish(), "");
}

TEST(OutputFilterTest, EndsBeforeAStopSequenceSplitAcrossPieces) {
  OutputFilter f({"END"});
  EXPECT_EQ(f.push("one E"), "one ");
  EXPECT_EQ(f.push("N"), "");
  EXPECT_EQ(f.push("D and more"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.push("later"), "");
  EXPECT_EQ(f.finish(), "");
}

TEST(OutputFilterTest, ReleasesHeldTextThatTurnsOutNotToBeAStop) {
  OutputFilter f({"\n\n"});
  EXPECT_EQ(f.push("line\n"), "line");
  EXPECT_EQ(f.push("next"), "\nnext");
  EXPECT_FALSE(f.stopped());
}

TEST(OutputFilterTest, TheEarliestOfSeveralStopSequencesWins) {
  OutputFilter f({"xyz", "b"});
  EXPECT_EQ(f.push("a xyz b"), "a ");
  EXPECT_TRUE(f.stopped());
}

TEST(OutputFilterTest, FinishShowsHeldTextThatNeverCompletedAStop) {
  OutputFilter f({"STOP"});
  EXPECT_EQ(f.push("almost ST"), "almost ");
  EXPECT_EQ(f.finish(), "ST");
}

TEST(OutputFilterTest, AStopSequenceSpanningTheResumedTextStopsTheRun) {
  OutputFilter f({"END"});
  f.resume_after("earlier text E");
  EXPECT_EQ(f.push("N"), "");
  EXPECT_FALSE(f.stopped());
  EXPECT_EQ(f.push("D more"), "");
  EXPECT_TRUE(f.stopped());
}

TEST(OutputFilterTest, ResumedTextIsNeverShownAgainNorMatchedOnItsOwn) {
  OutputFilter f({"END"});
  f.resume_after("it said END");  // wholly in the shown part: the earlier run was not stopped by it
  EXPECT_EQ(f.push("x"), "x");
  EXPECT_FALSE(f.stopped());
  // Once new text is shown, the resumed context no longer joins a stop sequence.
  OutputFilter g({"ab"});
  g.resume_after("a");
  EXPECT_EQ(g.push("cb"), "cb");
  EXPECT_FALSE(g.stopped());
}

TEST(CompleteUtf8PrefixTest, CountsOnlyWholeCharacters) {
  EXPECT_EQ(complete_utf8_prefix(""), 0U);
  EXPECT_EQ(complete_utf8_prefix("abc"), 3U);
  EXPECT_EQ(complete_utf8_prefix("a\xC3"), 1U);
  EXPECT_EQ(complete_utf8_prefix("a\xC3\xA9"), 3U);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0U);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98\x80"), 4U);
  // A stray continuation byte is not held back forever.
  EXPECT_EQ(complete_utf8_prefix("a\x80\x80\x80\x80"), 5U);
}

}  // namespace
}  // namespace infernet::engine::llama
