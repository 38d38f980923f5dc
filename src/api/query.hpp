// Query parameters of a request target ("?state=running&limit=10"), decoded and checked at the edge.
//
// Thread-safe: values, no shared state.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace infernet::api {

constexpr size_t kMaxQueryBytes = 4096;
constexpr size_t kMaxQueryParameters = 16;

class QueryParams {
 public:
  // Percent-decodes ('+' is a space) and collects the parameters; an empty value ("state=") counts as
  // absent. Errors (kInvalidInput, starting with the parameter's name where there is one): a name not in
  // `allowed` ("<name>: unknown query parameter"), a name given twice, a bad %-escape, more than
  // kMaxQueryParameters parameters or kMaxQueryBytes bytes.
  static Result<QueryParams> parse(std::string_view query, std::initializer_list<std::string_view> allowed);

  // The value, or nullptr when absent.
  const std::string* get(std::string_view name) const;
  // The value as a decimal integer, nullopt when absent. Errors: "<name>: must be an integer from <min> to
  // <max>".
  Result<std::optional<int64_t>> get_int(std::string_view name, int64_t min, int64_t max) const;
  Result<std::optional<uint64_t>> get_uint(std::string_view name) const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// Decodes %XX escapes and '+'. Errors: kInvalidInput for a truncated or non-hex escape.
Result<std::string> percent_decode(std::string_view text);

}  // namespace infernet::api
