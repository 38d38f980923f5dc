#include "api/api_keys.hpp"

#include <array>

#include "core/encoding.hpp"
#include "core/random.hpp"
#include "core/sha256.hpp"

namespace infernet::api {
namespace {

constexpr size_t kSecretBytes = 32;
constexpr size_t kIdBytes = 6;
// last_used_at is kept to the minute: a write per request would make every read a write.
constexpr int64_t kLastUsedResolutionSeconds = 60;

constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  scope TEXT NOT NULL,
  key_hash BLOB NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL DEFAULT 0
);
)sql";

constexpr std::string_view kColumns = "id, name, scope, created_at, expires_at, last_used_at";

Error unknown_key() {
  return Error{ErrorCode::kUnauthorized, "unknown or revoked API key"};
}

std::string random_hex(size_t bytes) {
  std::array<uint8_t, kSecretBytes> buffer{};
  fill_random(std::span<uint8_t>(buffer.data(), bytes));
  return hex_encode(std::span<const uint8_t>(buffer.data(), bytes));
}

Status check_name(std::string_view name) {
  if (name.size() > kMaxApiKeyNameBytes) {
    return make_error(ErrorCode::kInvalidInput,
                      "name: at most " + std::to_string(kMaxApiKeyNameBytes) + " bytes");
  }
  if (!is_valid_utf8(name)) return make_error(ErrorCode::kInvalidInput, "name: must be UTF-8");
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return make_error(ErrorCode::kInvalidInput, "name: control characters are not allowed");
    }
  }
  return {};
}

ApiKeyRecord read_record(const store::Statement& row) {
  ApiKeyRecord r;
  r.id = std::string(row.column_text(0));
  r.name = std::string(row.column_text(1));
  r.scope = row.column_text(2) == "submit" ? Scope::kSubmit : Scope::kRead;
  r.created_at = row.column_int64(3);
  r.expires_at = row.column_int64(4);
  r.last_used_at = row.column_int64(5);
  return r;
}

}  // namespace

std::string_view scope_name(Scope scope) {
  return scope == Scope::kSubmit ? "submit" : "read";
}

Result<Scope> parse_scope(std::string_view field, std::string_view text) {
  if (text == "read") return Scope::kRead;
  if (text == "submit") return Scope::kSubmit;
  return make_error(ErrorCode::kInvalidInput,
                    std::string(field) + ": expected read or submit, got '" + std::string(text) + "'");
}

bool scope_allows(Scope granted, Scope needed) {
  return granted == Scope::kSubmit || needed == Scope::kRead;
}

Result<std::unique_ptr<ApiKeyStore>> ApiKeyStore::open(const std::string& path) {
  auto db = store::Database::open(path);
  if (!db) return tl::unexpected(db.error());
  const std::string_view steps[] = {kSchemaV1};
  if (auto st = store::migrate(*db, steps); !st) return tl::unexpected(st.error());
  return std::unique_ptr<ApiKeyStore>(new ApiKeyStore(std::move(*db)));
}

Result<NewApiKey> ApiKeyStore::create(std::string_view name, Scope scope, int64_t now, int64_t expires_at) {
  if (auto st = check_name(name); !st) return tl::unexpected(st.error());
  if (expires_at != 0 && expires_at <= now) {
    return make_error(ErrorCode::kInvalidInput, "expires_at: must be in the future");
  }
  NewApiKey out;
  out.secret = std::string(kApiKeyPrefix) + random_hex(kSecretBytes);
  out.record.id = random_hex(kIdBytes);
  out.record.name = std::string(name);
  out.record.scope = scope;
  out.record.created_at = now;
  out.record.expires_at = expires_at;
  Hash32 hash = sha256(out.secret);

  std::lock_guard lock(mu_);
  auto insert = db_.prepare(
      "INSERT INTO api_keys (id, name, scope, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
  if (!insert) return tl::unexpected(insert.error());
  for (Status st : {insert->bind_text(1, out.record.id), insert->bind_text(2, out.record.name),
                    insert->bind_text(3, scope_name(scope)), insert->bind_blob(4, hash),
                    insert->bind_int64(5, now), insert->bind_int64(6, expires_at)}) {
    if (!st) return tl::unexpected(st.error());
  }
  if (auto step = insert->step(); !step) return tl::unexpected(step.error());
  return out;
}

Result<std::vector<ApiKeyRecord>> ApiKeyStore::list() {
  std::lock_guard lock(mu_);
  auto select = db_.prepare("SELECT " + std::string(kColumns) + " FROM api_keys ORDER BY created_at, id");
  if (!select) return tl::unexpected(select.error());
  std::vector<ApiKeyRecord> out;
  for (;;) {
    auto step = select->step();
    if (!step) return tl::unexpected(step.error());
    if (*step == store::Statement::Step::kDone) break;
    out.push_back(read_record(*select));
  }
  return out;
}

Status ApiKeyStore::revoke(std::string_view id) {
  std::lock_guard lock(mu_);
  auto remove = db_.prepare("DELETE FROM api_keys WHERE id = ?");
  if (!remove) return tl::unexpected(remove.error());
  if (auto st = remove->bind_text(1, id); !st) return st;
  if (auto step = remove->step(); !step) return tl::unexpected(step.error());
  if (db_.changes() == 0) {
    return make_error(ErrorCode::kNotFound, "no API key with id '" + std::string(id) + "'");
  }
  return {};
}

Result<ApiKeyRecord> ApiKeyStore::verify(std::string_view secret, int64_t now) {
  // Anything that cannot be a key is refused without a query; a real key's hash is looked up, which reveals
  // nothing useful about other keys (they are 256-bit random).
  if (!secret.starts_with(kApiKeyPrefix) || secret.size() != kApiKeyPrefix.size() + 2 * kSecretBytes) {
    return tl::unexpected(unknown_key());
  }
  Hash32 hash = sha256(secret);
  std::lock_guard lock(mu_);
  auto select = db_.cached("SELECT " + std::string(kColumns) + " FROM api_keys WHERE key_hash = ?");
  if (!select) return tl::unexpected(select.error());
  store::Statement& stmt = **select;
  if (auto st = stmt.bind_blob(1, hash); !st) return tl::unexpected(st.error());
  auto step = stmt.step();
  if (!step) return tl::unexpected(step.error());
  if (*step == store::Statement::Step::kDone) return tl::unexpected(unknown_key());
  ApiKeyRecord record = read_record(stmt);
  stmt.reset();
  if (record.expires_at != 0 && record.expires_at <= now) {
    return make_error(ErrorCode::kUnauthorized, "expired API key");
  }
  if (now - record.last_used_at >= kLastUsedResolutionSeconds) {
    auto touch = db_.cached("UPDATE api_keys SET last_used_at = ? WHERE id = ?");
    // Bookkeeping only: a busy file (the CLI writing) must not refuse a valid key.
    if (touch && (*touch)->bind_int64(1, now) && (*touch)->bind_text(2, record.id)) {
      if ((*touch)->step()) record.last_used_at = now;
      (*touch)->reset();
    }
  }
  return record;
}

}  // namespace infernet::api
