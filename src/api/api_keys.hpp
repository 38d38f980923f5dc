// Local API keys (docs/api.md, "Authentication"): random bearer secrets that `infernet apikey` creates in a
// SQLite file of the node's data directory and the API checks on each request.
//
// Only the SHA-256 of a key is stored, so a copy of the file does not reveal any key. The CLI writes the file
// while the node runs; the node reads it on every check (one indexed SELECT), so a new or revoked key counts
// from the next request, without a restart.
//
// Thread-safe: every method takes the store's mutex (one SQLite connection, used by one thread at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "store/sqlite.hpp"

namespace infernet::api {

// What a credential may do. kSubmit includes kRead.
enum class Scope { kRead, kSubmit };

// "read" or "submit".
std::string_view scope_name(Scope scope);
// "read" or "submit" -> the scope. Errors: kInvalidInput "<field>: expected read or submit, got '...'".
Result<Scope> parse_scope(std::string_view field, std::string_view text);
// True when `granted` allows what `needed` asks.
bool scope_allows(Scope granted, Scope needed);

// The text every key starts with, so a leaked key is recognisable (secret scanners, logs).
inline constexpr std::string_view kApiKeyPrefix = "inf_";
// Longest name a key may have, in bytes.
constexpr size_t kMaxApiKeyNameBytes = 64;

struct ApiKeyRecord {
  std::string id;  // 12 lower-case hex characters, public: `apikey list` shows it, `apikey revoke` takes it
  std::string name;
  Scope scope = Scope::kRead;
  int64_t created_at = 0;    // Unix seconds
  int64_t expires_at = 0;    // Unix seconds; 0: never
  int64_t last_used_at = 0;  // Unix seconds, to the minute; 0: never used
};

struct NewApiKey {
  ApiKeyRecord record;
  std::string secret;  // "inf_" + 64 hex characters; shown once, never stored
};

class ApiKeyStore {
 public:
  // Opens (creating if missing) the key file at `path`, or ":memory:" for tests. Errors: kIo (cannot open,
  // not a database), kUnsupported (written by a newer build).
  static Result<std::unique_ptr<ApiKeyStore>> open(const std::string& path);

  // A new key with 32 random bytes. `name` may be empty; at most kMaxApiKeyNameBytes of printable UTF-8
  // without control characters. `expires_at` is Unix seconds, 0 for never. Errors: kInvalidInput naming
  // "name" or "expires_at" (not after `now`); kIo.
  Result<NewApiKey> create(std::string_view name, Scope scope, int64_t now, int64_t expires_at);

  // Every key, oldest first. Errors: kIo.
  Result<std::vector<ApiKeyRecord>> list();

  // Deletes the key: the next request using it is refused. Errors: kNotFound "no API key with id '...'",
  // kIo.
  Status revoke(std::string_view id);

  // The key `secret` names, and records its use (at most one write a minute per key). Errors:
  // kUnauthorized "unknown or revoked API key" (also for text that is not a key at all) or "expired API key"
  // (expires_at <= now); kIo when the file cannot be read.
  Result<ApiKeyRecord> verify(std::string_view secret, int64_t now);

 private:
  explicit ApiKeyStore(store::Database db) : db_(std::move(db)) {}

  std::mutex mu_;
  store::Database db_;  // guarded by mu_
};

}  // namespace infernet::api
