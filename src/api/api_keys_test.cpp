#include "api/api_keys.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "core/encoding.hpp"
#include "core/sha256.hpp"

namespace infernet::api {
namespace {

constexpr int64_t kNow = 1'800'000'000;

std::unique_ptr<ApiKeyStore> memory_store() {
  auto store = ApiKeyStore::open(":memory:");
  EXPECT_TRUE(store) << store.error().message;
  return std::move(*store);
}

TEST(ApiKeyStore, CreatedKeyVerifiesWithItsScopeAndIsStoredOnlyAsAHash) {
  auto path =
      std::filesystem::temp_directory_path() / ("api_keys_test_" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(path);
  auto store = ApiKeyStore::open(path.string());
  ASSERT_TRUE(store) << store.error().message;
  auto made = (*store)->create("laptop", Scope::kSubmit, kNow, 0);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_TRUE(made->secret.starts_with("inf_"));
  EXPECT_EQ(made->secret.size(), 4u + 64u);
  EXPECT_EQ(made->record.id.size(), 12u);

  auto checked = (*store)->verify(made->secret, kNow + 5);
  ASSERT_TRUE(checked) << checked.error().message;
  EXPECT_EQ(checked->id, made->record.id);
  EXPECT_EQ(checked->scope, Scope::kSubmit);
  EXPECT_EQ(checked->name, "laptop");

  // The file holds the hash, never the key itself.
  store->reset();
  std::string bytes;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
      bytes.append(buf, n);
    std::fclose(f);
    // The WAL may hold the row too.
    if (FILE* w = std::fopen((path.string() + "-wal").c_str(), "rb")) {
      while ((n = std::fread(buf, 1, sizeof(buf), w)) > 0)
        bytes.append(buf, n);
      std::fclose(w);
    }
  }
  EXPECT_EQ(bytes.find(made->secret.substr(4)), std::string::npos);
  Hash32 hash = sha256(made->secret);
  EXPECT_NE(bytes.find(std::string(reinterpret_cast<const char*>(hash.data()), hash.size())),
            std::string::npos);

  // A second connection (the node, while the CLI made the key) sees it.
  auto reopened = ApiKeyStore::open(path.string());
  ASSERT_TRUE(reopened);
  EXPECT_TRUE((*reopened)->verify(made->secret, kNow));
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}

TEST(ApiKeyStore, UnknownMalformedRevokedAndExpiredKeysAreRefused) {
  auto store = memory_store();
  auto made = store->create("", Scope::kRead, kNow, kNow + 3600);
  ASSERT_TRUE(made);
  std::string other = made->secret;
  other.back() = other.back() == 'a' ? 'b' : 'a';
  for (const std::string& bad : {other, std::string("inf_"), std::string("not a key"), made->secret + "0"}) {
    auto r = store->verify(bad, kNow);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthorized);
    EXPECT_EQ(r.error().message, "unknown or revoked API key");
  }

  EXPECT_TRUE(store->verify(made->secret, kNow + 3599));
  auto expired = store->verify(made->secret, kNow + 3600);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(expired.error().message, "expired API key");

  ASSERT_TRUE(store->revoke(made->record.id));
  auto revoked = store->verify(made->secret, kNow);
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().message, "unknown or revoked API key");
  auto again = store->revoke(made->record.id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

TEST(ApiKeyStore, ListShowsMetadataAndLastUseButNoSecret) {
  auto store = memory_store();
  auto a = store->create("ci", Scope::kRead, kNow, 0);
  auto b = store->create("dashboard", Scope::kSubmit, kNow + 1, kNow + 86400);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(store->verify(b->secret, kNow + 100));
  auto keys = store->list();
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].id, a->record.id);
  EXPECT_EQ((*keys)[0].scope, Scope::kRead);
  EXPECT_EQ((*keys)[0].last_used_at, 0);
  EXPECT_EQ((*keys)[1].name, "dashboard");
  EXPECT_EQ((*keys)[1].expires_at, kNow + 86400);
  EXPECT_EQ((*keys)[1].last_used_at, kNow + 100);
  // Used again within the minute: not written again.
  ASSERT_TRUE(store->verify(b->secret, kNow + 130));
  EXPECT_EQ((*store->list())[1].last_used_at, kNow + 100);
  ASSERT_TRUE(store->verify(b->secret, kNow + 160));
  EXPECT_EQ((*store->list())[1].last_used_at, kNow + 160);
}

TEST(ApiKeyStore, BadNameOrExpiryIsRefusedNamingTheField) {
  auto store = memory_store();
  auto long_name = store->create(std::string(65, 'x'), Scope::kRead, kNow, 0);
  ASSERT_FALSE(long_name);
  EXPECT_EQ(long_name.error().message.rfind("name: ", 0), 0u);
  auto control = store->create("a\nb", Scope::kRead, kNow, 0);
  ASSERT_FALSE(control);
  EXPECT_EQ(control.error().message.rfind("name: ", 0), 0u);
  auto past = store->create("x", Scope::kRead, kNow, kNow);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().message.rfind("expires_at: ", 0), 0u);
  EXPECT_TRUE(store->list()->empty());
}

TEST(ApiKeyScope, SubmitImpliesRead) {
  EXPECT_TRUE(scope_allows(Scope::kSubmit, Scope::kRead));
  EXPECT_TRUE(scope_allows(Scope::kSubmit, Scope::kSubmit));
  EXPECT_TRUE(scope_allows(Scope::kRead, Scope::kRead));
  EXPECT_FALSE(scope_allows(Scope::kRead, Scope::kSubmit));
  EXPECT_EQ(*parse_scope("scope", "read"), Scope::kRead);
  EXPECT_EQ(*parse_scope("scope", "submit"), Scope::kSubmit);
  auto bad = parse_scope("scope", "admin");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "scope: expected read or submit, got 'admin'");
}

}  // namespace
}  // namespace infernet::api
