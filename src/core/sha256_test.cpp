#include "core/sha256.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/encoding.hpp"

namespace infernet {
namespace {

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(hex_encode(sha256(std::string_view(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_encode(sha256(std::string_view("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, SameAnswerFromManyThreads) {
  std::vector<std::thread> threads;
  std::vector<std::string> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i)
        results[t] = hex_encode(sha256(std::string_view("abc")));
    });
  }
  for (auto& th : threads)
    th.join();
  for (const auto& r : results)
    EXPECT_EQ(r, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HmacSha256, Rfc4231) {
  // Test case 2 and test case 6 (key longer than the block).
  std::string key2 = "Jefe";
  std::string data2 = "what do ya want for nothing?";
  EXPECT_EQ(hex_encode(hmac_sha256(as_bytes(key2), {as_bytes(data2)})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  std::string key6(131, '\xaa');
  std::string data6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  EXPECT_EQ(
      hex_encode(hmac_sha256(as_bytes(key6), {as_bytes(data6.substr(0, 10)), as_bytes(data6.substr(10))})),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

}  // namespace
}  // namespace infernet
