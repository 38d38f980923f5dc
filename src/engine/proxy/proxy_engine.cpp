// THE PROXY ENGINE — forwards runs to an OpenAI-compatible server (see proxy_engine.hpp).
//
// Structure as the fake engine's: `slots` worker threads take runs from one bounded FIFO queue. A worker
// sends one streaming request per run and turns the server-sent events into on_piece calls as they arrive.
// Cancellation closes the connection (HttpClient::request_streaming's abort flag, polled every 10 ms): an
// HTTP server has no other way to hear "stop", and llama-server and vLLM both stop generating when the
// client goes away, so a canceled run frees the upstream's slot too.
#include "engine/proxy/proxy_engine.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/encoding.hpp"
#include "net/http_client.hpp"

namespace infernet::engine {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// Limits on what the upstream sends, beyond the client's max_response_bytes.
constexpr size_t kMaxModels = 1024;
constexpr size_t kMaxModelNameBytes = 256;
constexpr size_t kMaxModelListBytes = 8 << 20;
constexpr size_t kMaxEventBytes = 1 << 20;       // one server-sent event; a token's chunk is a few hundred
constexpr size_t kMaxErrorBodyBytes = 64 << 10;  // kept of an error answer
constexpr size_t kMaxErrorMessageBytes = 1024;   // of the upstream's message, in ours

Error upstream_error(ErrorCode code, std::string message) {
  return Error{code, "upstream: " + std::move(message)};
}

// The upstream's text made safe to put in our messages: valid UTF-8, no control characters, bounded.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxErrorMessageBytes)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  while (!out.empty() && !is_valid_utf8(out))  // a sequence cut by the bound
    out.pop_back();
  if (out.empty() && !text.empty()) return "(unprintable)";
  return text.size() > kMaxErrorMessageBytes ? out + "..." : out;
}

// A non-negative integer that fits in uint32, or nothing.
std::optional<uint32_t> as_count(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_uint64() && v->get_uint64() <= std::numeric_limits<uint32_t>::max())
    return static_cast<uint32_t>(v->get_uint64());
  if (v->is_int64() && v->get_int64() >= 0 && v->get_int64() <= std::numeric_limits<uint32_t>::max())
    return static_cast<uint32_t>(v->get_int64());
  return std::nullopt;
}

const json::value* member(const json::value& v, std::string_view name) {
  if (!v.is_object()) return nullptr;
  return v.as_object().if_contains(name);
}

// The message of an OpenAI-shaped error body ({"error":{"message":...}}; also {"error":"..."} and vLLM's
// older {"message":...}), or the body itself when it has none.
std::string error_message(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (!ec) {
    const json::value* error = member(doc, "error");
    if (error != nullptr && error->is_string()) return printable(error->get_string());
    const json::value* message = error != nullptr ? member(*error, "message") : member(doc, "message");
    if (message != nullptr && message->is_string()) return printable(message->get_string());
  }
  return body.empty() ? "(no message)" : printable(body);
}

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxModelNameBytes || !is_valid_utf8(name)) return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// GET /models answers {"object":"list","data":[{"id":"name",...},...]}. The context length is where each
// server puts it: llama-server's meta.n_ctx (the context of one of its slots, which is what a request
// gets), vLLM's max_model_len; others say nothing and it stays 0.
Result<std::vector<ModelDescription>> parse_model_list(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  const json::value* data = ec ? nullptr : member(doc, "data");
  if (data == nullptr || !data->is_array()) {
    return tl::unexpected(upstream_error(ErrorCode::kIo, "GET /models: not a model list ({\"data\":[...]})"));
  }
  std::vector<ModelDescription> out;
  for (const json::value& entry : data->as_array()) {
    const json::value* id = member(entry, "id");
    if (id == nullptr || !id->is_string() || !valid_model_name(id->get_string())) {
      spdlog::warn("proxy engine: skipping a model with a missing or unusable id in the upstream's list");
      continue;
    }
    if (out.size() == kMaxModels) {
      spdlog::warn("proxy engine: the upstream lists more than {} models; serving the first {}", kMaxModels,
                   kMaxModels);
      break;
    }
    ModelDescription model;
    model.name = std::string(id->get_string());
    const json::value* meta = member(entry, "meta");
    const json::value* n_ctx = meta != nullptr ? member(*meta, "n_ctx") : member(entry, "max_model_len");
    model.context_length = as_count(n_ctx).value_or(0);
    if (meta != nullptr) {
      const json::value* n_params = member(*meta, "n_params");
      if (n_params != nullptr && n_params->is_uint64()) model.parameters = n_params->get_uint64();
      if (n_params != nullptr && n_params->is_int64() && n_params->get_int64() > 0)
        model.parameters = static_cast<uint64_t>(n_params->get_int64());
    }
    model.capabilities = {"text-generation", "chat"};
    model.determinism = "";  // the upstream decides batching and threads; the proxy pins nothing
    out.push_back(std::move(model));
  }
  return out;
}

// The JSON body of a run's request: the OpenAI fields, then the sampler fields llama-server also takes
// under the same names (Ollama and vLLM ignore the ones they do not know).
//
// A resumed run (resume_text): a text completion continues after the prompt and the resumed text, with
// max_tokens less the resumed text's tokens as estimated by resumed_tokens(); the upstream's tokenizer is not
// ours to call. A chat has no way to hand the upstream a half-written answer, so it is generated again from
// the start and the first resume_text.size() bytes are not delivered (exact only when the upstream repeats
// itself: greedy or seeded, deterministic); docs/market-failover.md.
uint32_t resumed_tokens(const GenerateRequest& request) {
  return static_cast<uint32_t>((request.resume_text.size() + 3) / 4);
}

std::string request_body(const GenerateRequest& request) {
  const SamplingParams& s = request.sampling;
  json::object body;
  body["model"] = request.model;
  uint32_t max_tokens = request.max_tokens;
  if (request.messages.empty()) {
    body["prompt"] = request.prompt + request.resume_text;
    max_tokens = std::max<uint32_t>(1, max_tokens - std::min(max_tokens, resumed_tokens(request)));
  } else {
    json::array messages;
    for (const ChatMessage& m : request.messages)
      messages.push_back(json::object{{"role", m.role}, {"content", m.content}});
    body["messages"] = std::move(messages);
  }
  body["stream"] = true;
  body["stream_options"] = json::object{{"include_usage", true}};
  body["max_tokens"] = max_tokens;
  body["temperature"] = s.temperature;
  body["top_p"] = s.top_p;
  body["seed"] = s.seed;
  if (!s.stop.empty()) {
    json::array stop;
    for (const auto& seq : s.stop)
      stop.emplace_back(seq);
    body["stop"] = std::move(stop);
  }
  body["top_k"] = s.top_k;
  body["min_p"] = s.min_p;
  body["repeat_penalty"] = s.repeat_penalty;
  body["repeat_last_n"] = s.repeat_last_n;
  return json::serialize(body);
}

// Splits a text/event-stream into events (the WHATWG rules, minus the lone-CR line ending no OpenAI server
// uses): "data:" lines are joined with '\n', a blank line ends the event, comments and other fields are
// ignored.
class EventStream {
 public:
  // Feeds bytes; calls on_event(data) for each complete event. Stops at the first error from on_event, or
  // kIo when a line or an event is over kMaxEventBytes.
  template <class OnEvent>
  Status feed(std::string_view bytes, OnEvent&& on_event) {
    while (!bytes.empty()) {
      size_t nl = bytes.find('\n');
      if (nl == std::string_view::npos) {
        line_.append(bytes);
        if (line_.size() > kMaxEventBytes) return too_long();
        return {};
      }
      line_.append(bytes.substr(0, nl));
      bytes.remove_prefix(nl + 1);
      if (line_.size() > kMaxEventBytes) return too_long();
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (auto st = take_line(on_event); !st) return st;
      line_.clear();
    }
    return {};
  }

  // The end of the stream: an event not closed by a blank line still counts (a lenient reading).
  template <class OnEvent>
  Status finish(OnEvent&& on_event) {
    if (!line_.empty()) {
      if (auto st = take_line(on_event); !st) return st;
      line_.clear();
    }
    if (has_data_) return dispatch(on_event);
    return {};
  }

 private:
  static Status too_long() {
    return tl::unexpected(upstream_error(
        ErrorCode::kIo, "an event is longer than " + std::to_string(kMaxEventBytes) + " bytes"));
  }

  template <class OnEvent>
  Status take_line(OnEvent& on_event) {
    if (line_.empty()) return has_data_ ? dispatch(on_event) : Status{};
    if (line_.front() == ':') return {};  // a comment (keep-alive)
    std::string_view line(line_);
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field != "data") return {};  // event:, id:, retry: and unknown fields
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
    if (data_.size() > kMaxEventBytes) return too_long();
    return {};
  }

  template <class OnEvent>
  Status dispatch(OnEvent& on_event) {
    Status st = on_event(std::string_view(data_));
    data_.clear();
    has_data_ = false;
    return st;
  }

  std::string line_;
  std::string data_;
  bool has_data_ = false;
};

// One queued or running request.
struct Run {
  GenerateRequest request;
  GenerateCallbacks callbacks;
  Clock::time_point submitted;
  std::atomic<bool> abort{false};  // cancel() or stop(); read by the HTTP client while it waits
};

// What one run's stream has said so far.
struct StreamState {
  bool chat = false;
  bool done = false;  // "data: [DONE]"
  std::optional<FinishReason> finish;
  std::optional<uint32_t> input_tokens;
  std::optional<uint32_t> output_tokens;  // the upstream's own count, when it gives one
  uint32_t pieces = 0;                    // chunks with text
  size_t skip = 0;                        // bytes still to drop: a resumed chat, generated again
  std::optional<Clock::time_point> first_piece;
};

// Applies one event's JSON to `state` and hands its text to on_piece. Errors: kIo for anything that is not
// a completion chunk, and for an error event.
Status take_event(std::string_view data, StreamState& state, Run& run) {
  if (state.done) return {};
  if (data == "[DONE]") {
    state.done = true;
    return {};
  }
  boost::system::error_code ec;
  json::value doc = json::parse(data, ec);
  if (ec || !doc.is_object()) {
    return tl::unexpected(
        upstream_error(ErrorCode::kIo, "malformed event (not a JSON object): " + printable(data)));
  }
  if (const json::value* error = member(doc, "error"); error != nullptr && !error->is_null()) {
    return tl::unexpected(upstream_error(ErrorCode::kIo, error_message(data)));
  }
  std::string_view text;
  const json::value* choices = member(doc, "choices");
  if (choices != nullptr && !choices->is_null()) {
    if (!choices->is_array())
      return tl::unexpected(upstream_error(ErrorCode::kIo, "malformed event: choices"));
    if (!choices->as_array().empty()) {
      const json::value& choice = choices->as_array().front();
      if (!choice.is_object())
        return tl::unexpected(upstream_error(ErrorCode::kIo, "malformed event: choices"));
      // Chat: choices[0].delta.content; completions: choices[0].text. null or absent: no text in this chunk
      // (a role-only delta, the finish chunk).
      const json::value* delta = state.chat ? member(choice, "delta") : nullptr;
      const json::value* content =
          state.chat ? (delta ? member(*delta, "content") : nullptr) : member(choice, "text");
      if (content != nullptr && !content->is_null()) {
        if (!content->is_string()) {
          return tl::unexpected(upstream_error(ErrorCode::kIo, "malformed event: the text is not a string"));
        }
        text = content->get_string();
      }
      const json::value* finish = member(choice, "finish_reason");
      if (finish != nullptr && finish->is_string()) {
        // "length" is the only reason that is not the model's own end: "stop", "eos", "tool_calls",
        // "content_filter" all end the text early.
        state.finish = finish->get_string() == "length" ? FinishReason::kLength : FinishReason::kStop;
      } else if (finish != nullptr && !finish->is_null()) {
        return tl::unexpected(upstream_error(ErrorCode::kIo, "malformed event: finish_reason"));
      }
    }
  }
  if (const json::value* usage = member(doc, "usage"); usage != nullptr && !usage->is_null()) {
    auto prompt = as_count(member(*usage, "prompt_tokens"));
    auto completion = as_count(member(*usage, "completion_tokens"));
    if (!usage->is_object() || !prompt || !completion) {
      return tl::unexpected(upstream_error(ErrorCode::kIo, "malformed event: usage"));
    }
    state.input_tokens = prompt;
    state.output_tokens = completion;
  }
  if (state.skip > 0 && !text.empty()) {
    const size_t drop = std::min(state.skip, text.size());
    text.remove_prefix(drop);
    state.skip -= drop;
    if (text.empty()) return {};
  }
  if (!text.empty()) {
    ++state.pieces;
    if (!state.first_piece) state.first_piece = Clock::now();
    // A usage on the same chunk (vLLM's continuous usage stats) is an exact running count; otherwise each
    // chunk with text counts one token, which is what llama-server and Ollama send.
    uint32_t so_far = std::max(state.pieces, state.output_tokens.value_or(0));
    if (!run.abort && run.callbacks.on_piece) run.callbacks.on_piece(text, so_far);
  }
  return {};
}

class ProxyEngine final : public Engine {
 public:
  ProxyEngine(ProxyEngineOptions options, net::HttpClient client, std::vector<ModelDescription> models)
      : options_(std::move(options)), client_(std::move(client)), models_(std::move(models)) {
    const size_t slots = std::max<size_t>(1, options_.slots);
    workers_.reserve(slots);
    for (size_t i = 0; i < slots; ++i)
      workers_.emplace_back([this] { work(); });
  }
  ~ProxyEngine() override { stop(); }
  ProxyEngine(const ProxyEngine&) = delete;
  ProxyEngine& operator=(const ProxyEngine&) = delete;

  std::string name() const override { return "proxy"; }
  std::vector<ModelDescription> models() const override { return models_; }

  Status submit(GenerateRequest request, GenerateCallbacks callbacks) override {
    if (std::none_of(models_.begin(), models_.end(),
                     [&](const auto& m) { return m.name == request.model; })) {
      return make_error(ErrorCode::kInvalidInput,
                        "model: '" + request.model + "' is not served by this engine");
    }
    if (auto st = check_generation(request.prompt, request.messages, request.sampling, kMaxPromptBytes); !st)
      return st;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return make_error(ErrorCode::kIo, "engine: stopped");
      if (queue_.size() >= options_.queue_capacity) {
        return make_error(
            ErrorCode::kLimitExceeded,
            "engine: queue full (" + std::to_string(options_.queue_capacity) + " runs waiting)");
      }
      auto run = std::make_shared<Run>();
      run->request = std::move(request);
      run->callbacks = std::move(callbacks);
      run->submitted = Clock::now();
      queue_.push_back(std::move(run));
    }
    wake_.notify_one();
    return {};
  }

  // A queued run is finished here, on the caller's thread (as in the fake engine); a running one is told
  // through its abort flag and finishes on its worker once the connection is closed.
  void cancel(const std::string& id) override {
    std::vector<std::shared_ptr<Run>> dropped;
    {
      std::lock_guard lock(mu_);
      for (auto& run : running_) {
        if (run->request.id == id) run->abort = true;
      }
      auto keep = std::stable_partition(queue_.begin(), queue_.end(),
                                        [&](const std::shared_ptr<Run>& r) { return r->request.id != id; });
      dropped.assign(std::make_move_iterator(keep), std::make_move_iterator(queue_.end()));
      queue_.erase(keep, queue_.end());
    }
    for (auto& run : dropped)
      finish_canceled(*run);
  }

  void stop() override {
    std::deque<std::shared_ptr<Run>> dropped;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (auto& run : running_)
        run->abort = true;
      dropped.swap(queue_);
    }
    wake_.notify_all();
    for (auto& run : dropped)
      finish_canceled(*run);
    std::lock_guard join_lock(join_mu_);
    for (auto& t : workers_) {
      if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    }
  }

 private:
  static void finish_canceled(Run& run) {
    if (run.callbacks.on_done) run.callbacks.on_done(tl::unexpected(canceled_error()));
  }

  void work() {
    for (;;) {
      std::shared_ptr<Run> run;
      {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;  // stop() has taken the queue
        run = std::move(queue_.front());
        queue_.pop_front();
        running_.push_back(run);
      }
      Result<GenerateUsage> outcome = generate(*run);
      {
        std::lock_guard lock(mu_);
        running_.erase(std::find(running_.begin(), running_.end(), run));
      }
      // Once cancel() has returned for a running run, its end is "canceled" whatever the upstream did.
      if (run->abort) outcome = tl::unexpected(canceled_error());
      if (run->callbacks.on_done) run->callbacks.on_done(std::move(outcome));
    }
  }

  Result<GenerateUsage> generate(Run& run) {
    const auto started = Clock::now();
    StreamState state;
    state.chat = !run.request.messages.empty();
    if (state.chat) state.skip = run.request.resume_text.size();
    const std::string target = state.chat ? "/chat/completions" : "/completions";
    const std::string body = request_body(run.request);

    int status = 0;
    std::string content_type;
    std::string error_body;
    EventStream events;
    Status stream_status;  // the first error met while reading the stream
    auto on_event = [&](std::string_view data) { return take_event(data, state, run); };
    net::HttpStreamHandlers handlers;
    handlers.on_head = [&](const net::HttpResponseHead& head) {
      status = head.status;
      content_type = head.content_type;
      return true;
    };
    handlers.on_body = [&](std::string_view part) {
      if (status < 200 || status > 299) {
        error_body.append(
            part.substr(0, kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, error_body.size())));
        return error_body.size() < kMaxErrorBodyBytes;
      }
      if (!is_event_stream(content_type)) return false;  // reported below
      stream_status = events.feed(part, on_event);
      return stream_status.has_value() && !state.done && !run.abort;
    };
    auto head = client_.request_streaming("POST", target, body, "application/json", handlers, &run.abort);
    if (run.abort) return tl::unexpected(canceled_error());
    if (!head) {
      Error e = head.error();
      if (e.code == ErrorCode::kLimitExceeded)
        e.code = ErrorCode::kIo;  // the upstream's fault, not the job's
      return tl::unexpected(upstream_error(e.code, "POST " + target + ": " + e.message));
    }
    if (status < 200 || status > 299) {
      std::string message = error_message(error_body);
      if (status == 400) return tl::unexpected(upstream_error(ErrorCode::kInvalidInput, message));
      return tl::unexpected(
          upstream_error(ErrorCode::kIo, "HTTP " + std::to_string(status) + ": " + message));
    }
    if (!is_event_stream(content_type)) {
      return tl::unexpected(upstream_error(
          ErrorCode::kIo, "answered " + printable(content_type.empty() ? "no content type" : content_type) +
                              ", not a stream (text/event-stream)"));
    }
    if (!stream_status) return tl::unexpected(stream_status.error());
    if (!state.done) {
      if (auto st = events.finish(on_event); !st) return tl::unexpected(st.error());
    }
    if (!state.done && !state.finish) {
      return tl::unexpected(
          upstream_error(ErrorCode::kIo, "the stream ended before the generation finished"));
    }

    GenerateUsage usage;
    usage.input_tokens = state.input_tokens.value_or(0);
    usage.output_tokens = state.output_tokens.value_or(state.pieces);
    usage.finish_reason = state.finish.value_or(FinishReason::kStop);
    usage.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (state.first_piece) {
      usage.first_token_seconds = std::chrono::duration<double>(*state.first_piece - run.submitted).count();
    }
    return usage;
  }

  static bool is_event_stream(std::string_view content_type) {
    constexpr std::string_view kType = "text/event-stream";
    if (content_type.size() < kType.size()) return false;
    for (size_t i = 0; i < kType.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(content_type[i])) != kType[i]) return false;
    }
    return content_type.size() == kType.size() || content_type[kType.size()] == ';' ||
           content_type[kType.size()] == ' ';
  }

  const ProxyEngineOptions options_;
  const net::HttpClient client_;
  const std::vector<ModelDescription> models_;
  std::mutex mu_;
  std::condition_variable wake_;               // a run was queued, or stop()
  std::deque<std::shared_ptr<Run>> queue_;     // guarded by mu_
  std::vector<std::shared_ptr<Run>> running_;  // guarded by mu_
  bool stopping_ = false;                      // guarded by mu_
  std::mutex join_mu_;                         // serializes stop()'s joins
  std::vector<std::thread> workers_;
};

}  // namespace

Result<std::unique_ptr<Engine>> make_proxy_engine(const ProxyEngineOptions& options) {
  net::HttpClientOptions http;
  http.timeout = options.timeout;
  http.max_response_bytes = options.max_response_bytes;
  if (!options.api_key.empty()) http.headers.emplace_back("Authorization", "Bearer " + options.api_key);
  auto client = net::HttpClient::create(options.base_url, http);
  if (!client) {
    Error e = client.error();
    if (e.message.starts_with("headers: ")) e.message = "api_key: contains a control character";
    return tl::unexpected(with_context(std::move(e), "proxy engine"));
  }
  for (const auto& name : options.models) {
    if (!valid_model_name(name)) {
      return make_error(
          ErrorCode::kInvalidInput,
          "proxy engine: models: a name must be 1 to 256 bytes of UTF-8 without control characters");
    }
  }

  // Always asked, so that an unreachable upstream or a wrong key shows at start rather than at the first
  // job, and so that the models carry the upstream's context length.
  net::HttpClientOptions list_options = http;
  list_options.max_response_bytes = std::min(options.max_response_bytes, kMaxModelListBytes);
  auto lister = net::HttpClient::create(options.base_url, list_options);
  if (!lister) return tl::unexpected(with_context(lister.error(), "proxy engine"));
  const std::string where = "proxy engine: upstream " + options.base_url;
  auto listed = lister->get("/models");
  if (!listed) return make_error(ErrorCode::kIo, where + " is unreachable: " + listed.error().message);

  std::vector<ModelDescription> upstream;
  if (listed->status >= 200 && listed->status <= 299) {
    auto parsed = parse_model_list(listed->body);
    if (!parsed) return tl::unexpected(with_context(parsed.error(), where));
    upstream = std::move(*parsed);
  } else if (listed->status != 404 || options.models.empty()) {
    return make_error(ErrorCode::kIo, where + ": GET /models answered HTTP " +
                                          std::to_string(listed->status) + ": " +
                                          error_message(listed->body));
  }

  std::vector<ModelDescription> served;
  if (options.models.empty()) {
    if (upstream.empty()) return make_error(ErrorCode::kIo, where + " lists no models");
    served = std::move(upstream);
  } else {
    // The names given are served as they are: some servers (llama-server) answer to any name, so one that
    // is not listed is not an error. A listed one keeps what the upstream said about it.
    for (const auto& name : options.models) {
      auto listed_model =
          std::find_if(upstream.begin(), upstream.end(), [&](const auto& m) { return m.name == name; });
      if (listed_model != upstream.end()) {
        served.push_back(*listed_model);
        continue;
      }
      ModelDescription model;
      model.name = name;
      model.capabilities = {"text-generation", "chat"};
      served.push_back(std::move(model));
    }
  }
  return std::unique_ptr<Engine>(
      std::make_unique<ProxyEngine>(options, std::move(*client), std::move(served)));
}

}  // namespace infernet::engine
