#include "core/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace infernet {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("infernet-config-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    env_["INFERNET_DATA_DIR"] = dir_.string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write_file(const std::string& text) { std::ofstream(dir_ / "infernet.toml") << text; }
  ConfigSources sources() {
    ConfigSources s;
    s.environment = &env_;
    return s;
  }

  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsWhenNothingIsSet) {
  std::map<std::string, std::string> empty;
  ConfigSources s;
  s.environment = &empty;
  s.config_file = "";
  auto c = Config::load(s);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->get_string("log.level"), "info");
  EXPECT_EQ(c->source_of("log.level"), "default");
  EXPECT_EQ(c->get_int("nip98.max_age_seconds"), 60);
}

TEST_F(ConfigTest, FileThenEnvThenFlagsInThatOrder) {
  write_file("[log]\nlevel = \"debug\"\n[nip98]\nmax_age_seconds = 30\n");
  auto c = Config::load(sources());
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->get_string("log.level"), "debug");
  EXPECT_EQ(c->get_int("nip98.max_age_seconds"), 30);
  EXPECT_NE(c->source_of("log.level").find("file"), std::string::npos);

  env_["INFERNET_LOG_LEVEL"] = "warn";
  c = Config::load(sources());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get_string("log.level"), "warn");
  EXPECT_EQ(c->source_of("log.level"), "env INFERNET_LOG_LEVEL");

  auto s = sources();
  s.overrides = {"log.level=error"};
  c = Config::load(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get_string("log.level"), "error");
  EXPECT_EQ(c->source_of("log.level"), "flag");
  EXPECT_EQ(c->key_file(), dir_.string() + "/identity.key");
}

TEST_F(ConfigTest, UnknownKeysAndBadValuesAreErrorsNamingTheKey) {
  write_file("[log]\nlevl = \"debug\"\n");
  auto c = Config::load(sources());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("log.levl"), std::string::npos);

  write_file("[nip98]\nmax_age_seconds = \"soon\"\n");
  c = Config::load(sources());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("nip98.max_age_seconds"), std::string::npos);

  write_file("");
  auto s = sources();
  s.overrides = {"log.level=loud"};
  c = Config::load(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidInput);
  s.overrides = {"no-equals-sign"};
  EXPECT_FALSE(Config::load(s));
}

TEST_F(ConfigTest, TomlSyntaxErrorNamesFileAndLine) {
  write_file("[log]\nlevel = \n");
  auto c = Config::load(sources());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("infernet.toml:2"), std::string::npos) << c.error().message;
}

TEST_F(ConfigTest, MissingExplicitFileIsNotFound) {
  auto s = sources();
  s.config_file = (dir_ / "nope.toml").string();
  auto c = Config::load(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
}

TEST(ConfigKeys, EnvNames) {
  EXPECT_EQ(config_env_name("log.level"), "INFERNET_LOG_LEVEL");
}

TEST(ConfigKeys, EveryKeyIsDocumented) {
  std::ifstream doc(std::string(INFERNET_TEST_DATA_DIR) + "/../../docs/config.md");
  ASSERT_TRUE(doc.good()) << "docs/config.md is missing";
  std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  for (const auto& k : config_keys()) {
    std::string quoted = "`";
    quoted += k.name;
    quoted += '`';
    EXPECT_NE(text.find(quoted), std::string::npos) << k.name << " is not in docs/config.md";
    EXPECT_NE(text.find(config_env_name(k.name)), std::string::npos) << k.name;
  }
}

}  // namespace
}  // namespace infernet
