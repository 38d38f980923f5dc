#include "nostr/identity.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "nostr/nip19.hpp"

namespace infernet::nostr {
namespace {

namespace fs = std::filesystem;

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-keyfile-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(KeyFileTest, WritesPrivateFileAndReadsItBack) {
  auto keys = Keypair::generate();
  std::string path = (dir_ / "sub" / "identity.key").string();
  ASSERT_TRUE(write_key_file(path, keys, false));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ / "sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto back = read_key_file(path);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->public_key(), keys.public_key());
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_TRUE(line.starts_with("nsec1"));
}

TEST_F(KeyFileTest, NeverOverwritesUnlessAsked) {
  std::string path = (dir_ / "identity.key").string();
  auto first = Keypair::generate();
  ASSERT_TRUE(write_key_file(path, first, false));
  auto second = Keypair::generate();
  auto r = write_key_file(path, second, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(read_key_file(path)->public_key(), first.public_key());
  ASSERT_TRUE(write_key_file(path, second, true));
  EXPECT_EQ(read_key_file(path)->public_key(), second.public_key());
}

TEST_F(KeyFileTest, RefusesGroupOrWorldReadableFiles) {
  std::string path = (dir_ / "identity.key").string();
  ASSERT_TRUE(write_key_file(path, Keypair::generate(), false));
  for (mode_t mode : {0640, 0604, 0660, 0610}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto r = read_key_file(path);
    ASSERT_FALSE(r) << std::oct << mode;
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied);
    EXPECT_NE(r.error().message.find("chmod 600"), std::string::npos);
  }
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(read_key_file(path));
}

TEST_F(KeyFileTest, MissingAndGarbageFiles) {
  auto r = read_key_file((dir_ / "nope").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  fs::create_directories(dir_);
  std::string path = (dir_ / "garbage").string();
  std::ofstream(path) << "not a key\n";
  ::chmod(path.c_str(), 0600);
  r = read_key_file(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
}

TEST(KeyText, AcceptsNsecNpubAndHex) {
  auto keys = Keypair::generate();
  std::string nsec = nip19::encode_nsec(keys.secret());
  std::string npub = nip19::encode_npub(keys.public_key().bytes());
  EXPECT_EQ(parse_secret_key("  " + nsec + "\n")->public_key(), keys.public_key());
  EXPECT_EQ(parse_secret_key(keys.secret_hex())->public_key(), keys.public_key());
  EXPECT_EQ(*parse_public_key(npub), keys.public_key());
  EXPECT_EQ(*parse_public_key(keys.public_key().hex()), keys.public_key());
  EXPECT_FALSE(parse_secret_key(npub));
  EXPECT_FALSE(parse_public_key(nsec));
  std::string bad = nsec;
  bad.back() = bad.back() == 'q' ? 'p' : 'q';
  auto r = parse_secret_key(bad);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("checksum"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace infernet::nostr
