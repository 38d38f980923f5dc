#include "nostr/filter.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "core/encoding.hpp"

namespace infernet::nostr {
namespace json = boost::json;
namespace {

Error field_error(const std::string& field, std::string_view problem) {
  return Error{ErrorCode::kInvalidInput, field + ": " + std::string(problem)};
}

Result<const json::array*> read_list(const json::value& v, const std::string& field,
                                     const FilterLimits& limits) {
  const json::array* arr = v.if_array();
  if (arr == nullptr) return tl::unexpected(field_error(field, "must be an array"));
  if (arr->size() > limits.max_values) {
    return make_error(ErrorCode::kLimitExceeded,
                      field + ": more than " + std::to_string(limits.max_values) + " values");
  }
  return arr;
}

template <size_t N>
Result<std::vector<std::array<uint8_t, N>>> read_hex_list(const json::value& v, const std::string& field,
                                                          const FilterLimits& limits) {
  auto arr = read_list(v, field, limits);
  if (!arr) return tl::unexpected(arr.error());
  std::vector<std::array<uint8_t, N>> out((*arr)->size());
  for (size_t i = 0; i < out.size(); ++i) {
    const json::string* s = (**arr)[i].if_string();
    if (s == nullptr || !hex_decode_fixed(std::string_view(s->data(), s->size()), out[i])) {
      return tl::unexpected(field_error(field + "[" + std::to_string(i) + "]",
                                        "must be " + std::to_string(2 * N) + " lowercase hex characters"));
    }
  }
  return out;
}

Result<int64_t> read_non_negative(const json::value& v, const std::string& field) {
  if (v.is_int64() && v.get_int64() >= 0) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    double d = v.get_double();
    if (d >= 0 && d < 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d)))
      return static_cast<int64_t>(d);
  }
  return tl::unexpected(field_error(field, "must be a non-negative integer"));
}

template <class T>
bool contains(const std::vector<T>& list, const T& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

bool Filter::matches(const Event& event) const {
  if (ids && !contains(*ids, event.id)) return false;
  if (authors && !contains(*authors, event.pubkey)) return false;
  if (kinds && !contains(*kinds, event.kind)) return false;
  if (since && event.created_at < *since) return false;
  if (until && event.created_at > *until) return false;
  for (const auto& cond : tags) {
    bool found = false;
    for (const auto& t : event.tags) {
      if (t.size() >= 2 && t[0] == cond.name && contains(cond.values, t[1])) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

bool matches_any(std::span<const Filter> filters, const Event& event) {
  return std::any_of(filters.begin(), filters.end(), [&](const Filter& f) { return f.matches(event); });
}

Result<Filter> filter_from_value(const json::value& v, const FilterLimits& limits) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) return make_error(ErrorCode::kInvalidInput, "filter must be a JSON object");
  Filter f;
  for (const auto& [key_sv, value] : *obj) {
    std::string key(key_sv);
    if (key == "ids") {
      auto r = read_hex_list<32>(value, key, limits);
      if (!r) return tl::unexpected(r.error());
      f.ids = std::move(*r);
    } else if (key == "authors") {
      auto r = read_hex_list<32>(value, key, limits);
      if (!r) return tl::unexpected(r.error());
      f.authors = std::move(*r);
    } else if (key == "kinds") {
      auto arr = read_list(value, key, limits);
      if (!arr) return tl::unexpected(arr.error());
      std::vector<uint32_t> kinds;
      for (size_t i = 0; i < (*arr)->size(); ++i) {
        auto k = read_non_negative((**arr)[i], "kinds[" + std::to_string(i) + "]");
        if (!k || *k > kMaxKind) {
          return tl::unexpected(
              field_error("kinds[" + std::to_string(i) + "]", "must be an integer from 0 to 65535"));
        }
        kinds.push_back(static_cast<uint32_t>(*k));
      }
      f.kinds = std::move(kinds);
    } else if (key == "since" || key == "until") {
      auto t = read_non_negative(value, key);
      if (!t) return tl::unexpected(t.error());
      (key == "since" ? f.since : f.until) = *t;
    } else if (key == "limit") {
      auto l = read_non_negative(value, key);
      if (!l) return tl::unexpected(l.error());
      f.limit = static_cast<uint64_t>(*l);
    } else if (key.size() >= 2 && key[0] == '#') {
      if (f.tags.size() >= limits.max_tag_conditions) {
        return make_error(
            ErrorCode::kLimitExceeded,
            "filter: more than " + std::to_string(limits.max_tag_conditions) + " tag conditions");
      }
      auto arr = read_list(value, key, limits);
      if (!arr) return tl::unexpected(arr.error());
      TagCondition cond{key.substr(1), {}};
      for (size_t i = 0; i < (*arr)->size(); ++i) {
        const json::string* s = (**arr)[i].if_string();
        if (s == nullptr)
          return tl::unexpected(field_error(key + "[" + std::to_string(i) + "]", "must be a string"));
        cond.values.emplace_back(s->data(), s->size());
      }
      f.tags.push_back(std::move(cond));
    }
  }
  return f;
}

Result<Filter> parse_filter(std::string_view text, const FilterLimits& limits) {
  std::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return make_error(ErrorCode::kInvalidInput, "invalid JSON: " + ec.message());
  return filter_from_value(v, limits);
}

std::string to_json(const Filter& f) {
  std::string out = "{";
  auto sep = [&] {
    if (out.size() > 1) out += ',';
  };
  auto hex_list = [&](const char* name, const auto& list) {
    sep();
    out += '"';
    out += name;
    out += "\":[";
    for (size_t i = 0; i < list.size(); ++i) {
      if (i != 0) out += ',';
      out += '"';
      hex_append(out, list[i]);
      out += '"';
    }
    out += ']';
  };
  if (f.ids) hex_list("ids", *f.ids);
  if (f.authors) hex_list("authors", *f.authors);
  if (f.kinds) {
    sep();
    out += "\"kinds\":[";
    for (size_t i = 0; i < f.kinds->size(); ++i) {
      if (i != 0) out += ',';
      out += std::to_string((*f.kinds)[i]);
    }
    out += ']';
  }
  for (const auto& cond : f.tags) {
    sep();
    append_json_string(out, "#" + cond.name);
    out += ":[";
    for (size_t i = 0; i < cond.values.size(); ++i) {
      if (i != 0) out += ',';
      append_json_string(out, cond.values[i]);
    }
    out += ']';
  }
  if (f.since) {
    sep();
    out += "\"since\":" + std::to_string(*f.since);
  }
  if (f.until) {
    sep();
    out += "\"until\":" + std::to_string(*f.until);
  }
  if (f.limit) {
    sep();
    out += "\"limit\":" + std::to_string(*f.limit);
  }
  out += '}';
  return out;
}

}  // namespace infernet::nostr
