#include "api/openai.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/api_error.hpp"
#include "api/job_json.hpp"
#include "api/openai_request.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;
using consumer::ConsumerNode;
using consumer::JobEvent;
using consumer::JobState;

// OpenAI's error "type" for a status.
const char* error_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "invalid_request_error";
    case 429:
      return "rate_limit_error";
    default:
      return status < 500 ? "invalid_request_error" : "server_error";
  }
}

json::object error_object(int status, std::string_view code, std::string_view message,
                          std::string_view param) {
  json::object e{{"message", json_safe(message)}, {"type", error_type(status)}, {"code", code}};
  e["param"] = param.empty() ? json::value(nullptr) : json::value(param);
  return e;
}

net::HttpResponse openai_error(int status, std::string_view code, std::string_view message,
                               std::string_view param = {}) {
  return net::json_response(
      status, json::serialize(json::object{{"error", error_object(status, code, message, param)}}));
}

net::HttpResponse openai_error(const Error& error) {
  if (is_budget_refusal(error)) return openai_error(402, "budget_exceeded", error.message, "");
  const int status = net::http_status_for(error.code);
  return openai_error(status, error_code_name(error.code), error.message,
                      error.code == ErrorCode::kInvalidInput ? field_of(error.message) : "");
}

json::object model_object(const consumer::ModelSummary& m) {
  return json::object{{"id", json_safe(m.name)},
                      {"object", "model"},
                      {"created", 0},
                      {"owned_by", "infernet"},
                      {"providers", m.providers.size()},
                      {"min_price_per_1k_output_msat", m.min_price_per_1k_output_msat}};
}

// How a final job answers: its state as an HTTP status and OpenAI error code.
struct FinalError {
  int status;
  const char* code;
};
FinalError final_error(JobState state, std::string_view last_error_code) {
  if (last_error_code == "invalid-input") return {400, "invalid_input"};
  switch (state) {
    case JobState::kExpired:
      return {504, "job_expired"};
    case JobState::kCanceled:
      return {409, "job_canceled"};
    default:
      return {502, "job_failed"};
  }
}

// Follows one job for one HTTP request and writes its answer. Events arrive on the consumer's threads, in
// order; the writer is thread-safe.
class Completion : public std::enable_shared_from_this<Completion> {
 public:
  Completion(ConsumerNode& consumer, Defer defer, CompletionKind kind, const CompletionRequest& request,
             consumer::JobRecord job, int64_t created)
      : consumer_(consumer),
        defer_(std::move(defer)),
        kind_(kind),
        stream_(request.stream),
        include_usage_(request.include_usage),
        job_(std::move(job)),
        created_(created),
        id_((kind == CompletionKind::kChat ? "chatcmpl-" : "cmpl-") + job_.id) {}

  void start(std::shared_ptr<net::HttpBodyWriter> writer) {
    writer_ = std::move(writer);
    auto self = shared_from_this();
    writer_->on_end([self] { self->on_end(); });
    auto handle = consumer_.watch(job_.id, 0, [self](const JobEvent& event) { self->on_event(event); });
    std::lock_guard lock(mu_);
    if (!handle) {
      writer_->respond(openai_error(handle.error()));
      done_ = true;
      return;
    }
    watch_ = *handle;
    if (done_) release_watch_locked();
  }

 private:
  void on_event(const JobEvent& event) {
    std::lock_guard lock(mu_);
    if (done_) return;
    json::value data = event_data(event);
    const json::object* d = data.if_object();
    if (d == nullptr) return;
    if (event.type == "progress") {
      const json::value* text = d->if_contains("text");
      if (text != nullptr && text->is_string()) add_text(std::string(text->get_string()));
    } else if (event.type == "result") {
      read_usage(*d);
    } else if (event.type == "error") {
      if (const json::value* code = d->if_contains("code"); code && code->is_string())
        last_error_code_ = std::string(code->get_string());
      if (const json::value* message = d->if_contains("message"); message && message->is_string())
        last_error_ = std::string(message->get_string());
    } else if (event.type == "state") {
      const json::value* state = d->if_contains("state");
      if (state == nullptr || !state->is_string()) return;
      auto parsed = consumer::parse_job_state(std::string(state->get_string()));
      if (!parsed || !consumer::is_final(*parsed)) return;
      std::string reason;
      if (const json::value* r = d->if_contains("reason"); r && r->is_string())
        reason = std::string(r->get_string());
      finish(*parsed, reason);
    }
  }

  void read_usage(const json::object& d) {
    auto count = [&](const char* key) -> uint64_t {
      const json::value* v = d.if_contains(key);
      return v && v->is_number() ? v->to_number<uint64_t>() : 0;
    };
    input_tokens_ = count("input_tokens");
    output_tokens_ = count("output_tokens");
    cost_msat_ = count("cost_msat");
    if (const json::value* p = d.if_contains("provider"); p && p->is_string())
      provider_ = std::string(p->get_string());
    if (const json::value* f = d.if_contains("finish_reason"); f && f->is_string())
      finish_reason_ = std::string(f->get_string());
  }

  void add_text(const std::string& text) {
    if (text.empty()) return;
    if (!stream_) {
      output_ += text;
      return;
    }
    if (!sent_role_ && kind_ == CompletionKind::kChat) {
      sent_role_ = true;
      json::object delta{{"role", "assistant"}, {"content", ""}};
      send_chunk(std::move(delta), nullptr);
    }
    if (kind_ == CompletionKind::kChat) {
      send_chunk(json::object{{"content", json_safe(text)}}, nullptr);
    } else {
      send_chunk(json::value(json_safe(text)), nullptr);
    }
  }

  // One SSE event with one choice: a chat delta object, or a completion's text.
  void send_chunk(json::value piece, json::value finish_reason) {
    json::object choice{{"index", 0}};
    if (kind_ == CompletionKind::kChat) {
      choice["delta"] = std::move(piece);
    } else {
      choice["text"] = std::move(piece);
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = std::move(finish_reason);
    json::object chunk =
        envelope(kind_ == CompletionKind::kChat ? "chat.completion.chunk" : "text_completion");
    chunk["choices"] = json::array{std::move(choice)};
    if (include_usage_) chunk["usage"] = nullptr;
    sent_any_ = true;
    writer_->write("data: " + json::serialize(chunk) + "\n\n");
  }

  json::object envelope(const char* object) const {
    return json::object{{"id", id_},
                        {"object", object},
                        {"created", created_},
                        {"model", json_safe(job_.spec.model)},
                        {"system_fingerprint", nullptr}};
  }

  json::object usage() const {
    return json::object{{"prompt_tokens", input_tokens_},
                        {"completion_tokens", output_tokens_},
                        {"total_tokens", input_tokens_ + output_tokens_}};
  }

  std::string finish_reason() const {
    if (!finish_reason_.empty()) return finish_reason_;
    return output_tokens_ >= job_.spec.max_tokens ? "length" : "stop";
  }

  // Infernet's own facts about the answer, beside OpenAI's fields.
  json::object infernet() const {
    return json::object{{"job_id", job_.id}, {"provider", provider_}, {"cost_msat", cost_msat_}};
  }

  void finish(JobState state, const std::string& reason) {
    done_ = true;
    release_watch_locked();
    if (state != JobState::kCompleted) {
      FinalError e = final_error(state, last_error_code_);
      std::string message = "job " + job_.id + " " + consumer::to_string(state);
      const std::string& why = !reason.empty() ? reason : last_error_;
      if (!why.empty()) message += ": " + why;
      if (!sent_any_ && writer_->respond(openai_error(e.status, e.code, message))) return;
      // Too late for a status: OpenAI's clients read an error event inside the stream.
      writer_->write(
          "data: " + json::serialize(json::object{{"error", error_object(e.status, e.code, message, "")}}) +
          "\n\n");
      writer_->finish();
      return;
    }
    if (stream_) {
      if (!sent_role_ && kind_ == CompletionKind::kChat) {
        sent_role_ = true;
        send_chunk(json::object{{"role", "assistant"}, {"content", ""}}, nullptr);
      }
      send_chunk(kind_ == CompletionKind::kChat ? json::value(json::object{}) : json::value(""),
                 json::value(finish_reason()));
      if (include_usage_) {
        json::object last =
            envelope(kind_ == CompletionKind::kChat ? "chat.completion.chunk" : "text_completion");
        last["choices"] = json::array{};
        last["usage"] = usage();
        last["infernet"] = infernet();
        writer_->write("data: " + json::serialize(last) + "\n\n");
      }
      writer_->write("data: [DONE]\n\n");
      writer_->finish();
      return;
    }
    json::object choice{{"index", 0}};
    if (kind_ == CompletionKind::kChat) {
      choice["message"] =
          json::object{{"role", "assistant"}, {"content", json_safe(output_)}, {"refusal", nullptr}};
    } else {
      choice["text"] = json_safe(output_);
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = finish_reason();
    json::object answer = envelope(kind_ == CompletionKind::kChat ? "chat.completion" : "text_completion");
    answer["choices"] = json::array{std::move(choice)};
    answer["usage"] = usage();
    answer["infernet"] = infernet();
    net::HttpResponse response = net::json_response(200, json::serialize(answer));
    response.headers.emplace_back("X-Infernet-Job-Id", job_.id);
    writer_->respond(std::move(response));
  }

  // The HTTP exchange is over: answered, or the client left. A client that left before the answer does not
  // want the job any more; cancelling it stops the provider and the spending.
  // It may run inside a writer call made under mu_ (the session can end there), so it only defers.
  void on_end() {
    defer_([self = shared_from_this()] {
      bool cancel = false;
      {
        std::lock_guard lock(self->mu_);
        cancel = !self->done_;
        self->done_ = true;
        self->release_watch_locked();
      }
      if (cancel) (void)self->consumer_.cancel(self->job_.id);
    });
  }

  // unwatch() may be called from a watch callback (consumer.hpp); it is deferred all the same, so no
  // consumer lock is taken while mu_ is held.
  void release_watch_locked() {
    if (watch_ == 0) return;
    defer_([self = shared_from_this(), handle = watch_] { self->consumer_.unwatch(handle); });
    watch_ = 0;
  }

  ConsumerNode& consumer_;
  const Defer defer_;
  const CompletionKind kind_;
  const bool stream_;
  const bool include_usage_;
  const consumer::JobRecord job_;
  const int64_t created_;
  const std::string id_;
  std::shared_ptr<net::HttpBodyWriter> writer_;
  std::mutex mu_;  // guards everything below
  uint64_t watch_ = 0;
  bool done_ = false;  // the answer is written (or the client left): later events change nothing
  bool sent_any_ = false;
  bool sent_role_ = false;
  std::string output_;  // the whole text, when not streaming
  uint64_t input_tokens_ = 0;
  uint64_t output_tokens_ = 0;
  uint64_t cost_msat_ = 0;
  std::string provider_;
  std::string finish_reason_;
  std::string last_error_code_;
  std::string last_error_;
};

net::HttpResponse method_not_allowed(const char* allow) {
  net::HttpResponse r = openai_error(405, "method_not_allowed", std::string("use ") + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

bool serves(ConsumerNode& consumer, const std::string& model) {
  for (const auto& m : consumer.models()) {
    if (m.name == model && !m.providers.empty()) return true;
  }
  return false;
}

net::HttpResponse complete(ConsumerNode& consumer, const Defer& defer, int64_t now, CompletionKind kind,
                           const net::HttpRequest& request) {
  auto parsed = parse_completion_request(kind, request.body);
  if (!parsed) return openai_error(parsed.error());
  // OpenAI's clients expect an unknown model to fail at once; a REST job would wait for a provider of it.
  if (!serves(consumer, parsed->spec.model) && parsed->spec.provider.empty()) {
    return openai_error(404, "model_not_found",
                        "no live provider serves model \"" + json_safe(parsed->spec.model.substr(0, 128)) +
                            "\" (GET /v1/models lists those that do)",
                        "model");
  }
  auto job = consumer.submit(parsed->spec);
  if (!job) return openai_error(job.error());
  auto completion = std::make_shared<Completion>(consumer, defer, kind, *parsed, *job, now);
  net::HttpResponse response;
  response.content_type = "text/event-stream";  // used only when streaming; respond() brings its own
  response.headers.emplace_back("X-Infernet-Job-Id", job->id);
  response.stream = [completion](std::shared_ptr<net::HttpBodyWriter> writer) {
    completion->start(std::move(writer));
  };
  return response;
}

}  // namespace

std::optional<net::HttpResponse> route_openai(ConsumerNode& consumer, const Defer& defer,
                                              const std::function<int64_t()>& now_seconds,
                                              const net::HttpRequest& request) {
  const std::string_view path = request.path();
  if (path != "/v1" && !path.starts_with("/v1/")) return std::nullopt;
  const int64_t now = now_seconds ? now_seconds()
                                  : std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (path == "/v1/models") {
    if (!get) return method_not_allowed("GET");
    json::array data;
    for (const auto& m : consumer.models())
      data.push_back(model_object(m));
    return net::json_response(200,
                              json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}}));
  }
  if (path.starts_with("/v1/models/")) {
    if (!get) return method_not_allowed("GET");
    const std::string_view id = path.substr(11);
    for (const auto& m : consumer.models()) {
      if (m.name == id) return net::json_response(200, json::serialize(model_object(m)));
    }
    return openai_error(404, "model_not_found",
                        "no live provider serves model \"" + json_safe(std::string(id).substr(0, 128)) + "\"",
                        "model");
  }
  if (path == "/v1/chat/completions" || path == "/v1/completions") {
    if (request.method != "POST") return method_not_allowed("POST");
    return complete(consumer, defer, now,
                    path == "/v1/completions" ? CompletionKind::kText : CompletionKind::kChat, request);
  }
  return openai_error(404, "not_found", "no such endpoint: " + json_safe(std::string(path).substr(0, 128)));
}

}  // namespace infernet::api
