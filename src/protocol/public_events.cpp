// The public events: the provider announcement (kind 38340) and the quote request (kind 8341).
#include <charconv>
#include <set>

#include <boost/json/monotonic_resource.hpp>

#include "protocol/internal/content_json.hpp"
#include "protocol/protocol.hpp"

namespace infernet::protocol {
namespace json = boost::json;
using internal::check_hex64;
using internal::check_id;
using internal::check_non_negative;
using internal::check_priority;
using internal::check_text;
using internal::ContentWriter;
using internal::FieldErrors;
using internal::FieldReader;
using internal::Presence;

namespace {

constexpr auto kRequired = Presence::kRequired;
constexpr auto kOptional = Presence::kOptional;
constexpr const char* kVersionTag = "1";
// Price multipliers in percent: from 1% to 100x the list price.
constexpr uint32_t kMaxPriorityPercent = 10'000;

std::string indexed(std::string_view list, size_t i) {
  std::string s(list);
  s += '[';
  s += std::to_string(i);
  s += ']';
  return s;
}

void check_text_list(FieldErrors& e, std::string_view field, const std::vector<std::string>& items,
                     bool utf8) {
  if (e.ok() && items.size() > kMaxListItems) {
    e.fail(field, "must have at most " + std::to_string(kMaxListItems) + " entries");
  }
  for (size_t i = 0; e.ok() && i < items.size(); ++i) {
    check_text(e, indexed(field, i), items[i], kMaxIdBytes, utf8);
  }
}

void check_model(FieldErrors& e, const std::string& at, const ModelInfo& m, bool utf8) {
  check_id(e, at + ".name", m.name, kRequired);
  check_hex64(e, at + ".sha256", m.sha256, kOptional);
  check_text(e, at + ".family", m.family, kMaxIdBytes, utf8);
  check_text(e, at + ".quantization", m.quantization, kMaxIdBytes, utf8);
  check_text(e, at + ".engine", m.engine, kMaxIdBytes, utf8);
  check_text_list(e, at + ".capabilities", m.capabilities, utf8);
  check_text(e, at + ".determinism", m.determinism, kMaxTextBytes, utf8);
}

void check_reservation_terms(FieldErrors& e, const ReservationTerms& t) {
  if (!e.ok() || t.max_slots == 0) return;
  if (t.discount_percent > 100) e.fail("reservations.discount_percent", "must be from 0 to 100");
  if (e.ok() && t.max_slots > kMaxReservationSlots) {
    e.fail("reservations.max_slots", "must be at most " + std::to_string(kMaxReservationSlots));
  }
  if (e.ok() && (t.max_hours < 1 || t.max_hours > kMaxReservationHours)) {
    e.fail("reservations.max_hours", "must be from 1 to " + std::to_string(kMaxReservationHours));
  }
}

void check_announcement(FieldErrors& e, const Announcement& a, bool utf8) {
  check_text(e, "name", a.name, kMaxTextBytes, utf8);
  check_text(e, "hardware.cpu_model", a.hardware.cpu_model, kMaxTextBytes, utf8);
  if (e.ok() && a.hardware.gpus.size() > kMaxListItems) {
    e.fail("hardware.gpus", "must have at most " + std::to_string(kMaxListItems) + " entries");
  }
  for (size_t i = 0; e.ok() && i < a.hardware.gpus.size(); ++i) {
    check_text(e, indexed("hardware.gpus", i) + ".name", a.hardware.gpus[i].name, kMaxTextBytes, utf8);
  }
  check_text_list(e, "engines", a.engines, utf8);
  if (e.ok() && a.models.size() > kMaxModels) {
    e.fail("models", "must have at most " + std::to_string(kMaxModels) + " entries");
  }
  std::set<std::string_view> names;
  for (size_t i = 0; e.ok() && i < a.models.size(); ++i) {
    const std::string at = indexed("models", i);
    check_model(e, at, a.models[i], utf8);
    // Consumers look models up by name; two entries under one name would be ambiguous.
    if (e.ok() && !names.insert(a.models[i].name).second) e.fail(at + ".name", "duplicate model name");
  }
  if (e.ok() && a.prices.priority_percent.size() > std::size(kPriorities)) {
    e.fail("prices.priority_percent", "must name only low, medium, high and urgent");
  }
  std::set<std::string_view> priorities;
  for (const auto& [priority, percent] : a.prices.priority_percent) {
    const std::string at = "prices.priority_percent." + priority;
    check_priority(e, at, priority);
    if (e.ok() && !priorities.insert(canonical_priority(priority)).second) {
      e.fail(at, "names the same priority as another entry (normal is medium)");
    }
    if (e.ok() && (percent < 1 || percent > kMaxPriorityPercent)) {
      e.fail(at, "must be an integer from 1 to " + std::to_string(kMaxPriorityPercent));
    }
  }
  check_reservation_terms(e, a.reservations);
}

void check_quote_request(FieldErrors& e, const QuoteRequest& q) {
  check_id(e, "quote_id", q.quote_id, kRequired);
  check_id(e, "model", q.model, kRequired);
  if (e.ok() && (q.max_tokens < 1 || q.max_tokens > 65536)) {
    e.fail("max_tokens", "must be an integer from 1 to 65536");
  }
  check_priority(e, "priority", q.priority);
  check_non_negative(e, "deadline", q.deadline);
}

void write_announcement(ContentWriter& w, const Announcement& a) {
  w.text("name", a.name);
  w.begin_object("hardware");
  w.text("cpu_model", a.hardware.cpu_model);
  w.unsigned_integer("cpu_cores", a.hardware.cpu_cores);
  w.unsigned_integer("memory_mb", a.hardware.memory_mb);
  w.begin_array("gpus");
  for (const GpuInfo& g : a.hardware.gpus) {
    w.begin_object({});
    w.text("name", g.name);
    w.unsigned_integer("memory_mb", g.memory_mb);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  w.text_list("engines", a.engines);
  w.begin_array("models");
  for (const ModelInfo& m : a.models) {
    w.begin_object({});
    w.text("name", m.name);
    w.text("sha256", m.sha256);
    w.text("family", m.family);
    w.unsigned_integer("parameters", m.parameters);
    w.text("quantization", m.quantization);
    w.unsigned_integer("context_length", m.context_length);
    w.text("engine", m.engine);
    w.text_list("capabilities", m.capabilities);
    if (!m.determinism.empty()) w.text("determinism", m.determinism);
    w.end_object();
  }
  w.end_array();
  w.begin_object("prices");
  w.unsigned_integer("per_1k_input_msat", a.prices.per_1k_input_msat);
  w.unsigned_integer("per_1k_output_msat", a.prices.per_1k_output_msat);
  w.unsigned_integer("per_second_msat", a.prices.per_second_msat);
  w.unsigned_integer("per_job_msat", a.prices.per_job_msat);
  w.begin_object("priority_percent");
  for (const auto& [priority, percent] : a.prices.priority_percent)
    w.unsigned_integer(priority, percent);
  w.end_object();
  w.end_object();
  w.begin_object("capacity");
  w.unsigned_integer("slots", a.capacity.slots);
  w.unsigned_integer("queue", a.capacity.queue);
  w.unsigned_integer("busy", a.capacity.busy);
  w.unsigned_integer("queued", a.capacity.queued);
  w.end_object();
  if (a.reservations.max_slots > 0) {
    w.begin_object("reservations");
    w.unsigned_integer("discount_percent", a.reservations.discount_percent);
    w.unsigned_integer("max_slots", a.reservations.max_slots);
    w.unsigned_integer("max_hours", a.reservations.max_hours);
    w.end_object();
  }
}

void read_hardware(FieldReader& r, Hardware& h) {
  const json::object* o = r.object("hardware", kOptional);
  if (o == nullptr) return;
  FieldReader hr(*o, r.errors(), "hardware.");
  hr.text("cpu_model", h.cpu_model, kOptional);
  hr.integer("cpu_cores", h.cpu_cores, kOptional);
  hr.integer("memory_mb", h.memory_mb, kOptional);
  const json::array* gpus = hr.array("gpus", kOptional, kMaxListItems);
  if (gpus == nullptr) return;
  for (size_t i = 0; r.errors().ok() && i < gpus->size(); ++i) {
    const std::string at = indexed("hardware.gpus", i);
    const json::object* g = (*gpus)[i].if_object();
    if (g == nullptr) {
      r.errors().fail(at, "must be an object");
      return;
    }
    FieldReader gr(*g, r.errors(), at + ".");
    GpuInfo& gpu = h.gpus.emplace_back();
    gr.text("name", gpu.name, kRequired);
    gr.integer("memory_mb", gpu.memory_mb, kOptional);
  }
}

void read_models(FieldReader& r, std::vector<ModelInfo>& models) {
  const json::array* list = r.array("models", kRequired, kMaxModels);
  if (list == nullptr) return;
  models.reserve(list->size());
  for (size_t i = 0; r.errors().ok() && i < list->size(); ++i) {
    const std::string at = indexed("models", i);
    const json::object* o = (*list)[i].if_object();
    if (o == nullptr) {
      r.errors().fail(at, "must be an object");
      return;
    }
    FieldReader mr(*o, r.errors(), at + ".");
    ModelInfo& m = models.emplace_back();
    mr.text("name", m.name, kRequired);
    mr.text("sha256", m.sha256, kOptional);
    mr.text("family", m.family, kOptional);
    mr.integer("parameters", m.parameters, kOptional);
    mr.text("quantization", m.quantization, kOptional);
    mr.integer("context_length", m.context_length, kOptional);
    mr.text("engine", m.engine, kOptional);
    mr.text_list("capabilities", m.capabilities, kOptional, kMaxListItems);
    mr.text("determinism", m.determinism, kOptional);
  }
}

void read_prices(FieldReader& r, Prices& p) {
  const json::object* o = r.object("prices", kRequired);
  if (o == nullptr) return;
  FieldReader pr(*o, r.errors(), "prices.");
  pr.integer("per_1k_input_msat", p.per_1k_input_msat, kOptional);
  pr.integer("per_1k_output_msat", p.per_1k_output_msat, kOptional);
  pr.integer("per_second_msat", p.per_second_msat, kOptional);
  pr.integer("per_job_msat", p.per_job_msat, kOptional);
  const json::object* percents = pr.object("priority_percent", kOptional);
  if (percents == nullptr) return;
  if (percents->size() > std::size(kPriorities)) {
    r.errors().fail("prices.priority_percent", "must name only low, medium, high and urgent");
    return;
  }
  FieldReader ppr(*percents, r.errors(), "prices.priority_percent.");
  for (const auto& entry : *percents) {
    const std::string_view priority(entry.key().data(), entry.key().size());
    uint32_t percent = 0;
    ppr.integer(priority, percent, kRequired);
    if (!r.errors().ok()) return;
    const std::string_view canonical = canonical_priority(priority);
    if (canonical.empty()) {
      r.errors().fail("prices.priority_percent." + std::string(priority),
                      "must be low, medium, high or urgent");
      return;
    }
    if (!p.priority_percent.emplace(canonical, percent).second) {
      r.errors().fail("prices.priority_percent." + std::string(priority),
                      "names the same priority as another entry (normal is medium)");
      return;
    }
  }
}

void read_announcement(FieldReader& r, Announcement& a) {
  r.text("name", a.name, kOptional);
  read_hardware(r, a.hardware);
  r.text_list("engines", a.engines, kOptional, kMaxListItems);
  read_models(r, a.models);
  read_prices(r, a.prices);
  if (const json::object* o = r.object("capacity", kRequired)) {
    FieldReader cr(*o, r.errors(), "capacity.");
    cr.integer("slots", a.capacity.slots, kRequired);
    cr.integer("queue", a.capacity.queue, kOptional);
    cr.integer("busy", a.capacity.busy, kOptional);
    cr.integer("queued", a.capacity.queued, kOptional);
  }
  if (const json::object* o = r.object("reservations", kOptional)) {
    FieldReader rr(*o, r.errors(), "reservations.");
    rr.integer("discount_percent", a.reservations.discount_percent, kOptional);
    rr.integer("max_slots", a.reservations.max_slots, kRequired);
    rr.integer("max_hours", a.reservations.max_hours, kRequired);
  }
}

void write_quote_request(ContentWriter& w, const QuoteRequest& q) {
  w.text("quote_id", q.quote_id);
  w.text("model", q.model);
  w.unsigned_integer("input_tokens", q.input_tokens);
  w.unsigned_integer("max_tokens", q.max_tokens);
  w.unsigned_integer("max_cost_msat", q.max_cost_msat);
  w.text("priority", q.priority);
  w.signed_integer("deadline", q.deadline);
}

void read_quote_request(FieldReader& r, QuoteRequest& q) {
  r.text("quote_id", q.quote_id, kRequired);
  r.text("model", q.model, kRequired);
  r.integer("input_tokens", q.input_tokens, kOptional);
  r.integer("max_tokens", q.max_tokens, kRequired);
  r.integer("max_cost_msat", q.max_cost_msat, kOptional);
  r.text("priority", q.priority, kOptional);
  if (q.priority == "normal") q.priority = "medium";
  r.integer("deadline", q.deadline, kOptional);
}

// The checks every public event gets before its content is read: signature, kind, the "v" tag.
Status check_public_event(const nostr::Event& event, uint32_t kind) {
  if (event.kind != kind) {
    return make_error(ErrorCode::kInvalidInput,
                      "kind: expected " + std::to_string(kind) + ", got " + std::to_string(event.kind));
  }
  if (auto verified = nostr::verify_event(event); !verified) return verified;
  const auto version = event.tag_value("v");
  if (!version) return make_error(ErrorCode::kInvalidInput, "v tag: missing");
  if (*version != kVersionTag) {
    return make_error(ErrorCode::kUnsupported,
                      "v tag: unknown version \"" + std::string(version->substr(0, kMaxIdBytes)) + "\"");
  }
  return {};
}

}  // namespace

Status validate(const Announcement& a) {
  FieldErrors errors;
  check_announcement(errors, a, /*utf8=*/true);
  return errors.status();
}

Status validate(const QuoteRequest& q) {
  FieldErrors errors;
  check_quote_request(errors, q);
  return errors.status();
}

std::string to_content(const Announcement& a) {
  ContentWriter w(512 + a.models.size() * 384);
  write_announcement(w, a);
  return std::move(w).finish();
}

std::string to_content(const QuoteRequest& q) {
  ContentWriter w(256);
  write_quote_request(w, q);
  return std::move(w).finish();
}

Result<nostr::Event> make_announcement(const Announcement& a, const nostr::Keypair& provider, int64_t now,
                                       int64_t ttl_seconds) {
  if (ttl_seconds <= 0) return make_error(ErrorCode::kInvalidInput, "ttl_seconds: must be positive");
  if (auto valid = validate(a); !valid) return tl::unexpected(valid.error());
  nostr::EventDraft draft;
  draft.created_at = now;
  draft.kind = kProviderAnnouncement;
  draft.content = to_content(a);
  if (draft.content.size() > kMaxAnnouncementBytes) {
    return make_error(ErrorCode::kLimitExceeded, "announcement: " + std::to_string(draft.content.size()) +
                                                     " bytes; the limit is " +
                                                     std::to_string(kMaxAnnouncementBytes));
  }
  draft.tags.reserve(4 + a.models.size());
  draft.tags.push_back({"d", kAnnouncementD});
  draft.tags.push_back({"expiration", std::to_string(now + ttl_seconds)});
  draft.tags.push_back({"t", "infernet"});
  for (const ModelInfo& m : a.models)
    draft.tags.push_back({"model", m.name});
  draft.tags.push_back({"v", kVersionTag});
  return nostr::sign_event(std::move(draft), provider);
}

Result<ProviderAnnouncement> parse_announcement(const nostr::Event& event) {
  if (auto ok = check_public_event(event, kProviderAnnouncement); !ok) return tl::unexpected(ok.error());
  if (event.tag_value("d") != std::string_view(kAnnouncementD)) {
    return make_error(ErrorCode::kInvalidInput, std::string("d tag: must be \"") + kAnnouncementD + "\"");
  }
  int64_t expires_at = 0;
  if (const auto expiration = event.tag_value("expiration")) {
    int64_t at = 0;
    const char* end = expiration->data() + expiration->size();
    auto [ptr, ec] = std::from_chars(expiration->data(), end, at);
    if (ec != std::errc() || ptr != end || at < 0) {
      return make_error(ErrorCode::kInvalidInput, "expiration tag: must be a unix time in seconds");
    }
    expires_at = at;
  }

  unsigned char buffer[8192];
  json::monotonic_resource resource(buffer, sizeof(buffer));
  json::value storage;
  auto object =
      internal::parse_content(event.content, kMaxAnnouncementBytes, &resource, storage, "announcement");
  if (!object) return tl::unexpected(object.error());
  Announcement announcement;
  FieldErrors errors;
  FieldReader reader(**object, errors);
  read_announcement(reader, announcement);
  check_announcement(errors, announcement, /*utf8=*/false);
  if (!errors.ok()) return tl::unexpected(*errors.error());

  // Consumers find providers by filtering on "model" tags at the relay, so the tags must tell the truth.
  std::set<std::string_view> tagged;
  for (const nostr::Tag& tag : event.tags) {
    if (tag.size() >= 2 && tag[0] == "model") tagged.insert(tag[1]);
  }
  std::set<std::string_view> listed;
  for (const ModelInfo& m : announcement.models)
    listed.insert(m.name);
  if (tagged != listed) {
    return make_error(ErrorCode::kInvalidInput, "model tags: must name exactly the announced models");
  }

  auto provider = nostr::PublicKey::from_bytes(event.pubkey);
  if (!provider) return tl::unexpected(with_context(provider.error(), "pubkey"));
  return ProviderAnnouncement{*provider, event.created_at, expires_at, std::move(announcement)};
}

Result<nostr::Event> make_quote_request(const QuoteRequest& q, const nostr::Keypair& consumer, int64_t now) {
  if (auto valid = validate(q); !valid) return tl::unexpected(valid.error());
  nostr::EventDraft draft;
  draft.created_at = now;
  draft.kind = kQuoteRequest;
  draft.content = to_content(q);
  draft.tags = {{"t", "infernet"}, {"model", q.model}, {"v", kVersionTag}};
  return nostr::sign_event(std::move(draft), consumer);
}

Result<QuoteRequest> parse_quote_request(const nostr::Event& event) {
  if (auto ok = check_public_event(event, kQuoteRequest); !ok) return tl::unexpected(ok.error());
  unsigned char buffer[2048];
  json::monotonic_resource resource(buffer, sizeof(buffer));
  json::value storage;
  auto object =
      internal::parse_content(event.content, kMaxQuoteRequestBytes, &resource, storage, "quote request");
  if (!object) return tl::unexpected(object.error());
  QuoteRequest q;
  FieldErrors errors;
  FieldReader reader(**object, errors);
  read_quote_request(reader, q);
  check_quote_request(errors, q);
  if (!errors.ok()) return tl::unexpected(*errors.error());
  // Providers subscribe by "model" tag; a tag that disagrees with the content would reach the wrong ones.
  if (event.tag_value("model") != std::string_view(q.model)) {
    return make_error(ErrorCode::kInvalidInput, "model tag: must match the content's model");
  }
  return q;
}

}  // namespace infernet::protocol
