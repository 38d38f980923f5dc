// Job messages <-> content JSON, and the rules every job message obeys (docs/protocol.md, "Content").
#include <array>
#include <type_traits>

#include <boost/json/monotonic_resource.hpp>

#include "protocol/internal/content_json.hpp"
#include "protocol/protocol.hpp"

namespace infernet::protocol {
namespace json = boost::json;
using internal::check_hex64;
using internal::check_id;
using internal::check_min;
using internal::check_non_negative;
using internal::check_priority;
using internal::check_range;
using internal::check_text;
using internal::ContentWriter;
using internal::FieldErrors;
using internal::FieldReader;
using internal::Presence;

namespace {

constexpr auto kRequired = Presence::kRequired;
constexpr auto kOptional = Presence::kOptional;
constexpr uint32_t kMaxTokensLimit = 65536;
// Room for the field names and numbers around the strings of a message.
constexpr size_t kFixedBytes = 256;

// Every job message names its job (or quote) and attempt the same way.
void check_job(FieldErrors& e, std::string_view job_id, uint32_t attempt) {
  check_id(e, "job_id", job_id, kRequired);
  check_min(e, "attempt", attempt, 1);
}

// ---- rules per message; utf8: also check every string is valid UTF-8 (not needed after JSON parsing) ----

void check(FieldErrors& e, const JobRequest& m, bool utf8) {
  check_job(e, m.job_id, m.attempt);
  check_id(e, "model", m.model, kRequired);
  if (e.ok() && m.prompt.empty() == m.messages.empty()) e.fail("prompt", "give either a prompt or messages");
  check_text(e, "prompt", m.prompt, kMaxPromptBytes, utf8);
  if (e.ok()) {
    if (auto st = check_messages(m.messages, kMaxPromptBytes); !st) e.fail(st.error());
  }
  if (e.ok() && (m.max_tokens < 1 || m.max_tokens > kMaxTokensLimit)) {
    e.fail("max_tokens", "must be an integer from 1 to 65536");
  }
  if (e.ok()) {
    if (auto st = check_sampling(m.sampling); !st) e.fail(st.error());
  }
  check_priority(e, "priority", m.priority);
  check_non_negative(e, "deadline", m.deadline);
  check_non_negative(e, "start_by", m.start_by);
  check_id(e, "quote_id", m.quote_id, kOptional);
  check_text(e, "resume_text", m.resume_text, kMaxOutputBytes, utf8);
}

void check(FieldErrors& e, const JobStatus& m, bool utf8) {
  check_job(e, m.job_id, m.attempt);
  const Presence code = m.status == JobStatusCode::kRejected ? kRequired : kOptional;
  check_id(e, "reason_code", m.reason_code, code);
  check_text(e, "reason", m.reason, kMaxTextBytes, utf8);
}

void check(FieldErrors& e, const JobProgress& m, bool utf8) {
  check_job(e, m.job_id, m.attempt);
  check_min(e, "seq", m.seq, 1);
  check_text(e, "text", m.text, kMaxOutputBytes, utf8);
  check_range(e, "fraction", m.fraction, 0, 1);
}

void check(FieldErrors& e, const JobResult& m, bool utf8) {
  check_job(e, m.job_id, m.attempt);
  check_text(e, "output", m.output, kMaxOutputBytes, utf8);
  check_id(e, "error_code", m.error_code, m.ok ? kOptional : kRequired);
  check_text(e, "error", m.error, kMaxTextBytes, utf8);
  if (e.ok() && !m.finish_reason.empty() && m.finish_reason != "stop" && m.finish_reason != "length" &&
      m.finish_reason != "budget") {
    e.fail("finish_reason", "must be stop, length or budget");
  }
  // A year of engine time is far beyond any job; the bound keeps the number finite and sane.
  check_range(e, "seconds", m.seconds, 0, 31'536'000);
}

void check(FieldErrors& e, const JobCancel& m, bool utf8) {
  check_job(e, m.job_id, m.attempt);
  check_text(e, "reason", m.reason, kMaxTextBytes, utf8);
}

void check(FieldErrors& e, const JobReceipt& m, bool /*utf8*/) {
  check_job(e, m.job_id, m.attempt);
  check_hex64(e, "result_event_id", m.result_event_id, kRequired);
}

void check(FieldErrors& e, const ReservationRequest& m, bool /*utf8*/) {
  check_id(e, "reservation_id", m.reservation_id, kRequired);
  if (e.ok() && (m.slots < 1 || m.slots > kMaxReservationSlots)) {
    e.fail("slots", "must be an integer from 1 to " + std::to_string(kMaxReservationSlots));
  }
  if (e.ok() && (m.hours < 1 || m.hours > kMaxReservationHours)) {
    e.fail("hours", "must be an integer from 1 to " + std::to_string(kMaxReservationHours));
  }
  check_non_negative(e, "start", m.start);
}

void check(FieldErrors& e, const ReservationAnswer& m, bool utf8) {
  check_id(e, "reservation_id", m.reservation_id, kRequired);
  check_id(e, "reason_code", m.reason_code, m.accepted ? kOptional : kRequired);
  check_text(e, "reason", m.reason, kMaxTextBytes, utf8);
  if (e.ok() && m.accepted) {
    if (m.slots < 1 || m.slots > kMaxReservationSlots) e.fail("slots", "must be from 1 when accepted");
    if (e.ok() && (m.start <= 0 || m.end <= m.start)) e.fail("end", "must be after start when accepted");
    if (e.ok() && m.discount_percent > 100) e.fail("discount_percent", "must be from 0 to 100");
  }
}

void check(FieldErrors& e, const TokenCountRequest& m, bool utf8) {
  check_id(e, "request_id", m.request_id, kRequired);
  check_id(e, "model", m.model, kRequired);
  if (e.ok() && m.prompt.empty() == m.messages.empty()) e.fail("prompt", "give either a prompt or messages");
  check_text(e, "prompt", m.prompt, kMaxPromptBytes, utf8);
  if (e.ok()) {
    if (auto st = check_messages(m.messages, kMaxPromptBytes); !st) e.fail(st.error());
  }
}

void check(FieldErrors& e, const TokenCountAnswer& m, bool utf8) {
  check_id(e, "request_id", m.request_id, kRequired);
  check_id(e, "error_code", m.error_code, m.ok ? kOptional : kRequired);
  check_text(e, "error", m.error, kMaxTextBytes, utf8);
}

void check(FieldErrors& e, const Offer& m, bool /*utf8*/) {
  check_id(e, "quote_id", m.quote_id, kRequired);
  check_id(e, "model", m.model, kRequired);
  if (e.ok() && m.expires_at <= 0) e.fail("expires_at", "must be a positive unix time");
}

// ---- writers ----

// A job's input: its messages, or else its prompt.
void write_input(ContentWriter& w, const std::string& prompt, const std::vector<ChatMessage>& messages) {
  if (!messages.empty()) {
    w.begin_array("messages");
    for (const ChatMessage& message : messages) {
      w.begin_object({});
      w.text("role", message.role);
      w.text("content", message.content);
      w.end_object();
    }
    w.end_array();
  } else {
    w.text("prompt", prompt);
  }
}

void write(ContentWriter& w, const JobRequest& m) {
  w.text("job_id", m.job_id);
  w.unsigned_integer("attempt", m.attempt);
  w.text("model", m.model);
  write_input(w, m.prompt, m.messages);
  w.unsigned_integer("max_tokens", m.max_tokens);
  // Sampling parameters are written only when they differ from their neutral value, except the two that
  // every request has always carried.
  const SamplingParams& p = m.sampling;
  const SamplingParams neutral;
  w.number("temperature", p.temperature);
  w.unsigned_integer("seed", p.seed);
  if (p.top_k != neutral.top_k) w.unsigned_integer("top_k", p.top_k);
  if (p.top_p != neutral.top_p) w.number("top_p", p.top_p);
  if (p.min_p != neutral.min_p) w.number("min_p", p.min_p);
  if (p.repeat_penalty != neutral.repeat_penalty) w.number("repeat_penalty", p.repeat_penalty);
  if (p.repeat_last_n != neutral.repeat_last_n) w.unsigned_integer("repeat_last_n", p.repeat_last_n);
  if (!p.stop.empty()) w.text_list("stop", p.stop);
  if (m.deterministic) w.boolean("deterministic", true);
  w.unsigned_integer("max_cost_msat", m.max_cost_msat);
  w.text("priority", m.priority);
  w.signed_integer("deadline", m.deadline);
  if (m.start_by != 0) w.signed_integer("start_by", m.start_by);
  if (!m.quote_id.empty()) w.text("quote_id", m.quote_id);
  if (!m.resume_text.empty()) w.text("resume_text", m.resume_text);
}

void write(ContentWriter& w, const JobStatus& m) {
  w.text("job_id", m.job_id);
  w.unsigned_integer("attempt", m.attempt);
  w.text("status", to_string(m.status));
  if (!m.reason_code.empty()) w.text("reason_code", m.reason_code);
  if (!m.reason.empty()) w.text("reason", m.reason);
  if (m.retry_after_seconds != 0) w.unsigned_integer("retry_after_seconds", m.retry_after_seconds);
  if (m.status == JobStatusCode::kAccepted) w.unsigned_integer("queue_position", m.queue_position);
}

void write(ContentWriter& w, const JobProgress& m) {
  w.text("job_id", m.job_id);
  w.unsigned_integer("attempt", m.attempt);
  w.unsigned_integer("seq", m.seq);
  w.text("text", m.text);
  w.unsigned_integer("tokens", m.tokens);
  w.number("fraction", m.fraction);
}

void write(ContentWriter& w, const JobResult& m) {
  w.text("job_id", m.job_id);
  w.unsigned_integer("attempt", m.attempt);
  w.boolean("ok", m.ok);
  w.text("output", m.output);
  if (!m.error_code.empty()) w.text("error_code", m.error_code);
  if (!m.error.empty()) w.text("error", m.error);
  w.begin_object("usage");
  w.unsigned_integer("input_tokens", m.usage.input_tokens);
  w.unsigned_integer("output_tokens", m.usage.output_tokens);
  w.end_object();
  if (!m.finish_reason.empty()) w.text("finish_reason", m.finish_reason);
  w.unsigned_integer("cost_msat", m.cost_msat);
  w.number("seconds", m.seconds);
}

void write(ContentWriter& w, const JobCancel& m) {
  w.text("job_id", m.job_id);
  w.unsigned_integer("attempt", m.attempt);
  if (!m.reason.empty()) w.text("reason", m.reason);
}

void write(ContentWriter& w, const JobReceipt& m) {
  w.text("job_id", m.job_id);
  w.unsigned_integer("attempt", m.attempt);
  w.unsigned_integer("cost_msat", m.cost_msat);
  w.text("result_event_id", m.result_event_id);
}

void write(ContentWriter& w, const ReservationRequest& m) {
  w.text("reservation_id", m.reservation_id);
  w.unsigned_integer("slots", m.slots);
  w.unsigned_integer("hours", m.hours);
  w.signed_integer("start", m.start);
}

void write(ContentWriter& w, const ReservationAnswer& m) {
  w.text("reservation_id", m.reservation_id);
  w.boolean("accepted", m.accepted);
  if (!m.reason_code.empty()) w.text("reason_code", m.reason_code);
  if (!m.reason.empty()) w.text("reason", m.reason);
  if (m.accepted) {
    w.unsigned_integer("slots", m.slots);
    w.signed_integer("start", m.start);
    w.signed_integer("end", m.end);
    w.unsigned_integer("discount_percent", m.discount_percent);
  }
}

void write(ContentWriter& w, const TokenCountRequest& m) {
  w.text("request_id", m.request_id);
  w.text("model", m.model);
  write_input(w, m.prompt, m.messages);
}

void write(ContentWriter& w, const TokenCountAnswer& m) {
  w.text("request_id", m.request_id);
  w.boolean("ok", m.ok);
  if (m.ok) w.unsigned_integer("input_tokens", m.input_tokens);
  if (!m.error_code.empty()) w.text("error_code", m.error_code);
  if (!m.error.empty()) w.text("error", m.error);
}

void write(ContentWriter& w, const Offer& m) {
  w.text("quote_id", m.quote_id);
  w.text("model", m.model);
  w.unsigned_integer("price_msat", m.price_msat);
  w.unsigned_integer("eta_ms", m.eta_ms);
  w.unsigned_integer("queue_position", m.queue_position);
  w.signed_integer("expires_at", m.expires_at);
}

size_t input_bytes(const std::string& prompt, const std::vector<ChatMessage>& messages) {
  size_t n = prompt.size();
  for (const ChatMessage& message : messages)
    n += message.content.size() + message.role.size() + 32;
  return n;
}
size_t text_bytes(const JobRequest& m) {
  size_t n = input_bytes(m.prompt, m.messages) + m.resume_text.size();
  for (const std::string& stop : m.sampling.stop)
    n += stop.size();
  return n;
}
size_t text_bytes(const TokenCountRequest& m) {
  return input_bytes(m.prompt, m.messages);
}
size_t text_bytes(const TokenCountAnswer& m) {
  return m.error.size();
}
size_t text_bytes(const JobStatus& m) {
  return m.reason.size();
}
size_t text_bytes(const JobProgress& m) {
  return m.text.size();
}
size_t text_bytes(const JobResult& m) {
  return m.output.size() + m.error.size();
}
size_t text_bytes(const JobCancel& m) {
  return m.reason.size();
}
size_t text_bytes(const JobReceipt&) {
  return 0;
}
size_t text_bytes(const Offer&) {
  return 0;
}
size_t text_bytes(const ReservationRequest&) {
  return 0;
}
size_t text_bytes(const ReservationAnswer& m) {
  return m.reason.size();
}

// ---- readers ----

void read_input(FieldReader& r, std::string& prompt, std::vector<ChatMessage>& messages) {
  r.text("prompt", prompt, kOptional);
  if (const json::array* list = r.array("messages", kOptional, kMaxChatMessages)) {
    for (size_t i = 0; i < list->size() && r.errors().ok(); ++i) {
      const std::string at = "messages[" + std::to_string(i) + "]";
      const json::object* o = (*list)[i].if_object();
      if (o == nullptr) {
        r.errors().fail(at, "must be an object");
        break;
      }
      FieldReader mr(*o, r.errors(), at + ".");
      ChatMessage& message = messages.emplace_back();
      mr.text("role", message.role, kRequired);
      mr.text("content", message.content, kRequired);
    }
  }
}

void read(FieldReader& r, JobRequest& m) {
  r.text("job_id", m.job_id, kRequired);
  r.integer("attempt", m.attempt, kRequired);
  r.text("model", m.model, kRequired);
  read_input(r, m.prompt, m.messages);
  r.integer("max_tokens", m.max_tokens, kRequired);
  SamplingParams& p = m.sampling;
  r.number("temperature", p.temperature, kOptional);
  r.integer("seed", p.seed, kOptional);
  r.integer("top_k", p.top_k, kOptional);
  r.number("top_p", p.top_p, kOptional);
  r.number("min_p", p.min_p, kOptional);
  r.number("repeat_penalty", p.repeat_penalty, kOptional);
  r.integer("repeat_last_n", p.repeat_last_n, kOptional);
  r.text_list("stop", p.stop, kOptional, kMaxStopSequences);
  r.boolean("deterministic", m.deterministic, kOptional);
  r.integer("max_cost_msat", m.max_cost_msat, kOptional);
  r.text("priority", m.priority, kOptional);
  if (m.priority == "normal") m.priority = "medium";
  r.integer("deadline", m.deadline, kOptional);
  r.integer("start_by", m.start_by, kOptional);
  r.text("quote_id", m.quote_id, kOptional);
  r.text("resume_text", m.resume_text, kOptional);
}

void read(FieldReader& r, JobStatus& m) {
  r.text("job_id", m.job_id, kRequired);
  r.integer("attempt", m.attempt, kRequired);
  std::string status;
  r.text("status", status, kRequired);
  if (r.errors().ok()) {
    auto code = parse_job_status_code(status);
    if (code) {
      m.status = *code;
    } else {
      r.errors().fail(code.error());
    }
  }
  r.text("reason_code", m.reason_code, kOptional);
  r.text("reason", m.reason, kOptional);
  r.integer("retry_after_seconds", m.retry_after_seconds, kOptional);
  r.integer("queue_position", m.queue_position, kOptional);
}

void read(FieldReader& r, JobProgress& m) {
  r.text("job_id", m.job_id, kRequired);
  r.integer("attempt", m.attempt, kRequired);
  r.integer("seq", m.seq, kRequired);
  r.text("text", m.text, kRequired);
  r.integer("tokens", m.tokens, kOptional);
  r.number("fraction", m.fraction, kOptional);
}

void read(FieldReader& r, JobResult& m) {
  r.text("job_id", m.job_id, kRequired);
  r.integer("attempt", m.attempt, kRequired);
  r.boolean("ok", m.ok, kRequired);
  r.text("output", m.output, kOptional);
  r.text("error_code", m.error_code, kOptional);
  r.text("error", m.error, kOptional);
  if (const json::object* usage = r.object("usage", kOptional)) {
    FieldReader u(*usage, r.errors(), "usage.");
    u.integer("input_tokens", m.usage.input_tokens, kOptional);
    u.integer("output_tokens", m.usage.output_tokens, kOptional);
  }
  r.text("finish_reason", m.finish_reason, kOptional);
  r.integer("cost_msat", m.cost_msat, kOptional);
  r.number("seconds", m.seconds, kOptional);
}

void read(FieldReader& r, JobCancel& m) {
  r.text("job_id", m.job_id, kRequired);
  r.integer("attempt", m.attempt, kRequired);
  r.text("reason", m.reason, kOptional);
}

void read(FieldReader& r, JobReceipt& m) {
  r.text("job_id", m.job_id, kRequired);
  r.integer("attempt", m.attempt, kRequired);
  r.integer("cost_msat", m.cost_msat, kRequired);
  r.text("result_event_id", m.result_event_id, kRequired);
}

void read(FieldReader& r, Offer& m) {
  r.text("quote_id", m.quote_id, kRequired);
  r.text("model", m.model, kRequired);
  r.integer("price_msat", m.price_msat, kRequired);
  r.integer("eta_ms", m.eta_ms, kOptional);
  r.integer("queue_position", m.queue_position, kOptional);
  r.integer("expires_at", m.expires_at, kRequired);
}

void read(FieldReader& r, ReservationRequest& m) {
  r.text("reservation_id", m.reservation_id, kRequired);
  r.integer("slots", m.slots, kRequired);
  r.integer("hours", m.hours, kRequired);
  r.integer("start", m.start, kOptional);
}

void read(FieldReader& r, ReservationAnswer& m) {
  r.text("reservation_id", m.reservation_id, kRequired);
  r.boolean("accepted", m.accepted, kRequired);
  r.text("reason_code", m.reason_code, kOptional);
  r.text("reason", m.reason, kOptional);
  r.integer("slots", m.slots, kOptional);
  r.integer("start", m.start, kOptional);
  r.integer("end", m.end, kOptional);
  r.integer("discount_percent", m.discount_percent, kOptional);
}

void read(FieldReader& r, TokenCountRequest& m) {
  r.text("request_id", m.request_id, kRequired);
  r.text("model", m.model, kRequired);
  read_input(r, m.prompt, m.messages);
}

void read(FieldReader& r, TokenCountAnswer& m) {
  r.text("request_id", m.request_id, kRequired);
  r.boolean("ok", m.ok, kRequired);
  r.integer("input_tokens", m.input_tokens, kOptional);
  r.text("error_code", m.error_code, kOptional);
  r.text("error", m.error, kOptional);
}

template <class T>
Result<JobMessage> parse_as(const json::object& object) {
  T m;
  FieldErrors errors;
  FieldReader reader(object, errors);
  read(reader, m);
  check(errors, m, /*utf8=*/false);
  if (!errors.ok()) return tl::unexpected(*errors.error());
  return JobMessage(std::move(m));
}

}  // namespace

const char* to_string(JobStatusCode code) {
  switch (code) {
    case JobStatusCode::kAccepted:
      return "accepted";
    case JobStatusCode::kRejected:
      return "rejected";
    case JobStatusCode::kRunning:
      return "running";
  }
  return "accepted";
}

Result<JobStatusCode> parse_job_status_code(std::string_view s) {
  if (s == "accepted") return JobStatusCode::kAccepted;
  if (s == "rejected") return JobStatusCode::kRejected;
  if (s == "running") return JobStatusCode::kRunning;
  return make_error(ErrorCode::kInvalidInput, "status: must be accepted, rejected or running");
}

std::string_view canonical_priority(std::string_view priority) {
  if (priority == "normal") return "medium";
  for (const char* p : kPriorities) {
    if (priority == p) return p;
  }
  return {};
}

int priority_rank(std::string_view priority) {
  const std::string_view canonical = canonical_priority(priority);
  if (canonical == "urgent") return 0;
  if (canonical == "high") return 1;
  if (canonical == "medium") return 2;
  if (canonical == "low") return 3;
  return 4;
}

bool is_job_kind(uint32_t kind) {
  switch (kind) {
    case kJobRequest:
    case kOffer:
    case kJobStatus:
    case kJobResult:
    case kJobCancel:
    case kJobReceipt:
    case kJobProgress:
    case kReservationRequest:
    case kReservationAnswer:
    case kTokenCountRequest:
    case kTokenCountAnswer:
      return true;
    default:
      return false;
  }
}

uint32_t kind_of(const JobMessage& m) {
  // Indexed by the variant's alternatives, in their order.
  static constexpr std::array<uint32_t, std::variant_size_v<JobMessage>> kKinds = {
      kJobRequest, kJobStatus,          kJobProgress,       kJobResult,         kJobCancel,       kJobReceipt,
      kOffer,      kReservationRequest, kReservationAnswer, kTokenCountRequest, kTokenCountAnswer};
  return kKinds[m.index()];
}

std::string to_content(const JobMessage& m) {
  return std::visit(
      [](const auto& message) {
        ContentWriter w(kFixedBytes + text_bytes(message) + text_bytes(message) / 8);
        write(w, message);
        return std::move(w).finish();
      },
      m);
}

Status validate(const JobMessage& m) {
  FieldErrors errors;
  std::visit([&errors](const auto& message) { check(errors, message, /*utf8=*/true); }, m);
  return errors.status();
}

Result<JobMessage> from_content(uint32_t kind, std::string_view text) {
  if (!is_job_kind(kind)) {
    return make_error(ErrorCode::kInvalidInput, "kind " + std::to_string(kind) + " is not a job message");
  }
  // Small messages parse without touching the heap; large ones grow the resource once or twice.
  unsigned char buffer[4096];
  json::monotonic_resource resource(buffer, sizeof(buffer));
  json::value storage;
  auto object = internal::parse_content(text, kMaxContentBytes, &resource, storage, "content");
  if (!object) return tl::unexpected(object.error());
  switch (kind) {
    case kJobRequest:
      return parse_as<JobRequest>(**object);
    case kJobStatus:
      return parse_as<JobStatus>(**object);
    case kJobProgress:
      return parse_as<JobProgress>(**object);
    case kJobResult:
      return parse_as<JobResult>(**object);
    case kJobCancel:
      return parse_as<JobCancel>(**object);
    case kJobReceipt:
      return parse_as<JobReceipt>(**object);
    case kReservationRequest:
      return parse_as<ReservationRequest>(**object);
    case kReservationAnswer:
      return parse_as<ReservationAnswer>(**object);
    case kTokenCountRequest:
      return parse_as<TokenCountRequest>(**object);
    case kTokenCountAnswer:
      return parse_as<TokenCountAnswer>(**object);
    default:
      return parse_as<Offer>(**object);
  }
}

}  // namespace infernet::protocol
