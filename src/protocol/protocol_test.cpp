#include "protocol/protocol.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <cctype>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "nostr/nip44.hpp"
#include "protocol/conversation_key_cache.hpp"

namespace infernet::protocol {
namespace {

namespace json = boost::json;
using nostr::Event;
using nostr::Keypair;

constexpr int64_t kNow = 1'700'000'000;
const std::string kResultId(64, 'a');

JobRequest sample_request() {
  JobRequest m;
  m.job_id = "job-7f3a";
  m.attempt = 2;
  m.model = "tinyllama-q4";
  m.prompt = "Write a haiku about \"relays\".\nTabs\tand ünïcödé 🚀";
  m.max_tokens = 128;
  m.sampling.temperature = 0.7;
  m.sampling.seed = 18'446'744'073'709'551'615ULL;
  m.sampling.top_k = 40;
  m.sampling.top_p = 0.9;
  m.sampling.min_p = 0.05;
  m.sampling.repeat_penalty = 1.1;
  m.sampling.repeat_last_n = 128;
  m.sampling.stop = {"\n\n", "END"};
  m.max_cost_msat = 50'000;
  m.priority = "high";
  m.deadline = kNow + 600;
  m.quote_id = "q-1";
  m.resume_text = "Signed notes drift";
  return m;
}

// A conversation instead of a raw prompt, run deterministically.
JobRequest sample_chat_request() {
  JobRequest m;
  m.job_id = "job-chat";
  m.model = "tinyllama-q4";
  m.messages = {{"system", "Answer in one line."}, {"user", "What is a relay? 🚀"}, {"assistant", "A"}};
  m.max_tokens = 16;
  m.deterministic = true;
  return m;
}

JobStatus sample_status() {
  JobStatus m;
  m.job_id = "job-7f3a";
  m.attempt = 1;
  m.status = JobStatusCode::kRejected;
  m.reason_code = "busy";
  m.reason = "all 2 slots and 8 queue places are taken";
  m.retry_after_seconds = 30;
  return m;
}

JobProgress sample_progress() {
  return JobProgress{"job-7f3a", 3, 17, " tokens here", 42, 0.25};
}

JobResult sample_result() {
  JobResult m;
  m.job_id = "job-7f3a";
  m.attempt = 1;
  m.ok = true;
  m.output = "Signed notes drift\nacross relays";
  m.usage = {12, 34};
  m.finish_reason = "length";
  m.cost_msat = 1234;
  m.seconds = 0.5;
  return m;
}

JobResult sample_failed_result() {
  JobResult m;
  m.job_id = "job-1";
  m.ok = false;
  m.error_code = "engine";
  m.error = "out of memory";
  return m;
}

JobCancel sample_cancel() {
  return JobCancel{"job-7f3a", 2, "user canceled"};
}
JobReceipt sample_receipt() {
  return JobReceipt{"job-7f3a", 1, 1234, kResultId};
}
Offer sample_offer() {
  return Offer{"q-1", "tinyllama-q4", 900, 250, 3, kNow + 30};
}

std::vector<JobMessage> every_message() {
  return {sample_request(),
          sample_chat_request(),
          sample_status(),
          sample_progress(),
          sample_result(),
          sample_failed_result(),
          sample_cancel(),
          sample_receipt(),
          sample_offer(),
          ReservationRequest{"r-1", 2, 3, kNow + 60},
          ReservationAnswer{"r-1", true, "", "", 2, kNow, kNow + 3600, 20},
          TokenCountRequest{"c-1", "tinyllama-q4", "", {{"user", "count me"}}},
          TokenCountAnswer{"c-1", true, 12, "", ""}};
}

Announcement sample_announcement() {
  Announcement a;
  a.name = "gpu-box \"one\"";
  a.hardware = {"AMD EPYC 9654", 16, 131072, {{"NVIDIA H100 80GB HBM3", 81559}}};
  a.engines = {"fake", "llama"};
  a.models.push_back({"tinyllama-q4",
                      std::string(64, 'b'),
                      "llama",
                      1'100'000'000,
                      "q4_0",
                      2048,
                      "llama",
                      {"text-generation", "chat"},
                      "llama.cpp de3ff81 cpu; threads=2 ubatch=512 flash_attn=off; one sequence per decode"});
  a.models.push_back({"fake-echo", "", "fake", 0, "", 4096, "fake", {"text-generation"}});
  a.prices = {1000, 2000, 5, 10, {{"low", 80}, {"medium", 100}, {"high", 150}, {"urgent", 300}}};
  a.capacity = {2, 8, 1, 0};
  return a;
}

QuoteRequest sample_quote_request() {
  return QuoteRequest{"q-1", "tinyllama-q4", 40, 256, 5000, "low", kNow + 60};
}

// Signs a draft as `author`, for events the tests build by hand.
Event signed_event(uint32_t kind, nostr::Tags tags, std::string content, const Keypair& author) {
  nostr::EventDraft draft;
  draft.created_at = kNow;
  draft.kind = kind;
  draft.tags = std::move(tags);
  draft.content = std::move(content);
  return nostr::sign_event(std::move(draft), author);
}

// An event with `plaintext` as its content, encrypted from `from` to `to` and addressed to `to`.
Event encrypted_event(uint32_t kind, std::string_view plaintext, const Keypair& from, const Keypair& to) {
  auto payload = nostr::nip44::encrypt(plaintext, nostr::nip44::conversation_key(from, to.public_key()));
  EXPECT_TRUE(payload) << payload.error().to_string();
  return signed_event(kind, {{"p", to.public_key().hex()}}, payload ? *payload : "", from);
}

// The content JSON of `m` with `edit` applied to its object.
template <class Edit>
std::string edited_content(const JobMessage& m, Edit edit) {
  json::value v = json::parse(to_content(m));
  edit(v.as_object());
  return json::serialize(v);
}

std::string model_name(size_t i) {
  std::string name = "m";
  name += std::to_string(i);
  return name;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

class Sealing : public ::testing::Test {
 protected:
  Keypair alice = Keypair::generate();
  Keypair bob = Keypair::generate();
  Keypair carol = Keypair::generate();
};

// ---- round trips ----

TEST_F(Sealing, EveryMessageRoundTripsBetweenTwoKeys) {
  for (const JobMessage& m : every_message()) {
    SCOPED_TRACE(to_content(m));
    auto event = seal(m, alice, bob.public_key(), kNow);
    ASSERT_TRUE(event) << event.error().to_string();
    EXPECT_EQ(event->kind, kind_of(m));
    EXPECT_EQ(event->created_at, kNow);
    EXPECT_EQ(event->pubkey, alice.public_key().bytes());
    ASSERT_EQ(event->tags.size(), 1u);
    EXPECT_EQ(event->tags[0], (nostr::Tag{"p", bob.public_key().hex()}));
    EXPECT_TRUE(nostr::verify_event(*event));
    // Nothing of the message is readable outside the encryption. (Strings long enough that random base64
    // does not spell them by chance: "job" alone turns up about once in 200 sealings.)
    EXPECT_EQ(event->content.find("job_id"), std::string::npos);
    EXPECT_EQ(event->content.find("tinyllama"), std::string::npos);

    // Through the wire form too, as a relay would carry it.
    auto parsed = nostr::parse_event(nostr::to_json(*event));
    ASSERT_TRUE(parsed) << parsed.error().to_string();
    auto opened = open(*parsed, bob);
    ASSERT_TRUE(opened) << opened.error().to_string();
    EXPECT_EQ(opened->message, m);
    EXPECT_EQ(opened->sender, alice.public_key());
    EXPECT_EQ(opened->event_id, event->id);
    EXPECT_EQ(opened->created_at, kNow);
  }
}

TEST_F(Sealing, BothDirectionsUseTheSameConversation) {
  auto to_alice = seal(sample_status(), bob, alice.public_key(), kNow);
  ASSERT_TRUE(to_alice);
  auto opened = open(*to_alice, alice);
  ASSERT_TRUE(opened) << opened.error().to_string();
  EXPECT_EQ(std::get<JobStatus>(opened->message), sample_status());
}

TEST_F(Sealing, KindsAreTheSpecifiedOnes) {
  EXPECT_EQ(kind_of(sample_request()), 8340u);
  EXPECT_EQ(kind_of(sample_offer()), 8342u);
  EXPECT_EQ(kind_of(sample_status()), 8343u);
  EXPECT_EQ(kind_of(sample_result()), 8344u);
  EXPECT_EQ(kind_of(sample_cancel()), 8345u);
  EXPECT_EQ(kind_of(sample_receipt()), 8346u);
  EXPECT_EQ(kind_of(sample_progress()), 28340u);
  EXPECT_EQ(nostr::classify_kind(kJobProgress), nostr::KindClass::kEphemeral);
  EXPECT_EQ(nostr::classify_kind(kJobRequest), nostr::KindClass::kRegular);
  EXPECT_EQ(nostr::classify_kind(kProviderAnnouncement), nostr::KindClass::kAddressable);
  EXPECT_EQ(kind_of(ReservationRequest{"r", 1, 1, 0}), 8347u);
  EXPECT_EQ(kind_of(ReservationAnswer{}), 8348u);
  EXPECT_EQ(nostr::classify_kind(kTokenCountRequest), nostr::KindClass::kEphemeral);
  EXPECT_EQ(nostr::classify_kind(kTokenCountAnswer), nostr::KindClass::kEphemeral);
  EXPECT_EQ(kind_of(TokenCountRequest{}), 28341u);
  EXPECT_EQ(kind_of(TokenCountAnswer{}), 28342u);
  for (uint32_t k : {8340u, 8342u, 8343u, 8344u, 8345u, 8346u, 8347u, 8348u, 28340u, 28341u, 28342u})
    EXPECT_TRUE(is_job_kind(k)) << k;
  for (uint32_t k : {8341u, 38340u, 1u, 8349u, 5050u})
    EXPECT_FALSE(is_job_kind(k)) << k;
}

TEST(Content, ReservationMessagesRoundTripAndAreChecked) {
  const ReservationRequest request{"r-1", 2, 3, kNow + 60};
  auto back = from_content(kReservationRequest, to_content(JobMessage{request}));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<ReservationRequest>(*back), request);
  const ReservationAnswer yes{"r-1", true, "", "", 2, kNow, kNow + 3 * 3600, 20};
  auto yes_back = from_content(kReservationAnswer, to_content(JobMessage{yes}));
  ASSERT_TRUE(yes_back) << yes_back.error().to_string();
  EXPECT_EQ(std::get<ReservationAnswer>(*yes_back), yes);
  const ReservationAnswer no{"r-1", false, "full", "all reserved", 0, 0, 0, 0};
  auto no_back = from_content(kReservationAnswer, to_content(JobMessage{no}));
  ASSERT_TRUE(no_back) << no_back.error().to_string();
  EXPECT_EQ(std::get<ReservationAnswer>(*no_back), no);
  EXPECT_EQ(from_content(kReservationRequest, R"({"v":1,"reservation_id":"r","slots":0,"hours":1})")
                .error()
                .message,
            "slots: must be an integer from 1 to 1024");
  EXPECT_EQ(from_content(kReservationRequest, R"({"v":1,"reservation_id":"r","slots":1,"hours":9000})")
                .error()
                .message,
            "hours: must be an integer from 1 to 8760");
  EXPECT_EQ(
      from_content(kReservationAnswer, R"({"v":1,"reservation_id":"r","accepted":false})").error().message,
      "reason_code: must not be empty");
  EXPECT_FALSE(validate(JobMessage{ReservationAnswer{"r", true, "", "", 1, kNow, kNow, 0}}));
}

TEST(Content, TokenCountMessagesRoundTripAndAreChecked) {
  const TokenCountRequest raw{"c-1", "tiny", "Once upon a time", {}};
  auto raw_back = from_content(kTokenCountRequest, to_content(JobMessage{raw}));
  ASSERT_TRUE(raw_back) << raw_back.error().to_string();
  EXPECT_EQ(std::get<TokenCountRequest>(*raw_back), raw);
  const TokenCountRequest chat{"c-2", "tiny", "", {{"system", "Be brief."}, {"user", "Hi \"there\"\n"}}};
  auto chat_back = from_content(kTokenCountRequest, to_content(JobMessage{chat}));
  ASSERT_TRUE(chat_back) << chat_back.error().to_string();
  EXPECT_EQ(std::get<TokenCountRequest>(*chat_back), chat);
  const TokenCountAnswer counted{"c-1", true, 5, "", ""};
  auto counted_back = from_content(kTokenCountAnswer, to_content(JobMessage{counted}));
  ASSERT_TRUE(counted_back) << counted_back.error().to_string();
  EXPECT_EQ(std::get<TokenCountAnswer>(*counted_back), counted);
  const TokenCountAnswer refused{"c-2", false, 0, "unsupported", "the proxy engine counts only by running"};
  auto refused_back = from_content(kTokenCountAnswer, to_content(JobMessage{refused}));
  ASSERT_TRUE(refused_back) << refused_back.error().to_string();
  EXPECT_EQ(std::get<TokenCountAnswer>(*refused_back), refused);

  EXPECT_EQ(from_content(kTokenCountRequest, R"({"v":1,"request_id":"c","model":"m"})").error().message,
            "prompt: give either a prompt or messages");
  EXPECT_EQ(
      from_content(
          kTokenCountRequest,
          R"({"v":1,"request_id":"c","model":"m","prompt":"a","messages":[{"role":"user","content":"b"}]})")
          .error()
          .message,
      "prompt: give either a prompt or messages");
  EXPECT_EQ(from_content(kTokenCountRequest, R"({"v":1,"model":"m","prompt":"a"})").error().message,
            "request_id: missing");
  EXPECT_EQ(from_content(kTokenCountAnswer, R"({"v":1,"request_id":"c","ok":false})").error().message,
            "error_code: must not be empty");
  EXPECT_FALSE(validate(JobMessage{TokenCountRequest{"c", "m", std::string(kMaxPromptBytes + 1, 'a'), {}}}));
  EXPECT_FALSE(validate(JobMessage{TokenCountRequest{"c", "m", "bad \xff utf-8", {}}}));
}

TEST_F(Sealing, MaximumSizesWorkEndToEnd) {
  JobRequest request = sample_request();
  request.prompt.assign(kMaxPromptBytes, 'p');
  request.resume_text.assign(kMaxOutputBytes, 'r');
  JobResult result = sample_result();
  // Ordinary text: words and newlines (each newline escapes to two bytes).
  result.output.clear();
  while (result.output.size() + 6 <= kMaxOutputBytes)
    result.output += "token\n";
  result.output.resize(kMaxOutputBytes, 'x');

  for (const JobMessage& m : {JobMessage(request), JobMessage(result)}) {
    auto event = seal(m, alice, bob.public_key(), kNow);
    ASSERT_TRUE(event) << event.error().to_string();
    auto parsed = nostr::parse_event(nostr::to_json(*event));
    ASSERT_TRUE(parsed) << parsed.error().to_string();
    auto opened = open(*parsed, bob);
    ASSERT_TRUE(opened) << opened.error().to_string();
    EXPECT_EQ(opened->message, m);
  }
}

// ---- who may open ----

TEST_F(Sealing, AThirdKeyCannotOpen) {
  auto event = seal(sample_request(), alice, bob.public_key(), kNow);
  ASSERT_TRUE(event);
  auto opened = open(*event, carol);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(opened.error().message, "p tag: not addressed to us");

  // Re-addressed to carol by its author: carol passes the tag check but cannot decrypt.
  Event readdressed = signed_event(event->kind, {{"p", carol.public_key().hex()}}, event->content, alice);
  opened = open(readdressed, carol);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kDecryptFailed);
}

TEST_F(Sealing, ContentCopiedUnderAnotherAuthorDoesNotOpen) {
  auto event = seal(sample_request(), alice, bob.public_key(), kNow);
  ASSERT_TRUE(event);
  Event copied = signed_event(event->kind, event->tags, event->content, carol);
  auto opened = open(copied, bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kDecryptFailed);
}

TEST_F(Sealing, TamperedEventsAreRefused) {
  auto event = seal(sample_result(), alice, bob.public_key(), kNow);
  ASSERT_TRUE(event);

  Event content = *event;
  content.content[10] = content.content[10] == 'A' ? 'B' : 'A';
  auto opened = open(content, bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidId);

  Event sig = *event;
  sig.sig[5] ^= 0x01;
  opened = open(sig, bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidSignature);

  Event kind = *event;
  kind.kind = kJobCancel;
  opened = open(kind, bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidId);

  // A ciphertext altered and re-signed by its author still fails its MAC.
  Event resigned = *event;
  resigned.content[40] = resigned.content[40] == 'A' ? 'B' : 'A';
  opened = open(signed_event(resigned.kind, resigned.tags, resigned.content, alice), bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kDecryptFailed);
}

// With the signature already verified by the caller, open() skips that check only: decryption, the recipient
// and the content are still checked.
TEST_F(Sealing, AlreadyVerifiedEventsStillHaveEverythingElseChecked) {
  auto event = seal(sample_result(), alice, bob.public_key(), kNow);
  ASSERT_TRUE(event);
  auto opened = open(*event, bob, /*signature_verified=*/true);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(opened->message, JobMessage(sample_result()));
  EXPECT_EQ(opened->sender.hex(), alice.public_key().hex());

  EXPECT_FALSE(open(*event, carol, true));  // not addressed to carol
  Event copied = signed_event(event->kind, event->tags, event->content, carol);
  auto forged = open(copied, bob, true);
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().code, ErrorCode::kDecryptFailed);  // carol cannot speak as alice
}

TEST_F(Sealing, RecipientTagMustBeExactlyOurs) {
  auto event = seal(sample_cancel(), alice, bob.public_key(), kNow);
  ASSERT_TRUE(event);
  const std::string bob_hex = bob.public_key().hex();

  auto try_tags = [&](nostr::Tags tags) {
    return open(signed_event(kJobCancel, tags, event->content, alice), bob);
  };
  auto none = try_tags({});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "p tag: missing");
  auto two = try_tags({{"p", bob_hex}, {"p", carol.public_key().hex()}});
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().message, "p tag: more than one recipient");
  auto upper = bob_hex;
  for (char& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto shouted = try_tags({{"p", upper}});
  ASSERT_FALSE(shouted);
  EXPECT_EQ(shouted.error().message, "p tag: not addressed to us");
  auto empty = try_tags({{"p"}});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message, "p tag: missing");
  // Other tags do not matter.
  auto extra = try_tags({{"p", bob_hex}, {"expiration", "1900000000"}});
  EXPECT_TRUE(extra) << extra.error().to_string();
}

TEST_F(Sealing, PublicKindsAreNotJobMessages) {
  auto announcement = make_announcement(sample_announcement(), alice, kNow, 30);
  ASSERT_TRUE(announcement);
  auto opened = open(*announcement, bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message, "kind 38340 is not a job message");
  // A job kind whose content is the wrong message type fails on its fields.
  auto event = encrypted_event(kJobStatus, to_content(sample_cancel()), alice, bob);
  opened = open(event, bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message, "status: missing");
}

// ---- content schema ----

TEST(Content, EveryObjectCarriesTheVersionAndSnakeCaseFields) {
  for (const JobMessage& m : every_message()) {
    json::value v = json::parse(to_content(m));
    EXPECT_EQ(v.at("v"), 1) << v;
  }
  json::value request = json::parse(to_content(sample_request()));
  for (const char* field : {"job_id", "attempt", "model", "prompt", "max_tokens", "temperature", "seed",
                            "max_cost_msat", "priority", "deadline", "quote_id", "resume_text"}) {
    EXPECT_TRUE(request.as_object().contains(field)) << field;
  }
  EXPECT_EQ(request.at("seed").as_uint64(), 18'446'744'073'709'551'615ULL);
  EXPECT_EQ(json::parse(to_content(sample_status())).at("status"), "rejected");
  EXPECT_EQ(json::parse(to_content(sample_result())).at("usage").at("output_tokens"), 34);
}

TEST(Content, UnknownVersionIsRefused) {
  for (const JobMessage& m : every_message()) {
    for (json::value version : {json::value(2), json::value(0), json::value(-1)}) {
      auto r = from_content(kind_of(m), edited_content(m, [&](json::object& o) { o["v"] = version; }));
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
      EXPECT_TRUE(starts_with(r.error().message, "v: unknown version")) << r.error().message;
    }
    auto missing = from_content(kind_of(m), edited_content(m, [](json::object& o) { o.erase("v"); }));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "v: missing");
    auto text = from_content(kind_of(m), edited_content(m, [](json::object& o) { o["v"] = "1"; }));
    ASSERT_FALSE(text);
    EXPECT_EQ(text.error().message, "v: must be an integer");
  }
}

TEST_F(Sealing, UnknownVersionIsRefusedThroughOpen) {
  const std::string v2 = edited_content(sample_request(), [](json::object& o) { o["v"] = 2; });
  auto opened = open(encrypted_event(kJobRequest, v2, alice, bob), bob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnsupported);
}

TEST(Content, EachRequiredFieldMissingIsNamed) {
  struct Case {
    JobMessage message;
    std::vector<const char*> required;
  };
  const std::vector<Case> cases = {
      {sample_request(), {"job_id", "attempt", "model", "max_tokens"}},
      {sample_status(), {"job_id", "attempt", "status"}},
      {sample_progress(), {"job_id", "attempt", "seq", "text"}},
      {sample_result(), {"job_id", "attempt", "ok"}},
      {sample_cancel(), {"job_id", "attempt"}},
      {sample_receipt(), {"job_id", "attempt", "cost_msat", "result_event_id"}},
      {sample_offer(), {"quote_id", "model", "price_msat", "expires_at"}},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(from_content(kind_of(c.message), to_content(c.message)));
    for (const char* field : c.required) {
      auto r = from_content(kind_of(c.message),
                            edited_content(c.message, [&](json::object& o) { ASSERT_TRUE(o.erase(field)); }));
      ASSERT_FALSE(r) << field;
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
      EXPECT_EQ(r.error().message, std::string(field) + ": missing");
    }
  }
  // A request needs a prompt or messages, and not both.
  auto no_prompt =
      from_content(kJobRequest, edited_content(sample_request(), [](json::object& o) { o.erase("prompt"); }));
  ASSERT_FALSE(no_prompt);
  EXPECT_EQ(no_prompt.error().message, "prompt: give either a prompt or messages");
  auto both = from_content(kJobRequest, edited_content(sample_chat_request(), [](json::object& o) {
                             o["prompt"] = "and a prompt";
                           }));
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().message, "prompt: give either a prompt or messages");
  // Fields required only in some states.
  auto rejected = from_content(
      kJobStatus, edited_content(sample_status(), [](json::object& o) { o.erase("reason_code"); }));
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().message, "reason_code: must not be empty");
  auto failed = from_content(
      kJobResult, edited_content(sample_failed_result(), [](json::object& o) { o.erase("error_code"); }));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "error_code: must not be empty");
}

TEST(Content, NormalIsReadAsMediumEverywhere) {
  auto r = from_content(
      kJobRequest,
      R"({"v":1,"job_id":"j","attempt":1,"model":"m","prompt":"hi","max_tokens":5,"priority":"normal"})");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(std::get<JobRequest>(*r).priority, "medium");
  for (const char* p : {"low", "medium", "high", "urgent"}) {
    JobRequest m = std::get<JobRequest>(*r);
    m.priority = p;
    auto back = from_content(kJobRequest, to_content(JobMessage{m}));
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(std::get<JobRequest>(*back).priority, p);
  }
  EXPECT_EQ(canonical_priority("normal"), "medium");
  EXPECT_EQ(canonical_priority("urgent"), "urgent");
  EXPECT_EQ(canonical_priority("Urgent"), "");
  EXPECT_LT(priority_rank("urgent"), priority_rank("high"));
  EXPECT_LT(priority_rank("high"), priority_rank("normal"));
  EXPECT_EQ(priority_rank("normal"), priority_rank("medium"));
  EXPECT_LT(priority_rank("medium"), priority_rank("low"));
}

TEST(Content, OptionalFieldsTakeTheirDefaults) {
  auto r = from_content(kJobRequest,
                        R"({"v":1,"job_id":"j","attempt":1,"model":"m","prompt":"hi","max_tokens":5})");
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& m = std::get<JobRequest>(*r);
  EXPECT_EQ(m.priority, "medium");
  EXPECT_EQ(m.sampling, SamplingParams{});
  EXPECT_TRUE(m.messages.empty());
  EXPECT_FALSE(m.deterministic);
  EXPECT_EQ(m.deadline, 0);
  EXPECT_EQ(m.start_by, 0);
  EXPECT_EQ(m.quote_id, "");
}

TEST(Content, StartByRoundTripsAndIsChecked) {
  JobRequest m = sample_request();
  m.start_by = kNow + 60;
  auto r = from_content(kJobRequest, to_content(JobMessage{m}));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(std::get<JobRequest>(*r).start_by, kNow + 60);
  auto negative = from_content(
      kJobRequest,
      R"({"v":1,"job_id":"j","attempt":1,"model":"m","prompt":"hi","max_tokens":5,"start_by":-1})");
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().message.find("start_by"), std::string::npos) << negative.error().message;
}

TEST(Content, UnknownFieldsAreIgnored) {
  for (const JobMessage& m : every_message()) {
    auto r = from_content(kind_of(m), edited_content(m, [](json::object& o) {
                            o["future_field"] = json::object{{"nested", json::array{1, 2}}};
                            o["x"] = nullptr;
                          }));
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(*r, m);
  }
}

TEST(Content, WrongTypesAreNamed) {
  struct Case {
    JobMessage message;
    const char* field;
    json::value value;
    const char* error;
  };
  const std::vector<Case> cases = {
      {sample_request(), "job_id", json::value(7), "job_id: must be a string"},
      {sample_request(), "attempt", json::value("1"), "attempt: must be an integer from 0 to 4294967295"},
      {sample_request(), "attempt", json::value(1.5), "attempt: must be an integer from 0 to 4294967295"},
      {sample_request(), "attempt", json::value(-1), "attempt: must be an integer from 0 to 4294967295"},
      {sample_request(), "attempt", json::value(4294967296ULL),
       "attempt: must be an integer from 0 to 4294967295"},
      {sample_request(), "temperature", json::value("hot"), "temperature: must be a number"},
      {sample_request(), "deadline", json::value(true),
       "deadline: must be an integer from -9223372036854775808 to 9223372036854775807"},
      {sample_result(), "ok", json::value(1), "ok: must be true or false"},
      {sample_result(), "usage", json::value(3), "usage: must be an object"},
      {sample_status(), "status", json::value("done"), "status: must be accepted, rejected or running"},
      {sample_progress(), "text", json::value(nullptr), "text: must be a string"},
  };
  for (const Case& c : cases) {
    auto r = from_content(kind_of(c.message),
                          edited_content(c.message, [&](json::object& o) { o[c.field] = c.value; }));
    ASSERT_FALSE(r) << c.field;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_EQ(r.error().message, c.error);
  }
  auto nested = from_content(kJobResult, edited_content(sample_result(), [](json::object& o) {
                               o["usage"] = json::object{{"input_tokens", "many"}};
                             }));
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().message, "usage.input_tokens: must be an integer from 0 to 4294967295");
  // An integral double is an integer (JSON has one number type).
  auto integral = from_content(kJobRequest,
                               edited_content(sample_request(), [](json::object& o) { o["attempt"] = 3.0; }));
  ASSERT_TRUE(integral) << integral.error().to_string();
  EXPECT_EQ(std::get<JobRequest>(*integral).attempt, 3u);
}

TEST(Content, RangesAreChecked) {
  struct Case {
    JobMessage message;
    const char* field;
    json::value value;
    const char* error;
  };
  const std::vector<Case> cases = {
      {sample_request(), "attempt", json::value(0), "attempt: must be at least 1"},
      {sample_request(), "max_tokens", json::value(0), "max_tokens: must be an integer from 1 to 65536"},
      {sample_request(), "max_tokens", json::value(65537), "max_tokens: must be an integer from 1 to 65536"},
      {sample_request(), "temperature", json::value(2.01), "temperature: must be from 0 to 2"},
      {sample_request(), "temperature", json::value(-0.1), "temperature: must be from 0 to 2"},
      {sample_request(), "top_p", json::value(0), "top_p: must be greater than 0 and at most 1"},
      {sample_request(), "min_p", json::value(1), "min_p: must be at least 0 and less than 1"},
      {sample_request(), "repeat_penalty", json::value(0),
       "repeat_penalty: must be greater than 0 and at most 4"},
      {sample_request(), "top_k", json::value(100001), "top_k: must be from 0 to 100000"},
      {sample_request(), "repeat_last_n", json::value(9000), "repeat_last_n: must be from 0 to 8192"},
      {sample_request(), "stop", json::array{"a", ""}, "stop[1]: must be 1 to 64 bytes"},
      {sample_request(), "stop", json::array{"a", "b", "c", "d", "e"}, "stop: must have at most 4 entries"},
      {sample_chat_request(), "messages", json::array{json::object{{"role", "robot"}, {"content", "x"}}},
       "messages[0].role: must be system, user or assistant"},
      {sample_chat_request(), "messages", json::array{json::object{{"role", "user"}}},
       "messages[0].content: missing"},
      {sample_chat_request(), "messages", json::array{"text"}, "messages[0]: must be an object"},
      {sample_result(), "finish_reason", json::value("maybe"),
       "finish_reason: must be stop, length or budget"},
      {sample_request(), "priority", json::value("critical"),
       "priority: must be low, medium, high or urgent"},
      {sample_request(), "deadline", json::value(-5), "deadline: must not be negative"},
      {sample_request(), "prompt", json::value(""), "prompt: give either a prompt or messages"},
      {sample_request(), "job_id", json::value("has space"),
       "job_id: must be visible ASCII characters (no spaces or control characters)"},
      {sample_progress(), "fraction", json::value(1.5), "fraction: must be a number from 0 to 1"},
      {sample_progress(), "seq", json::value(0), "seq: must be at least 1"},
      {sample_receipt(), "result_event_id", json::value("ABC"),
       "result_event_id: must be 64 lowercase hex characters"},
      {sample_offer(), "expires_at", json::value(0), "expires_at: must be a positive unix time"},
      {sample_cancel(), "attempt", json::value(0), "attempt: must be at least 1"},
  };
  for (const Case& c : cases) {
    auto r = from_content(kind_of(c.message),
                          edited_content(c.message, [&](json::object& o) { o[c.field] = c.value; }));
    ASSERT_FALSE(r) << c.field;
    EXPECT_EQ(r.error().message, c.error);
  }
  // The bounds themselves are allowed.
  for (json::value t : {json::value(0), json::value(2), json::value(1.999)}) {
    EXPECT_TRUE(from_content(
        kJobRequest, edited_content(sample_request(), [&](json::object& o) { o["temperature"] = t; })));
  }
  EXPECT_TRUE(from_content(
      kJobRequest, edited_content(sample_request(), [](json::object& o) { o["max_tokens"] = 65536; })));
}

TEST(Content, OversizeStringsAreRefused) {
  struct Case {
    JobMessage message;
    const char* field;
    size_t limit;
  };
  const std::vector<Case> cases = {
      {sample_request(), "prompt", kMaxPromptBytes}, {sample_request(), "resume_text", kMaxOutputBytes},
      {sample_request(), "job_id", kMaxIdBytes},     {sample_request(), "model", kMaxIdBytes},
      {sample_request(), "quote_id", kMaxIdBytes},   {sample_progress(), "text", kMaxOutputBytes},
      {sample_result(), "output", kMaxOutputBytes},  {sample_status(), "reason", kMaxTextBytes},
      {sample_status(), "reason_code", kMaxIdBytes}, {sample_cancel(), "reason", kMaxTextBytes},
      {sample_offer(), "quote_id", kMaxIdBytes},
  };
  for (const Case& c : cases) {
    const std::string at_limit(c.limit, 'a');
    auto ok = from_content(kind_of(c.message),
                           edited_content(c.message, [&](json::object& o) { o[c.field] = at_limit; }));
    EXPECT_TRUE(ok) << c.field << ": " << (ok ? "" : ok.error().message);
    auto r = from_content(kind_of(c.message),
                          edited_content(c.message, [&](json::object& o) { o[c.field] = at_limit + "a"; }));
    ASSERT_FALSE(r) << c.field;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_TRUE(starts_with(r.error().message, std::string(c.field) + ": must be at most"))
        << r.error().message;
  }
}

TEST(Content, WholeContentIsBounded) {
  std::string huge = R"({"v":1,"job_id":"j","pad":")" + std::string(kMaxContentBytes, 'x') + "\"}";
  auto r = from_content(kJobCancel, huge);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kLimitExceeded);
  for (std::string_view bad : {"", "[]", "{", "{\"v\":1,}", "nonsense", "{\"v\":1} trailing"}) {
    auto b = from_content(kJobCancel, bad);
    ASSERT_FALSE(b) << bad;
    EXPECT_EQ(b.error().code, ErrorCode::kInvalidInput) << bad;
    EXPECT_TRUE(starts_with(b.error().message, "content: ")) << b.error().message;
  }
  auto kind = from_content(kQuoteRequest, to_content(sample_cancel()));
  ASSERT_FALSE(kind);
  EXPECT_EQ(kind.error().message, "kind 8341 is not a job message");
}

TEST_F(Sealing, SealValidatesWhatItSends) {
  JobRequest bad = sample_request();
  bad.attempt = 0;
  auto r = seal(bad, alice, bob.public_key(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "attempt: must be at least 1");

  bad = sample_request();
  bad.prompt = "caf\xc3";  // truncated UTF-8
  r = seal(bad, alice, bob.public_key(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "prompt: must be valid UTF-8");

  bad = sample_request();
  bad.prompt.assign(kMaxPromptBytes + 1, 'a');
  r = seal(bad, alice, bob.public_key(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "prompt: must be at most 262144 bytes, is 262145");

  JobProgress nan = sample_progress();
  nan.fraction = std::nan("");
  r = seal(nan, alice, bob.public_key(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "fraction: must be a number from 0 to 1");

  // Output full of control characters escapes to six bytes each: too big to seal, and said so.
  JobResult escaped = sample_result();
  escaped.output.assign(kMaxOutputBytes, '\x01');
  r = seal(escaped, alice, bob.public_key(), kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kLimitExceeded);
  EXPECT_TRUE(starts_with(r.error().message, "content: ")) << r.error().message;
}

// ---- conversation keys ----

TEST_F(Sealing, ConversationKeyCacheMatchesNip44AndStaysBounded) {
  ConversationKeyCache cache(3);
  const auto expected = nostr::nip44::conversation_key(alice, bob.public_key());
  EXPECT_EQ(cache.get(alice, bob.public_key()), expected);
  EXPECT_EQ(cache.get(alice, bob.public_key()), expected);
  EXPECT_EQ(cache.get(bob, alice.public_key()), expected);
  EXPECT_EQ(cache.size(), 2u);
  std::vector<Keypair> others;
  for (int i = 0; i < 5; ++i)
    others.push_back(Keypair::generate());
  for (const Keypair& k : others) {
    EXPECT_EQ(cache.get(alice, k.public_key()), nostr::nip44::conversation_key(alice, k.public_key()));
  }
  EXPECT_EQ(cache.size(), 3u);
  // An identity held in a second Keypair object shares entries; another identity does not.
  auto alice_again = Keypair::from_secret(alice.secret());
  ASSERT_TRUE(alice_again);
  EXPECT_EQ(cache.get(*alice_again, others.back().public_key()),
            nostr::nip44::conversation_key(alice, others.back().public_key()));
  EXPECT_NE(cache.get(carol, others.back().public_key()), cache.get(alice, others.back().public_key()));
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(Sealing, SealAndOpenFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        JobProgress p = sample_progress();
        p.seq = static_cast<uint64_t>(t * 1000 + i + 1);
        auto e = seal(p, t % 2 ? alice : bob, t % 2 ? bob.public_key() : alice.public_key(), kNow);
        if (!e) continue;
        auto o = open(*e, t % 2 ? bob : alice);
        if (o && std::get<JobProgress>(o->message) == p) ++opened;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(opened.load(), 200);
}

// ---- announcements ----

TEST_F(Sealing, AnnouncementRoundTrips) {
  const Announcement a = sample_announcement();
  auto event = make_announcement(a, alice, kNow, 30);
  ASSERT_TRUE(event) << event.error().to_string();
  EXPECT_EQ(event->kind, 38340u);
  const nostr::Tags expected_tags = {{"d", "infernet-provider"}, {"expiration", std::to_string(kNow + 30)},
                                     {"t", "infernet"},          {"model", "tinyllama-q4"},
                                     {"model", "fake-echo"},     {"v", "1"}};
  EXPECT_EQ(event->tags, expected_tags);
  EXPECT_EQ(json::parse(event->content).at("v"), 1);

  auto parsed = nostr::parse_event(nostr::to_json(*event));
  ASSERT_TRUE(parsed);
  auto p = parse_announcement(*parsed);
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->announcement, a);
  EXPECT_EQ(p->provider, alice.public_key());
  EXPECT_EQ(p->created_at, kNow);
  EXPECT_EQ(p->expires_at, kNow + 30);
}

TEST_F(Sealing, AnnouncementIsChecked) {
  auto event = make_announcement(sample_announcement(), alice, kNow, 30);
  ASSERT_TRUE(event);
  auto resigned = [&](const Event& e) { return signed_event(e.kind, e.tags, e.content, alice); };

  Event tampered = *event;
  tampered.content.back() = ' ';
  EXPECT_EQ(parse_announcement(tampered).error().code, ErrorCode::kInvalidId);

  Event kind = *event;
  kind.kind = 38341;
  EXPECT_EQ(parse_announcement(resigned(kind)).error().message, "kind: expected 38340, got 38341");

  Event d = *event;
  d.tags[0][1] = "other";
  EXPECT_EQ(parse_announcement(resigned(d)).error().message, "d tag: must be \"infernet-provider\"");

  Event version = *event;
  version.tags.back()[1] = "2";
  auto v2 = parse_announcement(resigned(version));
  ASSERT_FALSE(v2);
  EXPECT_EQ(v2.error().code, ErrorCode::kUnsupported);
  version.tags.pop_back();
  EXPECT_EQ(parse_announcement(resigned(version)).error().message, "v tag: missing");

  Event expiration = *event;
  expiration.tags[1][1] = "soon";
  EXPECT_EQ(parse_announcement(resigned(expiration)).error().message,
            "expiration tag: must be a unix time in seconds");
  expiration.tags.erase(expiration.tags.begin() + 1);
  auto no_expiration = parse_announcement(resigned(expiration));
  ASSERT_TRUE(no_expiration);
  EXPECT_EQ(no_expiration->expires_at, 0);

  Event tags = *event;
  tags.tags.erase(tags.tags.begin() + 3);
  EXPECT_EQ(parse_announcement(resigned(tags)).error().message,
            "model tags: must name exactly the announced models");

  auto content = [&](auto edit) {
    json::value v = json::parse(event->content);
    edit(v.as_object());
    Event e = *event;
    e.content = json::serialize(v);
    return parse_announcement(resigned(e));
  };
  EXPECT_EQ(content([](json::object& o) { o.erase("models"); }).error().message, "models: missing");
  EXPECT_EQ(content([](json::object& o) { o.erase("capacity"); }).error().message, "capacity: missing");
  EXPECT_EQ(content([](json::object& o) { o["v"] = 3; }).error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(
      content([](json::object& o) { o["models"].as_array()[1].as_object().erase("name"); }).error().message,
      "models[1].name: missing");
  EXPECT_EQ(content([](json::object& o) { o["models"].as_array()[0].as_object()["sha256"] = "xyz"; })
                .error()
                .message,
            "models[0].sha256: must be 64 lowercase hex characters");
  EXPECT_EQ(
      content([](json::object& o) { o["hardware"].as_object()["gpus"] = json::array{1}; }).error().message,
      "hardware.gpus[0]: must be an object");
  EXPECT_EQ(content([](json::object& o) {
              o["prices"].as_object()["priority_percent"] = json::object{{"critical", 200}};
            })
                .error()
                .message,
            "prices.priority_percent.critical: must be low, medium, high or urgent");
  EXPECT_EQ(content([](json::object& o) {
              o["prices"].as_object()["priority_percent"] = json::object{{"normal", 100}, {"medium", 90}};
            })
                .error()
                .message,
            "prices.priority_percent.medium: names the same priority as another entry (normal is medium)");
  EXPECT_EQ(content([](json::object& o) { o["models"].as_array()[1].as_object()["name"] = "tinyllama-q4"; })
                .error()
                .message,
            "models[1].name: duplicate model name");
  auto ignored = content([](json::object& o) { o["region"] = "eu"; });
  EXPECT_TRUE(ignored) << ignored.error().to_string();

  // Too many models: refused when making and when parsing.
  Announcement many = sample_announcement();
  many.models.clear();
  for (size_t i = 0; i <= kMaxModels; ++i)
    many.models.push_back({model_name(i)});
  auto made = make_announcement(many, alice, kNow, 30);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().message, "models: must have at most 256 entries");
  auto too_many = content([&](json::object& o) {
    json::array models;
    for (size_t i = 0; i <= kMaxModels; ++i)
      models.push_back(json::object{{"name", model_name(i)}});
    o["models"] = models;
  });
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().message, "models: must have at most 256 entries");

  EXPECT_EQ(make_announcement(sample_announcement(), alice, kNow, 0).error().message,
            "ttl_seconds: must be positive");
}

// ---- quote requests ----

TEST_F(Sealing, QuoteRequestRoundTripsAndIsChecked) {
  const QuoteRequest q = sample_quote_request();
  auto event = make_quote_request(q, bob, kNow);
  ASSERT_TRUE(event) << event.error().to_string();
  EXPECT_EQ(event->kind, 8341u);
  EXPECT_EQ(event->tags, (nostr::Tags{{"t", "infernet"}, {"model", "tinyllama-q4"}, {"v", "1"}}));
  auto parsed = parse_quote_request(*event);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(*parsed, q);

  Event tampered = *event;
  tampered.content[3] = 'x';
  EXPECT_FALSE(parse_quote_request(tampered));

  Event other_model =
      signed_event(kQuoteRequest, {{"t", "infernet"}, {"model", "other"}, {"v", "1"}}, event->content, bob);
  EXPECT_EQ(parse_quote_request(other_model).error().message, "model tag: must match the content's model");

  Event no_version = signed_event(kQuoteRequest, {{"model", "tinyllama-q4"}}, event->content, bob);
  EXPECT_EQ(parse_quote_request(no_version).error().message, "v tag: missing");

  Event missing =
      signed_event(kQuoteRequest, event->tags, R"({"v":1,"quote_id":"q","model":"tinyllama-q4"})", bob);
  EXPECT_EQ(parse_quote_request(missing).error().message, "max_tokens: missing");

  Event wrong_kind = signed_event(kJobRequest, event->tags, event->content, bob);
  EXPECT_EQ(parse_quote_request(wrong_kind).error().message, "kind: expected 8341, got 8340");

  QuoteRequest bad = q;
  bad.model = "";
  EXPECT_EQ(make_quote_request(bad, bob, kNow).error().message, "model: must not be empty");
}

}  // namespace
}  // namespace infernet::protocol
