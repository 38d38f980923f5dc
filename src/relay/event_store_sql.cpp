#include "relay/internal/event_store_sql.hpp"

#include <array>
#include <type_traits>

namespace infernet::relay::internal {
namespace {

// Version 1 of the schema.
//
// events: one row per stored event; `json` is the serialization sent to clients, made once at insert.
//   d_tag is set for addressable events only ("" when the event has no d tag); expiration is NIP-40's.
// tags: the first value of each single-letter tag (the ones NIP-01 filters can ask for), once per
//   (event, name, value). created_at is repeated here so a "#p + since" query is answered from this table
//   alone. WITHOUT ROWID: the primary key is the lookup index, so a tag costs one B-tree insert, not two.
// deleted_ids: ids named by "e" tags of stored deletion requests, with the requester, so that the event
//   (by that author) is refused when it arrives, or arrives again, later.
// deleted_coords: for "a" tags of deletion requests, the newest deletion time per coordinate; versions at
//   or before it are refused. d_tag is "" for replaceable kinds.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE events (
  rowid INTEGER PRIMARY KEY,
  id BLOB NOT NULL UNIQUE,
  pubkey BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  d_tag TEXT,
  expiration INTEGER,
  json TEXT NOT NULL
);
CREATE INDEX events_created_at ON events(created_at);
CREATE INDEX events_pubkey_created_at ON events(pubkey, created_at);
CREATE INDEX events_kind_created_at ON events(kind, created_at);
CREATE INDEX events_pubkey_kind_created_at ON events(pubkey, kind, created_at);
CREATE INDEX events_address ON events(pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
CREATE INDEX events_expiration ON events(expiration) WHERE expiration IS NOT NULL;

CREATE TABLE tags (
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  event INTEGER NOT NULL,
  PRIMARY KEY (name, value, created_at, event)
) WITHOUT ROWID;
CREATE INDEX tags_event ON tags(event);

CREATE TABLE deleted_ids (
  id BLOB NOT NULL,
  pubkey BLOB NOT NULL,
  PRIMARY KEY (id, pubkey)
) WITHOUT ROWID;

CREATE TABLE deleted_coords (
  kind INTEGER NOT NULL,
  pubkey BLOB NOT NULL,
  d_tag TEXT NOT NULL,
  deleted_until INTEGER NOT NULL,
  PRIMARY KEY (kind, pubkey, d_tag)
) WITHOUT ROWID;
)sql";

constexpr std::array<std::string_view, 1> kSchema{kSchemaV1};

void append_placeholders(std::string& sql, size_t n) {
  sql += '(';
  for (size_t i = 0; i < n; ++i) {
    if (i != 0) sql += ',';
    sql += '?';
  }
  sql += ')';
}

// Appends " AND <conditions>" for every field of the filter. False when the filter matches nothing.
bool append_conditions(const nostr::Filter& f, int64_t now, SqlQuery& q) {
  std::string& sql = q.sql;
  sql += " WHERE (events.expiration IS NULL OR events.expiration > ?)";
  q.params.emplace_back(now);
  if (f.ids) {
    if (f.ids->empty()) return false;
    sql += " AND events.id IN ";
    append_placeholders(sql, f.ids->size());
    for (const auto& id : *f.ids)
      q.params.emplace_back(id);
  }
  if (f.authors) {
    if (f.authors->empty()) return false;
    sql += " AND events.pubkey IN ";
    append_placeholders(sql, f.authors->size());
    for (const auto& pubkey : *f.authors)
      q.params.emplace_back(pubkey);
  }
  if (f.kinds) {
    if (f.kinds->empty()) return false;
    sql += " AND events.kind IN ";
    append_placeholders(sql, f.kinds->size());
    for (uint32_t kind : *f.kinds)
      q.params.emplace_back(static_cast<int64_t>(kind));
  }
  if (f.since) {
    sql += " AND events.created_at >= ?";
    q.params.emplace_back(*f.since);
  }
  if (f.until) {
    sql += " AND events.created_at <= ?";
    q.params.emplace_back(*f.until);
  }
  for (const auto& cond : f.tags) {
    if (cond.name.size() != 1 || cond.values.empty()) return false;
    // The time bounds are repeated inside so the tag index narrows by time too, not only by value.
    sql += " AND events.rowid IN (SELECT tags.event FROM tags WHERE tags.name = ? AND tags.value IN ";
    q.params.emplace_back(cond.name);
    append_placeholders(sql, cond.values.size());
    for (const auto& v : cond.values)
      q.params.emplace_back(v);
    if (f.since) {
      sql += " AND tags.created_at >= ?";
      q.params.emplace_back(*f.since);
    }
    if (f.until) {
      sql += " AND tags.created_at <= ?";
      q.params.emplace_back(*f.until);
    }
    sql += ')';
  }
  return true;
}

}  // namespace

std::span<const std::string_view> event_store_schema() {
  return kSchema;
}

std::optional<SqlQuery> build_select(const nostr::Filter& filter, int64_t now, uint64_t limit) {
  if (limit == 0) return std::nullopt;
  SqlQuery q;
  q.sql = "SELECT events.json, events.id, events.created_at FROM events";
  if (!append_conditions(filter, now, q)) return std::nullopt;
  q.sql += " ORDER BY events.created_at DESC, events.id ASC LIMIT ?";
  q.params.emplace_back(static_cast<int64_t>(std::min<uint64_t>(limit, INT64_MAX)));
  return q;
}

std::optional<SqlQuery> build_count(std::span<const nostr::Filter> filters, int64_t now) {
  SqlQuery q;
  size_t parts = 0;
  for (const auto& f : filters) {
    SqlQuery part;
    part.sql = "SELECT events.rowid FROM events";
    if (!append_conditions(f, now, part)) continue;
    q.sql += parts++ == 0 ? "" : " UNION ";
    q.sql += part.sql;
    for (auto& p : part.params)
      q.params.push_back(std::move(p));
  }
  if (parts == 0) return std::nullopt;
  q.sql = "SELECT count(*) FROM (" + q.sql + ")";
  return q;
}

Status bind_params(store::Statement& stmt, const std::vector<SqlParam>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    Status s = std::visit(
        [&](const auto& v) -> Status {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            return stmt.bind_int64(index, v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            return stmt.bind_text(index, v);
          } else {
            return stmt.bind_blob(index, v);
          }
        },
        params[i]);
    if (!s) return s;
  }
  return {};
}

}  // namespace infernet::relay::internal
