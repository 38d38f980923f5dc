#include "nostr/keys.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/encoding.hpp"

namespace infernet::nostr {
namespace {

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ','))
    out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// The 19 official BIP-340 vectors (tests/data/bip340-test-vectors.csv).
TEST(Bip340, OfficialVectors) {
  std::ifstream in(std::string(INFERNET_TEST_DATA_DIR) + "/bip340-test-vectors.csv");
  ASSERT_TRUE(in.good());
  std::string line;
  std::getline(in, line);  // header
  int rows = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto cols = split_csv(line);
    ASSERT_GE(cols.size(), 7u) << line;
    SCOPED_TRACE("vector " + cols[0] + " " + (cols.size() > 7 ? cols[7] : ""));
    ++rows;
    auto msg = hex_decode(lower(cols[4]));
    ASSERT_TRUE(msg);
    auto sig_bytes = hex_decode(lower(cols[5]));
    ASSERT_TRUE(sig_bytes);
    Signature sig{};
    std::copy(sig_bytes->begin(), sig_bytes->end(), sig.begin());
    bool expected = cols[6] == "TRUE";

    if (!cols[1].empty()) {
      auto kp = Keypair::from_secret_hex(lower(cols[1]));
      ASSERT_TRUE(kp);
      EXPECT_EQ(kp->public_key().hex(), lower(cols[2]));
      auto aux = hex_decode_array<32>(lower(cols[3]));
      ASSERT_TRUE(aux);
      Signature made = msg->size() == 32 ? kp->sign(*reinterpret_cast<const Hash32*>(msg->data()), *aux)
                                         : kp->sign_message(*msg, *aux);
      EXPECT_EQ(hex_encode(made), lower(cols[5]));
    }
    auto pk = PublicKey::from_hex(lower(cols[2]));
    if (!pk) {
      EXPECT_FALSE(expected) << "public key refused but the vector says it verifies";
      continue;
    }
    EXPECT_EQ(pk->verify_message(*msg, sig), expected);
  }
  EXPECT_EQ(rows, 19);
}

TEST(Keypair, GeneratedKeysSignAndVerify) {
  auto a = Keypair::generate();
  auto b = Keypair::generate();
  EXPECT_NE(a.public_key(), b.public_key());
  Hash32 msg = sha256(std::string_view("hello"));
  auto sig = a.sign(msg);
  EXPECT_TRUE(a.public_key().verify(msg, sig));
  EXPECT_FALSE(b.public_key().verify(msg, sig));
  sig[10] ^= 1;
  EXPECT_FALSE(a.public_key().verify(msg, sig));
}

TEST(Keypair, RefusesInvalidSecrets) {
  EXPECT_FALSE(Keypair::from_secret_hex(std::string(64, '0')));
  // The curve order n itself is not a valid secret.
  EXPECT_FALSE(Keypair::from_secret_hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"));
  EXPECT_FALSE(Keypair::from_secret_hex("ABCD"));
  EXPECT_FALSE(PublicKey::from_hex(std::string(63, 'a')));
}

TEST(Keypair, EcdhIsSymmetric) {
  auto a = Keypair::generate();
  auto b = Keypair::generate();
  EXPECT_EQ(a.ecdh_x(b.public_key()), b.ecdh_x(a.public_key()));
}

TEST(Keypair, SharedContextIsSafeAcrossThreads) {
  auto kp = Keypair::generate();
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        Hash32 msg = sha256(std::to_string(t * 1000 + i));
        ok[t] += kp.public_key().verify(msg, kp.sign(msg)) ? 1 : 0;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  for (int v : ok)
    EXPECT_EQ(v, 200);
}

}  // namespace
}  // namespace infernet::nostr
