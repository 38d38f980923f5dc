#include "nostr/event.hpp"

#include <charconv>
#include <cstring>
#include <limits>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include "core/encoding.hpp"
#include "nostr/event_json.hpp"

namespace infernet::nostr {
namespace json = boost::json;

const Tag* Event::find_tag(std::string_view name) const {
  for (const auto& t : tags) {
    if (!t.empty() && t[0] == name) return &t;
  }
  return nullptr;
}

std::optional<std::string_view> Event::tag_value(std::string_view name) const {
  const Tag* t = find_tag(name);
  if (t == nullptr || t->size() < 2) return std::nullopt;
  return (*t)[1];
}

KindClass classify_kind(uint32_t kind) {
  if (kind == 0 || kind == 3 || (kind >= 10000 && kind < 20000)) return KindClass::kReplaceable;
  if (kind >= 20000 && kind < 30000) return KindClass::kEphemeral;
  if (kind >= 30000 && kind < 40000) return KindClass::kAddressable;
  return KindClass::kRegular;
}

namespace {

// Which bytes need escaping, and how: 0 = verbatim, 'u' = \u00xx, else the short escape letter.
constexpr std::array<char, 256> make_escape_table() {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c)
    t[c] = 'u';
  t['\b'] = 'b';
  t['\f'] = 'f';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}
constexpr auto kEscape = make_escape_table();

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

Error field_error(std::string_view field, std::string_view problem) {
  std::string msg(field);
  msg += ": ";
  msg += problem;
  return Error{ErrorCode::kInvalidInput, std::move(msg)};
}

template <size_t N>
Status read_hex_field(const json::object& obj, std::string_view name, std::array<uint8_t, N>& out) {
  const json::value* v = obj.if_contains(name);
  if (v == nullptr) return tl::unexpected(field_error(name, "missing"));
  const json::string* s = v->if_string();
  if (s == nullptr) return tl::unexpected(field_error(name, "must be a string"));
  if (!hex_decode_fixed(std::string_view(s->data(), s->size()), out)) {
    return tl::unexpected(
        field_error(name, "must be " + std::to_string(2 * N) + " lowercase hex characters"));
  }
  return {};
}

Result<int64_t> read_integer(const json::value& v, std::string_view name, int64_t min, int64_t max,
                             std::string_view range_text) {
  int64_t n;
  if (v.is_int64()) {
    n = v.get_int64();
  } else if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<uint64_t>(max)) return tl::unexpected(field_error(name, range_text));
    n = static_cast<int64_t>(v.get_uint64());
  } else if (v.is_double()) {
    // JSON has one number type; 1.7e9 is an integer to JavaScript, so integral doubles are accepted.
    double d = v.get_double();
    if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) ||
        d != static_cast<double>(static_cast<int64_t>(d))) {
      return tl::unexpected(field_error(name, range_text));
    }
    n = static_cast<int64_t>(d);
  } else {
    return tl::unexpected(field_error(name, range_text));
  }
  if (n < min || n > max) return tl::unexpected(field_error(name, range_text));
  return n;
}

constexpr int64_t kMaxCreatedAt = std::numeric_limits<int64_t>::max() / 2;

Result<std::string> read_string_field(const json::object& obj, std::string_view name) {
  const json::value* v = obj.if_contains(name);
  if (v == nullptr) return tl::unexpected(field_error(name, "missing"));
  const json::string* s = v->if_string();
  if (s == nullptr) return tl::unexpected(field_error(name, "must be a string"));
  return std::string(s->data(), s->size());
}

Result<json::value> parse_json(std::string_view text, const EventLimits& limits, json::storage_ptr sp) {
  if (text.size() > limits.max_json_bytes) {
    return make_error(ErrorCode::kLimitExceeded, "event is " + std::to_string(text.size()) +
                                                     " bytes; the limit is " +
                                                     std::to_string(limits.max_json_bytes));
  }
  std::error_code ec;
  json::value v = json::parse(text, ec, std::move(sp));
  if (ec) return make_error(ErrorCode::kInvalidInput, "invalid JSON: " + ec.message());
  return v;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  size_t run_start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char e = kEscape[static_cast<uint8_t>(s[i])];
    if (e == 0) continue;
    out.append(s.data() + run_start, i - run_start);
    run_start = i + 1;
    out += '\\';
    if (e == 'u') {
      uint8_t c = static_cast<uint8_t>(s[i]);
      out += "u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += e;
    }
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out += '"';
}

void append_canonical(std::string& out, const std::array<uint8_t, 32>& pubkey, int64_t created_at,
                      uint32_t kind, const Tags& tags, std::string_view content) {
  out += "[0,\"";
  hex_append(out, pubkey);
  out += "\",";
  append_int(out, created_at);
  out += ',';
  append_int(out, kind);
  out += ",[";
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i != 0) out += ',';
    out += '[';
    for (size_t j = 0; j < tags[i].size(); ++j) {
      if (j != 0) out += ',';
      append_json_string(out, tags[i][j]);
    }
    out += ']';
  }
  out += "],";
  append_json_string(out, content);
  out += ']';
}

EventId compute_id(const Event& event) {
  // One buffer per thread: ids are computed for every event a relay sees, and most fit in its first growth.
  thread_local std::string buf;
  buf.clear();
  append_canonical(buf, event.pubkey, event.created_at, event.kind, event.tags, event.content);
  EventId id = sha256(std::string_view(buf));
  if (buf.capacity() > (1u << 20)) std::string().swap(buf);  // do not pin a huge buffer to the thread
  return id;
}

Status verify_event(const Event& event) {
  if (compute_id(event) != event.id) {
    return make_error(ErrorCode::kInvalidId, "id does not match the event's contents");
  }
  auto pk = PublicKey::from_bytes(event.pubkey);
  if (!pk) return make_error(ErrorCode::kInvalidInput, "pubkey: " + pk.error().message);
  if (!pk->verify(event.id, event.sig)) {
    return make_error(ErrorCode::kInvalidSignature, "signature does not verify");
  }
  return {};
}

Event sign_event(EventDraft draft, const Keypair& keys) {
  Event e;
  e.pubkey = keys.public_key().bytes();
  e.created_at = draft.created_at;
  e.kind = draft.kind;
  e.tags = std::move(draft.tags);
  e.content = std::move(draft.content);
  e.id = compute_id(e);
  e.sig = keys.sign(e.id);
  return e;
}

void append_json(std::string& out, const Event& event) {
  out += "{\"id\":\"";
  hex_append(out, event.id);
  out += "\",\"pubkey\":\"";
  hex_append(out, event.pubkey);
  out += "\",\"created_at\":";
  append_int(out, event.created_at);
  out += ",\"kind\":";
  append_int(out, event.kind);
  out += ",\"tags\":[";
  for (size_t i = 0; i < event.tags.size(); ++i) {
    if (i != 0) out += ',';
    out += '[';
    for (size_t j = 0; j < event.tags[i].size(); ++j) {
      if (j != 0) out += ',';
      append_json_string(out, event.tags[i][j]);
    }
    out += ']';
  }
  out += "],\"content\":";
  append_json_string(out, event.content);
  out += ",\"sig\":\"";
  hex_append(out, event.sig);
  out += "\"}";
}

std::string to_json(const Event& event) {
  size_t size = 320 + event.content.size();  // fixed fields and escaping slack
  for (const auto& t : event.tags) {
    for (const auto& v : t)
      size += v.size() + 3;
  }
  std::string out;
  out.reserve(size);
  append_json(out, event);
  return out;
}

Result<Tags> tags_from_value(const json::value& v, const EventLimits& limits) {
  const json::array* arr = v.if_array();
  if (arr == nullptr) return tl::unexpected(field_error("tags", "must be an array of arrays of strings"));
  if (arr->size() > limits.max_tags) {
    return make_error(ErrorCode::kLimitExceeded,
                      "tags: more than " + std::to_string(limits.max_tags) + " tags");
  }
  Tags tags;
  tags.reserve(arr->size());
  for (size_t i = 0; i < arr->size(); ++i) {
    const json::array* tag = (*arr)[i].if_array();
    if (tag == nullptr) {
      return tl::unexpected(field_error("tags[" + std::to_string(i) + "]", "must be an array of strings"));
    }
    if (tag->size() > limits.max_tag_elements) {
      return make_error(ErrorCode::kLimitExceeded, "tags[" + std::to_string(i) + "]: more than " +
                                                       std::to_string(limits.max_tag_elements) + " elements");
    }
    Tag& out = tags.emplace_back();
    out.reserve(tag->size());
    for (size_t j = 0; j < tag->size(); ++j) {
      const json::string* s = (*tag)[j].if_string();
      if (s == nullptr) {
        return tl::unexpected(
            field_error("tags[" + std::to_string(i) + "][" + std::to_string(j) + "]", "must be a string"));
      }
      out.emplace_back(s->data(), s->size());
    }
  }
  return tags;
}

Result<Event> event_from_value(const json::value& v, const EventLimits& limits) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) return make_error(ErrorCode::kInvalidInput, "event must be a JSON object");
  Event e;
  if (auto st = read_hex_field(*obj, "id", e.id); !st) return tl::unexpected(st.error());
  if (auto st = read_hex_field(*obj, "pubkey", e.pubkey); !st) return tl::unexpected(st.error());
  if (auto st = read_hex_field(*obj, "sig", e.sig); !st) return tl::unexpected(st.error());

  const json::value* created_at = obj->if_contains("created_at");
  if (created_at == nullptr) return tl::unexpected(field_error("created_at", "missing"));
  auto ts = read_integer(*created_at, "created_at", 0, kMaxCreatedAt, "must be a non-negative integer");
  if (!ts) return tl::unexpected(ts.error());
  e.created_at = *ts;

  const json::value* kind = obj->if_contains("kind");
  if (kind == nullptr) return tl::unexpected(field_error("kind", "missing"));
  auto k = read_integer(*kind, "kind", 0, kMaxKind, "must be an integer from 0 to 65535");
  if (!k) return tl::unexpected(k.error());
  e.kind = static_cast<uint32_t>(*k);

  const json::value* tags = obj->if_contains("tags");
  if (tags == nullptr) return tl::unexpected(field_error("tags", "missing"));
  auto t = tags_from_value(*tags, limits);
  if (!t) return tl::unexpected(t.error());
  e.tags = std::move(*t);

  auto content = read_string_field(*obj, "content");
  if (!content) return tl::unexpected(content.error());
  e.content = std::move(*content);
  return e;
}

Result<EventDraft> draft_from_value(const json::value& v, const EventLimits& limits) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) return make_error(ErrorCode::kInvalidInput, "event template must be a JSON object");
  EventDraft d;
  const json::value* kind = obj->if_contains("kind");
  if (kind == nullptr) return tl::unexpected(field_error("kind", "missing"));
  auto k = read_integer(*kind, "kind", 0, kMaxKind, "must be an integer from 0 to 65535");
  if (!k) return tl::unexpected(k.error());
  d.kind = static_cast<uint32_t>(*k);
  if (const json::value* created_at = obj->if_contains("created_at")) {
    auto ts = read_integer(*created_at, "created_at", 0, kMaxCreatedAt, "must be a non-negative integer");
    if (!ts) return tl::unexpected(ts.error());
    d.created_at = *ts;
  }
  if (const json::value* tags = obj->if_contains("tags")) {
    auto t = tags_from_value(*tags, limits);
    if (!t) return tl::unexpected(t.error());
    d.tags = std::move(*t);
  }
  if (obj->contains("content")) {
    auto content = read_string_field(*obj, "content");
    if (!content) return tl::unexpected(content.error());
    d.content = std::move(*content);
  }
  return d;
}

Result<Event> parse_event(std::string_view json_text, const EventLimits& limits) {
  // Small events parse entirely inside this stack buffer; the DOM is thrown away as soon as the struct is
  // built.
  unsigned char buffer[4096];
  json::monotonic_resource mr(buffer, sizeof(buffer));
  auto v = parse_json(json_text, limits, &mr);
  if (!v) return tl::unexpected(v.error());
  return event_from_value(*v, limits);
}

Result<EventDraft> parse_event_draft(std::string_view json_text, const EventLimits& limits) {
  unsigned char buffer[4096];
  json::monotonic_resource mr(buffer, sizeof(buffer));
  auto v = parse_json(json_text, limits, &mr);
  if (!v) return tl::unexpected(v.error());
  return draft_from_value(*v, limits);
}

}  // namespace infernet::nostr
