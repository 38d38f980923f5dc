#include "protocol/internal/content_json.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include <boost/json/parse.hpp>

#include "core/encoding.hpp"
#include "nostr/event.hpp"
#include "protocol/protocol.hpp"

namespace infernet::protocol::internal {
namespace json = boost::json;

namespace {

template <class Int>
void append_integer(std::string& out, Int v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

std::string range_text(int64_t min, uint64_t max) {
  std::string s = "must be an integer from ";
  append_integer(s, min);
  s += " to ";
  append_integer(s, max);
  return s;
}

}  // namespace

// ---- ContentWriter ----

ContentWriter::ContentWriter(size_t reserve) {
  out_.reserve(reserve);
  // One digit: written without to_chars, which GCC 12 misreads here (-Wrestrict false positive).
  static_assert(kVersion >= 0 && kVersion <= 9);
  out_.append("{\"v\":");
  out_ += static_cast<char>('0' + kVersion);
}

void ContentWriter::key(std::string_view name) {
  if (!first_) out_ += ',';
  first_ = false;
  if (name.empty()) return;  // an array element
  // Names are mostly literals, but map keys (priorities) come from the caller.
  nostr::append_json_string(out_, name);
  out_ += ':';
}

void ContentWriter::text(std::string_view name, std::string_view value) {
  key(name);
  nostr::append_json_string(out_, value);
}

void ContentWriter::unsigned_integer(std::string_view name, uint64_t value) {
  key(name);
  append_integer(out_, value);
}

void ContentWriter::signed_integer(std::string_view name, int64_t value) {
  key(name);
  append_integer(out_, value);
}

void ContentWriter::number(std::string_view name, double value) {
  key(name);
  if (!std::isfinite(value)) {
    out_ += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), value);
  out_.append(buf, r.ptr);
}

void ContentWriter::boolean(std::string_view name, bool value) {
  key(name);
  out_ += value ? "true" : "false";
}

void ContentWriter::text_list(std::string_view name, const std::vector<std::string>& values) {
  key(name);
  out_ += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out_ += ',';
    nostr::append_json_string(out_, values[i]);
  }
  out_ += ']';
}

void ContentWriter::begin_object(std::string_view name) {
  key(name);
  out_ += '{';
  first_ = true;
}

void ContentWriter::end_object() {
  out_ += '}';
  first_ = false;
}

void ContentWriter::begin_array(std::string_view name) {
  key(name);
  out_ += '[';
  first_ = true;
}

void ContentWriter::end_array() {
  out_ += ']';
  first_ = false;
}

std::string ContentWriter::finish() && {
  out_ += '}';
  return std::move(out_);
}

// ---- FieldErrors ----

void FieldErrors::fail(std::string_view field, std::string_view problem) {
  if (error_) return;
  std::string message;
  message.reserve(field.size() + 2 + problem.size());
  message += field;
  message += ": ";
  message += problem;
  error_ = Error{ErrorCode::kInvalidInput, std::move(message)};
}

void FieldErrors::fail(Error error) {
  if (!error_) error_ = std::move(error);
}

Status FieldErrors::status() const {
  if (error_) return tl::unexpected(*error_);
  return {};
}

// ---- FieldReader ----

FieldReader::FieldReader(const json::object& object, FieldErrors& errors, std::string prefix)
    : object_(object), errors_(errors), prefix_(std::move(prefix)) {}

std::string FieldReader::path(std::string_view name) const {
  std::string p;
  p.reserve(prefix_.size() + name.size());
  p += prefix_;
  p += name;
  return p;
}

const json::value* FieldReader::find(std::string_view name, Presence presence) {
  if (!errors_.ok()) return nullptr;
  const json::value* v = object_.if_contains(name);
  if (v == nullptr && presence == Presence::kRequired) errors_.fail(path(name), "missing");
  return v;
}

std::optional<int64_t> FieldReader::read_signed(std::string_view name, const json::value& v, int64_t min,
                                                int64_t max) {
  std::optional<int64_t> n;
  if (v.is_int64()) {
    n = v.get_int64();
  } else if (v.is_uint64()) {
    if (v.get_uint64() <= static_cast<uint64_t>(max)) n = static_cast<int64_t>(v.get_uint64());
  } else if (v.is_double()) {
    const double d = v.get_double();
    // 2^63 is exactly representable; anything below it that is integral converts without overflow.
    if (d >= -9.2233720368547758e18 && d < 9.2233720368547758e18 && d == std::trunc(d)) {
      n = static_cast<int64_t>(d);
    }
  }
  if (!n || *n < min || *n > max) {
    errors_.fail(path(name), range_text(min, static_cast<uint64_t>(max)));
    return std::nullopt;
  }
  return n;
}

std::optional<uint64_t> FieldReader::read_unsigned(std::string_view name, const json::value& v,
                                                   uint64_t max) {
  std::optional<uint64_t> n;
  if (v.is_uint64()) {
    n = v.get_uint64();
  } else if (v.is_int64()) {
    if (v.get_int64() >= 0) n = static_cast<uint64_t>(v.get_int64());
  } else if (v.is_double()) {
    const double d = v.get_double();
    if (d >= 0 && d < 1.8446744073709552e19 && d == std::trunc(d)) n = static_cast<uint64_t>(d);
  }
  if (!n || *n > max) {
    errors_.fail(path(name), range_text(0, max));
    return std::nullopt;
  }
  return n;
}

void FieldReader::text(std::string_view name, std::string& out, Presence presence) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return;
  const json::string* s = v->if_string();
  if (s == nullptr) {
    errors_.fail(path(name), "must be a string");
    return;
  }
  out.assign(s->data(), s->size());
}

void FieldReader::integer(std::string_view name, uint32_t& out, Presence presence) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return;
  if (auto n = read_unsigned(name, *v, std::numeric_limits<uint32_t>::max())) out = static_cast<uint32_t>(*n);
}

void FieldReader::integer(std::string_view name, uint64_t& out, Presence presence) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return;
  if (auto n = read_unsigned(name, *v, std::numeric_limits<uint64_t>::max())) out = *n;
}

void FieldReader::integer(std::string_view name, int64_t& out, Presence presence) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return;
  if (auto n =
          read_signed(name, *v, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    out = *n;
  }
}

void FieldReader::number(std::string_view name, double& out, Presence presence) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return;
  if (v->is_double()) {
    out = v->get_double();
  } else if (v->is_int64()) {
    out = static_cast<double>(v->get_int64());
  } else if (v->is_uint64()) {
    out = static_cast<double>(v->get_uint64());
  } else {
    errors_.fail(path(name), "must be a number");
  }
}

void FieldReader::boolean(std::string_view name, bool& out, Presence presence) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return;
  if (!v->is_bool()) {
    errors_.fail(path(name), "must be true or false");
    return;
  }
  out = v->get_bool();
}

void FieldReader::text_list(std::string_view name, std::vector<std::string>& out, Presence presence,
                            size_t max_items) {
  const json::array* a = array(name, presence, max_items);
  if (a == nullptr) return;
  out.clear();
  out.reserve(a->size());
  for (const json::value& item : *a) {
    const json::string* s = item.if_string();
    if (s == nullptr) {
      errors_.fail(path(name) + "[" + std::to_string(out.size()) + "]", "must be a string");
      return;
    }
    out.emplace_back(s->data(), s->size());
  }
}

const json::object* FieldReader::object(std::string_view name, Presence presence) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return nullptr;
  const json::object* o = v->if_object();
  if (o == nullptr) errors_.fail(path(name), "must be an object");
  return o;
}

const json::array* FieldReader::array(std::string_view name, Presence presence, size_t max_items) {
  const json::value* v = find(name, presence);
  if (v == nullptr) return nullptr;
  const json::array* a = v->if_array();
  if (a == nullptr) {
    errors_.fail(path(name), "must be an array");
    return nullptr;
  }
  if (a->size() > max_items) {
    errors_.fail(path(name), "must have at most " + std::to_string(max_items) + " entries");
    return nullptr;
  }
  return a;
}

// ---- parsing ----

Result<const json::object*> parse_content(std::string_view text, size_t max_bytes, json::storage_ptr sp,
                                          json::value& out, std::string_view what) {
  if (text.size() > max_bytes) {
    return make_error(ErrorCode::kLimitExceeded, std::string(what) + ": " + std::to_string(text.size()) +
                                                     " bytes; the limit is " + std::to_string(max_bytes));
  }
  std::error_code ec;
  out = json::parse(text, ec, std::move(sp));
  if (ec) return make_error(ErrorCode::kInvalidInput, std::string(what) + ": invalid JSON: " + ec.message());
  const json::object* object = out.if_object();
  if (object == nullptr)
    return make_error(ErrorCode::kInvalidInput, std::string(what) + ": must be a JSON object");

  const json::value* v = object->if_contains("v");
  if (v == nullptr) return make_error(ErrorCode::kInvalidInput, "v: missing");
  if (!v->is_int64() && !v->is_uint64()) return make_error(ErrorCode::kInvalidInput, "v: must be an integer");
  if (!v->is_int64() || v->get_int64() != kVersion) {
    const std::string version =
        v->is_int64() ? std::to_string(v->get_int64()) : std::to_string(v->get_uint64());
    return make_error(ErrorCode::kUnsupported, "v: unknown version " + version + " (this node speaks " +
                                                   std::to_string(kVersion) + ")");
  }
  return object;
}

// ---- domain rules ----

void check_id(FieldErrors& errors, std::string_view field, std::string_view value, Presence presence) {
  if (!errors.ok()) return;
  if (value.empty()) {
    if (presence == Presence::kRequired) errors.fail(field, "must not be empty");
    return;
  }
  if (value.size() > kMaxIdBytes) {
    errors.fail(field, "must be at most " + std::to_string(kMaxIdBytes) + " bytes");
    return;
  }
  for (char c : value) {
    if (c < 0x21 || c > 0x7e) {
      errors.fail(field, "must be visible ASCII characters (no spaces or control characters)");
      return;
    }
  }
}

void check_text(FieldErrors& errors, std::string_view field, std::string_view value, size_t max_bytes,
                bool check_utf8) {
  if (!errors.ok()) return;
  if (value.size() > max_bytes) {
    errors.fail(
        field, "must be at most " + std::to_string(max_bytes) + " bytes, is " + std::to_string(value.size()));
  } else if (check_utf8 && !is_valid_utf8(value)) {
    errors.fail(field, "must be valid UTF-8");
  }
}

void check_min(FieldErrors& errors, std::string_view field, uint64_t value, uint64_t min) {
  if (errors.ok() && value < min) errors.fail(field, "must be at least " + std::to_string(min));
}

void check_range(FieldErrors& errors, std::string_view field, double value, double min, double max) {
  // Written so that NaN fails too.
  if (errors.ok() && !(value >= min && value <= max)) {
    std::string problem = "must be a number from ";
    char buf[32];
    problem.append(buf, std::to_chars(buf, buf + sizeof(buf), min).ptr);
    problem += " to ";
    problem.append(buf, std::to_chars(buf, buf + sizeof(buf), max).ptr);
    errors.fail(field, problem);
  }
}

void check_non_negative(FieldErrors& errors, std::string_view field, int64_t value) {
  if (errors.ok() && value < 0) errors.fail(field, "must not be negative");
}

void check_priority(FieldErrors& errors, std::string_view field, std::string_view value) {
  if (!errors.ok()) return;
  if (canonical_priority(value).empty()) errors.fail(field, "must be low, medium, high or urgent");
}

void check_hex64(FieldErrors& errors, std::string_view field, std::string_view value, Presence presence) {
  if (!errors.ok()) return;
  if (value.empty() && presence == Presence::kOptional) return;
  bool ok = value.size() == 64;
  for (size_t i = 0; ok && i < value.size(); ++i) {
    const char c = value[i];
    ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  }
  if (!ok) errors.fail(field, "must be 64 lowercase hex characters");
}

}  // namespace infernet::protocol::internal
