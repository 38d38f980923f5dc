// The JSON shapes of protocol contents, in both directions, without a DOM on the way out.
//
// ContentWriter appends fields straight into the output string with JSON.stringify's escaping (the same one
// event ids hash), so a message is serialized in one pass with one allocation. FieldReader reads the fields
// of a parsed object into struct members, checking presence and JSON type; FieldErrors keeps the first
// problem so that the read and check functions read as a list of fields. Domain rules (ranges, sizes, enums)
// live in the check_* functions, shared by the parsers and by validate().
//
// Internal to the protocol module. Thread-safety: values, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace infernet::protocol::internal {

class ContentWriter {
 public:
  // Starts the object with "v" (the protocol version) as its first field.
  explicit ContentWriter(size_t reserve);

  void text(std::string_view name, std::string_view value);
  void unsigned_integer(std::string_view name, uint64_t value);
  void signed_integer(std::string_view name, int64_t value);
  // Shortest representation that reads back to the same double; null for NaN and infinities (which
  // validation refuses before anything is sent).
  void number(std::string_view name, double value);
  void boolean(std::string_view name, bool value);
  void text_list(std::string_view name, const std::vector<std::string>& values);

  // Nested objects and arrays of objects: begin_object(name) ... end_object(); begin_array(name), then
  // begin_object({}) ... end_object() per element, then end_array().
  void begin_object(std::string_view name);
  void end_object();
  void begin_array(std::string_view name);
  void end_array();

  // Closes the top-level object and hands the text over.
  std::string finish() &&;

 private:
  void key(std::string_view name);
  std::string out_;
  bool first_ = false;  // no field written yet in the innermost object or array
};

// The first problem found while reading or checking a content object.
class FieldErrors {
 public:
  bool ok() const { return !error_; }
  // Records "<field>: <problem>" (kInvalidInput) unless an earlier problem was recorded.
  void fail(std::string_view field, std::string_view problem);
  void fail(Error error);
  // The recorded problem, or success.
  Status status() const;
  const std::optional<Error>& error() const { return error_; }

 private:
  std::optional<Error> error_;
};

enum class Presence { kRequired, kOptional };

// Reads fields of one JSON object; nested objects get a reader with a prefix ("usage.", "models[2].") so
// errors name the full path. Absent optional fields leave the member unchanged (its default).
class FieldReader {
 public:
  FieldReader(const boost::json::object& object, FieldErrors& errors, std::string prefix = {});

  void text(std::string_view name, std::string& out, Presence presence);
  void integer(std::string_view name, uint32_t& out, Presence presence);
  void integer(std::string_view name, uint64_t& out, Presence presence);
  void integer(std::string_view name, int64_t& out, Presence presence);
  void number(std::string_view name, double& out, Presence presence);
  void boolean(std::string_view name, bool& out, Presence presence);
  void text_list(std::string_view name, std::vector<std::string>& out, Presence presence, size_t max_items);
  // nullptr when absent (an error if required) or of the wrong type.
  const boost::json::object* object(std::string_view name, Presence presence);
  const boost::json::array* array(std::string_view name, Presence presence, size_t max_items);

  // "<prefix><name>", the name errors use.
  std::string path(std::string_view name) const;
  FieldErrors& errors() { return errors_; }

 private:
  const boost::json::value* find(std::string_view name, Presence presence);
  // Integers in [min, max]; integral doubles are accepted because JSON has one number type.
  std::optional<int64_t> read_signed(std::string_view name, const boost::json::value& v, int64_t min,
                                     int64_t max);
  std::optional<uint64_t> read_unsigned(std::string_view name, const boost::json::value& v, uint64_t max);

  const boost::json::object& object_;
  FieldErrors& errors_;
  std::string prefix_;
};

// Parses `json` as one object. Errors: kLimitExceeded above max_bytes, kInvalidInput for bad JSON or a
// non-object. Then checks "v": kInvalidInput when missing or not an integer, kUnsupported when not kVersion.
// The parsed value is stored in `out`, allocated from `sp` (a monotonic resource the caller keeps alive while
// reading); the result points into it. `what` names the content in errors ("content", "announcement").
Result<const boost::json::object*> parse_content(std::string_view json, size_t max_bytes,
                                                 boost::json::storage_ptr sp, boost::json::value& out,
                                                 std::string_view what);

// Domain rules, recording into `errors` under the field name given.
// An identifier: 1..kMaxIdBytes bytes of visible ASCII (0x21..0x7e), or empty when optional.
void check_id(FieldErrors& errors, std::string_view field, std::string_view value, Presence presence);
// Free text up to max_bytes; valid UTF-8 when check_utf8 (parsed JSON is already).
void check_text(FieldErrors& errors, std::string_view field, std::string_view value, size_t max_bytes,
                bool check_utf8);
void check_min(FieldErrors& errors, std::string_view field, uint64_t value, uint64_t min);
void check_range(FieldErrors& errors, std::string_view field, double value, double min, double max);
void check_non_negative(FieldErrors& errors, std::string_view field, int64_t value);
void check_priority(FieldErrors& errors, std::string_view field, std::string_view value);
// 64 lower-case hex characters ("" allowed when optional).
void check_hex64(FieldErrors& errors, std::string_view field, std::string_view value, Presence presence);

}  // namespace infernet::protocol::internal
