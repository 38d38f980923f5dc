// The Infernet job protocol: message types <-> signed Nostr events. docs/protocol.md is its specification;
// this header is its C++ form.
//
// Public events (anyone may read them): the provider announcement (addressable, refreshed as a heartbeat,
// NIP-40 expiration) and the quote request (a consumer asking every provider of a model for an offer; it
// carries no user data). Every other message carries user data or concerns one job, and is NIP-44 v2
// encrypted to its counterpart, tagged only with ["p", recipient]: a relay learns kinds, keys, times and
// sizes, never job ids, models, prompts or outputs.
//
// open() is the one way in for received job messages: it verifies the event's id and signature, checks it is
// addressed to us and of a job kind, decrypts it, and parses and validates the content against the schema of
// that kind (version, required fields, sizes). The caller then checks it against the job's state: right
// sender for that job and attempt, event not seen before, transition allowed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/generation.hpp"
#include "core/result.hpp"
#include "nostr/event.hpp"
#include "nostr/keys.hpp"

namespace infernet::protocol {

// The version written in every content object as "v"; a receiver refuses versions it does not know.
constexpr int kVersion = 1;

// Event kinds. Regular kinds are stored by relays, so a node that was away catches up; the progress stream
// is ephemeral (forwarded, never stored).
enum Kind : uint32_t {
  kJobRequest = 8340,            // consumer -> provider: run this job (encrypted)
  kQuoteRequest = 8341,          // consumer -> every provider of a model: make me an offer (public)
  kOffer = 8342,                 // provider -> consumer: the answer to a quote request (encrypted)
  kJobStatus = 8343,             // provider -> consumer: accepted, rejected (with reason), running
  kJobResult = 8344,             // provider -> consumer: the output, or the error (encrypted)
  kJobCancel = 8345,             // consumer -> provider: stop this job (encrypted)
  kJobReceipt = 8346,            // consumer -> provider: result received, cost settled (encrypted)
  kReservationRequest = 8347,    // consumer -> provider: hold slots for me for some hours (encrypted)
  kReservationAnswer = 8348,     // provider -> consumer: the reservation, accepted or refused (encrypted)
  kJobProgress = 28340,          // provider -> consumer: streamed tokens and progress (ephemeral, encrypted)
  kTokenCountRequest = 28341,    // consumer -> provider: count this input's tokens (ephemeral, encrypted)
  kTokenCountAnswer = 28342,     // provider -> consumer: the count, or why not (ephemeral, encrypted)
  kProviderAnnouncement = 38340  // provider: who I am, what I serve, at what price (addressable, public)
};

// The "d" tag of a provider's announcement: one per provider key.
inline constexpr const char* kAnnouncementD = "infernet-provider";

// Limits on what a message may carry (checked by open() and the parse functions).
constexpr size_t kMaxPromptBytes = 256 * 1024;
constexpr size_t kMaxOutputBytes = 1024 * 1024;
constexpr size_t kMaxIdBytes = 128;  // job ids, quote ids, model names, reasons' codes
constexpr size_t kMaxModels = 256;
// Free text that is not user data: names, reasons, error messages, hardware descriptions.
constexpr size_t kMaxTextBytes = 4096;
// Entries of the small lists: GPUs, engines, a model's capabilities.
constexpr size_t kMaxListItems = 64;
// The content JSON of one job message, after escaping. Big enough for a kMaxOutputBytes output of ordinary
// text (each newline or quote escapes to two bytes); small enough that the sealed event (padding, base64)
// stays under nostr::EventLimits' default 4 MiB. Relays have their own, usually smaller, limits on events
// (the embedded relay's relay.max_message_bytes).
constexpr size_t kMaxContentBytes = 2 * 1024 * 1024 + 512 * 1024;
// The content JSON of an announcement (public, so its size is a relay's concern too).
constexpr size_t kMaxAnnouncementBytes = 512 * 1024;
// The content JSON of a quote request.
constexpr size_t kMaxQuoteRequestBytes = 8 * 1024;

// Bounds of a reservation (a provider's own terms are usually tighter).
constexpr uint32_t kMaxReservationSlots = 1024;
constexpr uint32_t kMaxReservationHours = 8760;  // a year

// Priorities a job or a price multiplier may name, lowest first. "normal" is accepted on input as an alias of
// "medium" (the name before version 1 had four levels); canonical_priority() maps it.
inline constexpr const char* kPriorities[] = {"low", "medium", "high", "urgent"};

// The canonical name of a priority: "normal" -> "medium", the four names of kPriorities unchanged, anything
// else "" (not a priority).
std::string_view canonical_priority(std::string_view priority);
// Place of a priority in a provider's queue: urgent 0, high 1, medium (or normal) 2, low 3; 4 for anything
// else.
int priority_rank(std::string_view priority);

// True for the kinds open() accepts: every kind that carries a JobMessage (not the public announcement and
// quote request).
bool is_job_kind(uint32_t kind);

// ---- The provider announcement (public) ----

struct ModelInfo {
  std::string name;          // what consumers ask for, e.g. "tinyllama-q4"
  std::string sha256;        // hex fingerprint of the model file ("" for the fake engine's built-ins)
  std::string family;        // "llama", "fake", ...
  uint64_t parameters = 0;   // parameter count
  std::string quantization;  // "q4_0", "f16", ... or ""
  uint32_t context_length = 0;
  std::string engine;                     // the engine serving it: "fake", "llama", "torch"
  std::vector<std::string> capabilities;  // "text-generation", "chat", "embeddings", ...
  // What the provider pins for a job sent with deterministic = true (engine build, threads, batch
  // settings); "" when it cannot promise reproducible text.
  std::string determinism;

  bool operator==(const ModelInfo&) const = default;
};

struct GpuInfo {
  std::string name;  // as nvidia-smi reports it, e.g. "NVIDIA H100 80GB HBM3"
  uint64_t memory_mb = 0;

  bool operator==(const GpuInfo&) const = default;
};

struct Hardware {
  std::string cpu_model;
  uint32_t cpu_cores = 0;
  uint64_t memory_mb = 0;
  std::vector<GpuInfo> gpus;

  bool operator==(const Hardware&) const = default;
};

struct Prices {
  uint64_t per_1k_input_msat = 0;
  uint64_t per_1k_output_msat = 0;
  uint64_t per_second_msat = 0;
  uint64_t per_job_msat = 0;
  // Multiplier per priority ("low", "medium", "high", "urgent"), in percent: 100 = list price. Parsed
  // announcements name them canonically ("normal" read as "medium").
  std::map<std::string, uint32_t> priority_percent;

  bool operator==(const Prices&) const = default;
};

struct Capacity {
  uint32_t slots = 0;   // jobs run at once
  uint32_t queue = 0;   // jobs that may wait
  uint32_t busy = 0;    // slots in use at announcement time
  uint32_t queued = 0;  // jobs waiting at announcement time

  bool operator==(const Capacity&) const = default;
};

// What a provider offers to consumers who reserve capacity (docs/market-pricing.md). Announced only when
// max_slots > 0.
struct ReservationTerms {
  uint32_t discount_percent = 0;  // 0..100 off the list price, for jobs run in reserved slots
  uint32_t max_slots = 0;         // slots reserved at any time, all reservations together; 0: none offered
  uint32_t max_hours = 0;         // longest reservation, 1..8760

  bool operator==(const ReservationTerms&) const = default;
};

struct Announcement {
  std::string name;
  Hardware hardware;
  std::vector<std::string> engines;
  std::vector<ModelInfo> models;
  Prices prices;
  Capacity capacity;
  ReservationTerms reservations;

  bool operator==(const Announcement&) const = default;
};

// A parsed announcement with who published it and when it stops being valid.
struct ProviderAnnouncement {
  nostr::PublicKey provider;
  int64_t created_at = 0;
  int64_t expires_at = 0;  // NIP-40; 0 when absent
  Announcement announcement;
};

// Signs the announcement event (kind 38340, d = kAnnouncementD, expiration = now + ttl_seconds, a "model" tag
// per model, readable without the content; relays index only single-letter tags, so subscribers filter on
// kind and "d" or "t" and match models themselves). Errors: kInvalidInput naming the field (the
// announcement is validated first), kLimitExceeded above kMaxAnnouncementBytes.
Result<nostr::Event> make_announcement(const Announcement& a, const nostr::Keypair& provider, int64_t now,
                                       int64_t ttl_seconds);
// Verifies and parses one: signature, kind, d tag, "v" tag, content, and that the "model" tags name exactly
// the announced models. Does not compare expires_at with the time: the caller knows "now".
// Errors: kInvalidInput naming the field or the check that failed; kInvalidId / kInvalidSignature from
// nostr::verify_event; kUnsupported for an unknown version (tag or content); kLimitExceeded for the size.
Result<ProviderAnnouncement> parse_announcement(const nostr::Event& event);

// ---- Quote requests (public) ----

struct QuoteRequest {
  std::string quote_id;  // the consumer's id for this round of quotes
  std::string model;
  uint32_t input_tokens = 0;  // estimate
  uint32_t max_tokens = 0;
  uint64_t max_cost_msat = 0;       // 0: no cap
  std::string priority = "medium";  // parsed canonically ("normal" read as "medium")
  int64_t deadline = 0;             // unix seconds; 0: none

  bool operator==(const QuoteRequest&) const = default;
};

// Signs the quote request (kind 8341, tags t = "infernet", model, v = "1"). Errors: kInvalidInput naming the
// field.
Result<nostr::Event> make_quote_request(const QuoteRequest& q, const nostr::Keypair& consumer, int64_t now);
// Verifies and parses one (signature, kind, "v" tag, content, the model tag matching the content); the
// consumer is event.pubkey. Errors as for parse_announcement.
Result<QuoteRequest> parse_quote_request(const nostr::Event& event);

// ---- Job messages (encrypted to the counterpart) ----

struct JobRequest {
  std::string job_id;    // the consumer's id of the job (stable across attempts)
  uint32_t attempt = 1;  // 1 for the first provider, 2 after the first reassignment, ...
  std::string model;
  std::string prompt;                 // a raw prompt, or
  std::vector<ChatMessage> messages;  // a conversation (the provider applies the model's chat template)
  uint32_t max_tokens = 256;
  SamplingParams sampling;     // on the wire as flat fields: temperature, top_k, ..., seed, stop
  bool deterministic = false;  // run as the model's announced `determinism` pins, for reproducible text
  // 0: no cap. A hard cap: the provider ends the output before the next token would make the charge exceed
  // it (finish_reason "budget") and never charges more.
  uint64_t max_cost_msat = 0;
  std::string priority = "medium";  // parsed canonically ("normal" read as "medium")
  int64_t deadline = 0;             // finish by: unix seconds; 0: none
  int64_t start_by = 0;             // the job must start (be accepted) by then: unix seconds; 0: none
  std::string quote_id;             // set when answering an offer
  std::string resume_text;  // on reassignment: output already delivered, to be continued, not repeated

  bool operator==(const JobRequest&) const = default;
};

enum class JobStatusCode { kAccepted, kRejected, kRunning };

// "accepted", "rejected", "running" and back; the parse error names the bad value.
const char* to_string(JobStatusCode code);
Result<JobStatusCode> parse_job_status_code(std::string_view s);

struct JobStatus {
  std::string job_id;
  uint32_t attempt = 1;
  JobStatusCode status = JobStatusCode::kAccepted;
  // For kRejected: a code ("busy", "unknown-model", "price-too-low", "invalid", "deadline") and a sentence.
  std::string reason_code;
  std::string reason;
  uint32_t retry_after_seconds = 0;  // for "busy"
  uint32_t queue_position = 0;       // for kAccepted: jobs ahead of this one

  bool operator==(const JobStatus&) const = default;
};

struct JobProgress {
  std::string job_id;
  uint32_t attempt = 1;
  uint64_t seq = 0;     // 1, 2, ... per attempt; the text of chunk n follows chunk n-1
  std::string text;     // the new output since the previous chunk
  uint32_t tokens = 0;  // output tokens so far
  double fraction = 0;  // 0..1, an estimate

  bool operator==(const JobProgress&) const = default;
};

struct Usage {
  uint32_t input_tokens = 0;
  uint32_t output_tokens = 0;

  bool operator==(const Usage&) const = default;
};

// Why an output ended: "stop" (end of text or a stop sequence), "length" (max_tokens or the context),
// "budget" (the next token would have made the charge exceed max_cost_msat).

struct JobResult {
  std::string job_id;
  uint32_t attempt = 1;
  bool ok = true;
  std::string output;      // (ok) this attempt's output, which follows the request's resume_text
  std::string error_code;  // (not ok) "engine", "canceled", "provider-restarted", ...
  std::string error;
  Usage usage;
  std::string finish_reason;  // (ok) "stop", "length" or "budget"; "" from providers that do not say
  uint64_t cost_msat = 0;
  double seconds = 0;  // engine time

  bool operator==(const JobResult&) const = default;
};

struct JobCancel {
  std::string job_id;
  uint32_t attempt = 1;
  std::string reason;

  bool operator==(const JobCancel&) const = default;
};

struct JobReceipt {
  std::string job_id;
  uint32_t attempt = 1;
  uint64_t cost_msat = 0;
  std::string result_event_id;  // hex id of the kJobResult event being acknowledged

  bool operator==(const JobReceipt&) const = default;
};

struct Offer {
  std::string quote_id;
  std::string model;
  uint64_t price_msat = 0;  // estimated total for the quoted job
  uint32_t eta_ms = 0;      // estimated time until the job would start
  uint32_t queue_position = 0;
  int64_t expires_at = 0;  // unix seconds

  bool operator==(const Offer&) const = default;
};

// Reserving slots with a provider for a window of whole hours.
struct ReservationRequest {
  std::string reservation_id;  // the consumer's id
  uint32_t slots = 1;          // 1..max_slots of the provider's terms
  uint32_t hours = 1;          // 1..max_hours
  int64_t start = 0;           // unix seconds; 0: from when the provider accepts

  bool operator==(const ReservationRequest&) const = default;
};

struct ReservationAnswer {
  std::string reservation_id;
  bool accepted = false;
  // Refused: "no-reservations", "too-many-slots", "too-long", "full" (the provider's reserved slots are
  // taken for part of that window) or "invalid", with a sentence.
  std::string reason_code;
  std::string reason;
  uint32_t slots = 0;             // (accepted) what is held
  int64_t start = 0;              // (accepted) unix seconds
  int64_t end = 0;                // (accepted) unix seconds, start + hours * 3600
  uint32_t discount_percent = 0;  // (accepted) off the list price for jobs in these slots

  bool operator==(const ReservationAnswer&) const = default;
};

// Counting a job's input with the model's own tokenizer before the job is submitted (an estimate's input
// tokens, docs/market.md "Estimates"). Ephemeral: a count nobody is waiting for any more is worth nothing.
struct TokenCountRequest {
  std::string request_id;  // the consumer's id, echoed in the answer
  std::string model;
  std::string prompt;                 // a raw prompt, or
  std::vector<ChatMessage> messages;  // a conversation, counted after the model's chat template

  bool operator==(const TokenCountRequest&) const = default;
};

struct TokenCountAnswer {
  std::string request_id;
  bool ok = false;
  uint32_t input_tokens = 0;  // (ok) as a job of this input would count its usage.input_tokens
  // Not ok: "unknown-model", "invalid-input" (e.g. longer than the context), "unsupported" (the engine
  // cannot count before running) or "busy", with a sentence.
  std::string error_code;
  std::string error;

  bool operator==(const TokenCountAnswer&) const = default;
};

using JobMessage = std::variant<JobRequest, JobStatus, JobProgress, JobResult, JobCancel, JobReceipt, Offer,
                                ReservationRequest, ReservationAnswer, TokenCountRequest, TokenCountAnswer>;

// The kind a message travels as.
uint32_t kind_of(const JobMessage& m);

// Encrypts `m` to `recipient` and signs it as `sender`. The message is validated first (the same rules
// open() applies, plus UTF-8 in every string), so what we send is what a receiver accepts.
// Errors: kInvalidInput naming the field; kLimitExceeded when the content JSON passes kMaxContentBytes.
// The NIP-44 conversation key comes from conversation_key_cache() (protocol/conversation_key_cache.hpp).
Result<nostr::Event> seal(const JobMessage& m, const nostr::Keypair& sender,
                          const nostr::PublicKey& recipient, int64_t now);

struct Opened {
  JobMessage message;
  nostr::PublicKey sender;
  nostr::EventId event_id{};
  int64_t created_at = 0;
};

// Verifies, checks the recipient and kind, decrypts and validates. The cheap checks (kind, recipient) come
// before the signature and the decryption, so mail for someone else costs next to nothing.
// Errors, each message naming the problem: kInvalidInput (not a job kind, not addressed to us, bad field or
// JSON), kInvalidId / kInvalidSignature (from nostr::verify_event), kDecryptFailed (not encrypted to us, or
// tampered), kLimitExceeded (content too large), kUnsupported (unknown version "v", unknown NIP-44 version).
//
// `signature_verified`: the caller has already checked the event's id and signature (relay::RelayPool
// delivers only events it verified), so open() does not repeat the ~58 us check; everything else is still
// checked.
Result<Opened> open(const nostr::Event& event, const nostr::Keypair& recipient,
                    bool signature_verified = false);

// Content JSON <-> message, without encryption (what seal/open encrypt); exposed for tests and docs.
// to_content does not validate (seal does); from_content parses, checks the version and validates.
// from_content errors: kInvalidInput naming the field ("attempt: must be an integer from 1 to 4294967295",
// "job_id: missing"), kUnsupported for an unknown "v", kLimitExceeded above kMaxContentBytes.
std::string to_content(const JobMessage& m);
Result<JobMessage> from_content(uint32_t kind, std::string_view json);

// The rules from_content applies after parsing, for messages built in memory. Also checks that every string
// is valid UTF-8 (parsed JSON always is). Errors: kInvalidInput naming the field.
Status validate(const JobMessage& m);
Status validate(const Announcement& a);
Status validate(const QuoteRequest& q);

// The public contents (what make_announcement / make_quote_request put in the event), for tests and docs.
std::string to_content(const Announcement& a);
std::string to_content(const QuoteRequest& q);

}  // namespace infernet::protocol
