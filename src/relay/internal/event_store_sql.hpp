// Internal to the relay module: the event store's schema and the SQL it generates for NIP-01 filters.
// Split from event_store.cpp so tests can check the query plans of exactly the SQL the store runs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.hpp"
#include "nostr/filter.hpp"
#include "store/sqlite.hpp"

namespace infernet::relay::internal {

// Migration steps for store::migrate; append, never edit.
std::span<const std::string_view> event_store_schema();

// A bound parameter: an integer, a text, or a 32-byte blob (ids, pubkeys).
using SqlParam = std::variant<int64_t, std::string, std::array<uint8_t, 32>>;

struct SqlQuery {
  std::string sql;
  std::vector<SqlParam> params;  // in the order of the '?' in sql
};

// The query for one filter: columns (json, id, created_at), newest first, ties by lowest id, at most `limit`
// rows, skipping events whose expiration is <= now. The SQL text depends only on which fields are present
// and on the lengths of their lists, so statements can be cached by text. nullopt when the filter cannot
// match anything (an empty list, limit 0, a condition on a tag name that is not one letter: only
// single-letter tags are indexed, as NIP-01 specifies).
std::optional<SqlQuery> build_select(const nostr::Filter& filter, int64_t now, uint64_t limit);

// The number of distinct events matching any of the filters (limits are ignored): one row, one column.
// nullopt when no filter can match anything.
std::optional<SqlQuery> build_count(std::span<const nostr::Filter> filters, int64_t now);

// Binds `params` to positions 1..n. Errors: kIo from SQLite.
Status bind_params(store::Statement& stmt, const std::vector<SqlParam>& params);

}  // namespace infernet::relay::internal
