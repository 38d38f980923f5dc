#include "core/encoding.hpp"

#include <gtest/gtest.h>

namespace infernet {
namespace {

TEST(Hex, RoundTrips) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(hex_encode(b), "0001abff");
  auto back = hex_decode("0001abff");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, b);
}

TEST(Hex, RefusesUppercaseOddLengthAndJunk) {
  auto upper = hex_decode("00AB");
  ASSERT_FALSE(upper);
  EXPECT_EQ(upper.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(upper.error().message.find("uppercase"), std::string::npos);
  EXPECT_FALSE(hex_decode("abc"));
  EXPECT_FALSE(hex_decode("zz"));
  std::array<uint8_t, 2> two{};
  EXPECT_FALSE(hex_decode_fixed("abcd12", two));
  EXPECT_FALSE(hex_decode_fixed("ABCD", two));
  EXPECT_TRUE(hex_decode_fixed("abcd", two));
  EXPECT_EQ(two[0], 0xab);
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, enc] : vectors) {
    EXPECT_EQ(base64_encode(as_bytes(plain)), enc);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(as_chars(*dec), plain);
  }
}

TEST(Base64, AcceptsMissingPaddingRefusesGarbage) {
  auto dec = base64_decode("Zm9vYg");
  ASSERT_TRUE(dec);
  EXPECT_EQ(as_chars(*dec), "foob");
  EXPECT_FALSE(base64_decode("Zm9v\nYg=="));
  EXPECT_FALSE(base64_decode("Zm9-"));
  EXPECT_FALSE(base64_decode("Z"));
  EXPECT_FALSE(base64_decode("Zh=="));  // non-zero trailing bits: a second spelling of "f"
}

TEST(Utf8, ValidatesStrictly) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("abc\xe2\x82"));       // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

}  // namespace
}  // namespace infernet
