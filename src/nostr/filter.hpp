// NIP-01 subscription filters: parsing and matching.
//
// Within one filter every present field must match (AND); across the filters of one REQ any may match (OR).
// An empty list matches nothing, as in nostr-tools. Tag conditions ("#e": [...]) match an event that has a
// tag with that name whose first value is in the list. Thread-safe: Filter is a value.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/result.hpp"
#include "nostr/event.hpp"

namespace infernet::nostr {

struct TagCondition {
  std::string name;  // without the '#'
  std::vector<std::string> values;
};

struct Filter {
  std::optional<std::vector<EventId>> ids;
  std::optional<std::vector<std::array<uint8_t, 32>>> authors;
  std::optional<std::vector<uint32_t>> kinds;
  std::vector<TagCondition> tags;
  std::optional<int64_t> since;
  std::optional<int64_t> until;
  std::optional<uint64_t> limit;

  bool matches(const Event& event) const;
};

struct FilterLimits {
  size_t max_values = 1'000;  // per list (ids, authors, kinds, each #tag)
  size_t max_tag_conditions = 20;
};

// Errors: kInvalidInput naming the field ("authors[2]: must be 64 lowercase hex characters",
// "limit: must be a non-negative integer"); kLimitExceeded. Unknown fields are ignored (other NIPs add some).
Result<Filter> parse_filter(std::string_view json, const FilterLimits& limits = {});
Result<Filter> filter_from_value(const boost::json::value& v, const FilterLimits& limits = {});

// True when any filter matches.
bool matches_any(std::span<const Filter> filters, const Event& event);

// The filter as NIP-01 JSON, for sending in a REQ.
std::string to_json(const Filter& filter);

}  // namespace infernet::nostr
