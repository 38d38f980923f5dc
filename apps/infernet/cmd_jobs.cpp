// infernet submit|estimate|why|status|watch|cancel|jobs|providers|models: the consumer's commands, each a
// client of the local node's REST and WebSocket API (docs/api.md) at --api or config api.url.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/json.hpp>

#include "apps/infernet/command_context.hpp"
#include "net/http_client.hpp"
#include "net/io_pool.hpp"
#include "net/websocket_client.hpp"

namespace infernet::cli {

// watch --all (cmd_notify.cpp).
int watch_notifications(const std::string& api, const std::string& api_key, const std::string& types,
                        bool json_lines);
// The answers of POST /api/v1/estimate and GET /api/v1/jobs/{id}/why as text (cmd_market.cpp).
void print_estimate(const boost::json::value& estimate);
void print_why(const boost::json::value& why);

namespace {

namespace json = boost::json;

// Exit status when the user interrupts `watch` (the job itself goes on).
constexpr int kExitInterrupted = 130;
constexpr auto kRequestTimeout = std::chrono::seconds(30);
// A stream that drops (the node restarted, the network blinked) is re-attached this many times.
constexpr int kStreamReattempts = 5;
constexpr size_t kMaxJobIdBytes = 128;

struct JobCommandOptions {
  std::string api;  // --api; empty: config api.url
  bool json = false;
  std::string job;  // status, watch, cancel

  // submit
  std::string model;
  std::string prompt;
  uint32_t max_tokens = 0;
  double temperature = 0;
  uint64_t seed = 0;
  uint64_t max_cost_msat = 0;
  std::string priority;
  int64_t start_by = 0;   // unix seconds; 0: not sent
  int64_t finish_by = 0;  // unix seconds; 0: not sent
  std::string provider;
  bool open_quotes = false;
  std::string request_id;
  std::string strategy;
  std::string model_sha256;
  bool watch = false;
  // Set once the options exist, to tell a given flag from its default.
  CLI::Option* prompt_flag = nullptr;
  CLI::Option* max_tokens_flag = nullptr;
  CLI::Option* temperature_flag = nullptr;
  CLI::Option* seed_flag = nullptr;
  CLI::Option* max_cost_flag = nullptr;
  // Sampling beyond temperature and seed, sent only when given (docs/api.md lists the defaults).
  uint32_t top_k = 0;
  double top_p = 1;
  double min_p = 0;
  double repeat_penalty = 1;
  uint32_t repeat_last_n = 64;
  std::vector<std::string> stop;
  bool deterministic = false;
  bool chat = false;  // send the prompt as a user message, through the model's chat template
  std::string system;
  CLI::Option* top_k_flag = nullptr;
  CLI::Option* top_p_flag = nullptr;
  CLI::Option* min_p_flag = nullptr;
  CLI::Option* repeat_penalty_flag = nullptr;
  CLI::Option* repeat_last_n_flag = nullptr;

  // watch --all
  bool all = false;
  std::string types;

  // jobs
  std::string state;
  std::string model_filter;
  int limit = 0;
  std::string order;
  std::string cursor;

  // models (filters of GET /api/v1/models; empty or 0: none)
  std::string capability;
  std::string family;
  std::string engine;
  std::string quantization;
  std::string gpu_type;
  std::string search;
  std::string sort;
  uint64_t min_parameters = 0;
  uint64_t max_parameters = 0;
  uint64_t min_context = 0;
  CLI::Option* max_price_flag = nullptr;
  uint64_t max_price = 0;
};

// ---- talking to the API ----

// The key every request of this command sends (config api.key), set with the URL by api_url(): one command
// talks to one API.
std::string g_api_key;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

Result<std::string> api_url(const CommandContext& ctx, const JobCommandOptions& o) {
  auto config = ctx.load_config();
  if (!config) return tl::unexpected(config.error());
  g_api_key = config->get_string("api.key");
  if (!o.api.empty()) return o.api;
  return config->get_string("api.url");
}

net::HttpClientOptions api_client_options() {
  net::HttpClientOptions options;
  options.timeout = kRequestTimeout;
  if (!g_api_key.empty()) options.headers.emplace_back("Authorization", "Bearer " + g_api_key);
  return options;
}

// A stream URL with the key as access_token (WebSocket upgrades take it there; docs/api.md).
std::string with_access_token(std::string url) {
  if (g_api_key.empty()) return url;
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "access_token=" + g_api_key;
}

std::string unreachable(const std::string& url, const Error& error) {
  return "cannot reach the API at " + url + ": " + error.message +
         " (is `infernet node --consumer` running? api.url=" + url + ")";
}

// The API's error message from an error body, or a description of an unexpected answer.
std::string api_error_message(const net::HttpResponse& response) {
  boost::system::error_code ec;
  json::value body = json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    const json::value* error = body.as_object().if_contains("error");
    if (error != nullptr && error->is_object()) {
      const json::value* message = error->as_object().if_contains("message");
      if (message != nullptr && message->is_string()) return std::string(message->get_string());
    }
  }
  return "the API answered " + std::to_string(response.status) + ": " + response.body.substr(0, 200);
}

// Sends one request and returns the JSON of a 2xx answer. Any failure is printed; the result is then empty.
std::optional<json::value> call_api(const std::string& url, std::string_view method,
                                    const std::string& target, const std::string& body = "") {
  auto client = net::HttpClient::create(url, api_client_options());
  if (!client) {
    fail("api.url: " + client.error().message);
    return std::nullopt;
  }
  auto response = client->request(method, target, body);
  if (!response) {
    fail(response.error().message.rfind("connect ", 0) == 0
             ? unreachable(url, response.error())
             : "API at " + url + ": " + response.error().message);
    return std::nullopt;
  }
  if (response->status < 200 || response->status > 299) {
    fail(api_error_message(*response));
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::value value = json::parse(response->body, ec);
  if (ec) {
    fail("the API answered with something that is not JSON: " + response->body.substr(0, 200));
    return std::nullopt;
  }
  return value;
}

Status check_job_id(const std::string& id) {
  bool plain = !id.empty() && id.size() <= kMaxJobIdBytes;
  for (char c : id) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_');
  }
  if (!plain) return make_error(ErrorCode::kInvalidInput, "JOB: '" + id + "' is not a job id");
  return {};
}

std::string percent_encode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// ---- reading JSON answers ----

std::string str(const json::value& object, std::string_view key) {
  const json::value* v = object.is_object() ? object.as_object().if_contains(key) : nullptr;
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_null()) return "";
  return json::serialize(*v);
}

int64_t num(const json::value& object, std::string_view key) {
  const json::value* v = object.is_object() ? object.as_object().if_contains(key) : nullptr;
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  return 0;
}

const json::value& member(const json::value& object, std::string_view key) {
  static const json::value kNull;
  const json::value* v = object.is_object() ? object.as_object().if_contains(key) : nullptr;
  return v != nullptr ? *v : kNull;
}

// "2025-03-26 12:00:00Z" from unix seconds; "-" for 0.
std::string utc_time(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "-";
  std::time_t t = unix_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

void print_json(const json::value& value) {
  std::string text = json::serialize(value) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// Columns padded to their widest cell; the last column is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

// ---- watch: the job's WebSocket stream ----

std::atomic<bool> g_interrupted{false};

// What one stream connection reported; shared with the client's callbacks.
struct StreamState {
  std::mutex mu;
  std::condition_variable changed;
  bool opened = false;             // guarded by mu
  bool ended = false;              // guarded by mu
  std::optional<Error> close;      // guarded by mu
  uint64_t last_seq = 0;           // guarded by mu: the last event seen, for re-attaching
  std::string printed;             // guarded by mu: output written to stdout so far
  std::optional<json::value> job;  // guarded by mu: the final job, once the final message came
  std::string final_type;          // guarded by mu
};

void write_out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// One message of the stream (docs/api.md, "Job streams"): output to stdout, the rest to stderr.
void on_stream_message(StreamState& s, const std::string& job_id, std::string_view text) {
  boost::system::error_code ec;
  json::value message = json::parse(text, ec);
  if (ec || !message.is_object()) return;
  std::string type = str(message, "type");
  const json::value& data = member(message, "data");
  std::lock_guard lock(s.mu);
  s.last_seq = std::max<uint64_t>(s.last_seq, static_cast<uint64_t>(num(message, "seq")));
  if (member(message, "final").is_bool() && member(message, "final").get_bool()) {
    s.final_type = type;
    s.job = data;
    return;
  }
  if (type == "progress") {
    std::string chunk = str(data, "text");
    write_out(chunk);
    s.printed += chunk;
  } else if (type == "state") {
    // The final state is reported once, with the final message; "submitted" is no news to a watcher.
    std::string state = str(data, "state");
    if (state == "submitted" || state == "completed" || state == "failed" || state == "canceled" ||
        state == "expired") {
      return;
    }
    std::string line = "infernet: job " + job_id + " " + state;
    if (std::string provider = str(data, "provider"); !provider.empty()) {
      line += " (provider " + provider.substr(0, 12) + "...)";  // `infernet status` shows the whole key
    }
    if (std::string reason = str(data, "reason"); !reason.empty()) line += ": " + reason;
    std::fprintf(stderr, "%s\n", line.c_str());
  } else if (type == "error") {
    std::fprintf(stderr, "infernet: job %s attempt %lld: %s: %s\n", job_id.c_str(),
                 static_cast<long long>(num(data, "attempt")), str(data, "code").c_str(),
                 str(data, "message").c_str());
  } else if (type == "note") {
    std::fprintf(stderr, "infernet: job %s: %s\n", job_id.c_str(), str(data, "message").c_str());
  }
}

// Follows the job until its final message; prints what it streams. Returns the exit code: 0 completed, 1
// failed, canceled, expired or unreachable, 130 interrupted.
int watch_job(const std::string& api, const std::string& job_id) {
  auto ws_base = net::websocket_url_for(api);
  if (!ws_base) return fail("api.url: " + ws_base.error().message);
  while (!ws_base->empty() && ws_base->back() == '/')
    ws_base->pop_back();

  net::IoPool io(1);
  io.start();
  std::signal(SIGINT, [](int) { g_interrupted = true; });
  std::signal(SIGTERM, [](int) { g_interrupted = true; });

  auto state = std::make_shared<StreamState>();
  bool ever_opened = false;
  for (int attempt = 0;; ++attempt) {
    uint64_t after = 0;
    {
      std::lock_guard lock(state->mu);
      after = state->last_seq;
      state->opened = state->ended = false;
      state->close.reset();
    }
    std::string url =
        with_access_token(*ws_base + "/api/v1/jobs/" + job_id + "/stream?after=" + std::to_string(after));
    net::WebSocketClientHandlers handlers;
    handlers.on_open = [state] {
      std::lock_guard lock(state->mu);
      state->opened = true;
    };
    handlers.on_text = [state, job_id](std::string_view text) { on_stream_message(*state, job_id, text); };
    handlers.on_close = [state](const Error& error) {
      std::lock_guard lock(state->mu);
      state->ended = true;
      state->close = error;
      state->changed.notify_all();
    };
    net::ClientOptions options;
    options.max_message_bytes = 16 << 20;  // the final message carries the whole output
    auto client = net::WebSocketClient::create(io.io_context(), url, std::move(handlers), options);
    if (!client) return fail("api.url: " + client.error().message);
    (*client)->connect();

    std::unique_lock lock(state->mu);
    while (!state->ended && !g_interrupted)
      state->changed.wait_for(lock, std::chrono::milliseconds(100));
    if (g_interrupted) {
      lock.unlock();
      (*client)->close();
      std::fprintf(
          stderr,
          "infernet: stopped watching; job %s goes on (`infernet watch %s` re-attaches, `infernet cancel "
          "%s` stops it)\n",
          job_id.c_str(), job_id.c_str(), job_id.c_str());
      return kExitInterrupted;
    }
    ever_opened = ever_opened || state->opened;
    if (state->job) break;

    const std::string reason = state->close ? state->close->message : "closed";
    if (reason.rfind("closed by peer: 4404", 0) == 0) return fail("job " + job_id + " not found");
    if (reason.rfind("closed by peer: 44", 0) == 0) return fail("the API refused the stream: " + reason);
    if (!ever_opened) {
      return fail(reason.rfind("connect ", 0) == 0 ? unreachable(api, *state->close) : "stream: " + reason);
    }
    if (attempt >= kStreamReattempts) {
      std::string message = "stream of job " + job_id;
      message += " lost: ";
      message += reason;
      return fail(message);
    }
    std::fprintf(stderr, "infernet: stream lost (%s); re-attaching after event %llu\n", reason.c_str(),
                 static_cast<unsigned long long>(state->last_seq));
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  std::lock_guard lock(state->mu);
  // The final job carries the whole output: print what the progress messages did not (a provider may send
  // the output only in its result, or the stream may have re-attached after the last chunk).
  std::string output = str(*state->job, "output");
  if (output.size() > state->printed.size() &&
      output.compare(0, state->printed.size(), state->printed) == 0) {
    write_out(std::string_view(output).substr(state->printed.size()));
    state->printed = output;
  } else if (state->printed.empty()) {
    write_out(output);
    state->printed = output;
  }
  if (!state->printed.empty() && state->printed.back() != '\n' && isatty(STDOUT_FILENO) != 0) write_out("\n");
  std::string final_state = str(*state->job, "state");
  if (final_state == "completed") {
    std::fprintf(stderr, "infernet: job %s completed: %lld output tokens, %lld msat\n", job_id.c_str(),
                 static_cast<long long>(num(member(*state->job, "usage"), "output_tokens")),
                 static_cast<long long>(num(*state->job, "cost_msat")));
    return 0;
  }
  std::string error = str(*state->job, "error");
  return fail("job " + job_id + " " + final_state + (error.empty() ? "" : ": " + error));
}

// ---- the commands ----

// The body of POST /api/v1/jobs (and /estimate) from submit's flags; the prompt from stdin when not given.
Result<json::object> job_body(const JobCommandOptions& o) {
  std::string prompt = o.prompt;
  if (o.prompt_flag->count() == 0) {
    if (isatty(STDIN_FILENO) != 0)
      std::fprintf(stderr, "infernet: reading the prompt from stdin (end with Ctrl-D)\n");
    auto in = read_stdin();
    if (!in) return tl::unexpected(in.error());
    prompt = std::move(*in);
    // `echo text | infernet submit` should not send echo's newline as part of the prompt.
    if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
    if (!prompt.empty() && prompt.back() == '\r') prompt.pop_back();
  }
  json::object body;
  body["model"] = o.model;
  if (o.chat || !o.system.empty()) {
    json::array messages;
    if (!o.system.empty()) messages.push_back(json::object{{"role", "system"}, {"content", o.system}});
    messages.push_back(json::object{{"role", "user"}, {"content", prompt}});
    body["messages"] = std::move(messages);
  } else {
    body["prompt"] = prompt;
  }
  if (o.max_tokens_flag->count() > 0) body["max_tokens"] = o.max_tokens;
  if (o.temperature_flag->count() > 0) body["temperature"] = o.temperature;
  if (o.seed_flag->count() > 0) body["seed"] = o.seed;
  if (o.top_k_flag->count() > 0) body["top_k"] = o.top_k;
  if (o.top_p_flag->count() > 0) body["top_p"] = o.top_p;
  if (o.min_p_flag->count() > 0) body["min_p"] = o.min_p;
  if (o.repeat_penalty_flag->count() > 0) body["repeat_penalty"] = o.repeat_penalty;
  if (o.repeat_last_n_flag->count() > 0) body["repeat_last_n"] = o.repeat_last_n;
  if (!o.stop.empty()) body["stop"] = json::value_from(o.stop);
  if (o.deterministic) body["deterministic"] = true;
  if (o.max_cost_flag->count() > 0) body["max_cost_msat"] = o.max_cost_msat;
  if (!o.priority.empty()) body["priority"] = o.priority;
  if (o.start_by != 0) body["start_by"] = o.start_by;
  if (o.finish_by != 0) body["finish_by"] = o.finish_by;
  if (!o.provider.empty()) body["provider"] = o.provider;
  if (o.open_quotes) body["open_quotes"] = true;
  if (!o.request_id.empty()) body["client_request_id"] = o.request_id;
  if (!o.strategy.empty()) body["strategy"] = o.strategy;
  if (!o.model_sha256.empty()) body["model_sha256"] = o.model_sha256;
  return body;
}

int run_estimate(const CommandContext& ctx, const JobCommandOptions& o) {
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  auto body = job_body(o);
  if (!body) return fail(body.error());
  auto estimate = call_api(*api, "POST", "/api/v1/estimate", json::serialize(*body));
  if (!estimate) return kExitFailure;
  if (o.json) {
    print_json(*estimate);
  } else {
    print_estimate(*estimate);
  }
  return 0;
}

int run_why(const CommandContext& ctx, const JobCommandOptions& o) {
  if (auto st = check_job_id(o.job); !st) return fail(st.error());
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  auto why = call_api(*api, "GET", "/api/v1/jobs/" + o.job + "/why", "");
  if (!why) return kExitFailure;
  if (o.json) {
    print_json(*why);
  } else {
    print_why(*why);
  }
  return 0;
}

int run_submit(const CommandContext& ctx, const JobCommandOptions& o) {
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  auto body = job_body(o);
  if (!body) return fail(body.error());
  auto job = call_api(*api, "POST", "/api/v1/jobs", json::serialize(*body));
  if (!job) return kExitFailure;
  std::string id = str(*job, "id");
  if (!o.watch) {
    if (o.json) {
      print_json(*job);
    } else {
      std::printf("%s\n", id.c_str());
    }
    return 0;
  }
  // With --watch, stdout carries only the output, so the id goes to stderr.
  std::fprintf(stderr, "infernet: job %s submitted\n", id.c_str());
  return watch_job(*api, id);
}

int run_status(const CommandContext& ctx, const JobCommandOptions& o) {
  if (auto st = check_job_id(o.job); !st) return fail(st.error());
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  auto job = call_api(*api, "GET", "/api/v1/jobs/" + o.job);
  if (!job) return kExitFailure;
  if (o.json) {
    print_json(*job);
    return 0;
  }
  const json::value& usage = member(*job, "usage");
  std::vector<std::vector<std::string>> rows = {
      {"id:", str(*job, "id")},
      {"state:", str(*job, "state")},
      {"model:", str(*job, "model")},
      {"provider:", str(*job, "provider").empty() ? "-" : str(*job, "provider")},
      {"attempt:", std::to_string(num(*job, "attempt"))},
      {"tokens:", std::to_string(num(usage, "input_tokens")) + " in, " +
                      std::to_string(num(usage, "output_tokens")) + " out"},
      {"cost_msat:", std::to_string(num(*job, "cost_msat"))},
      {"created:", utc_time(num(*job, "created_at") / 1000)},
      {"updated:", utc_time(num(*job, "updated_at") / 1000)},
  };
  if (!str(*job, "client_request_id").empty())
    rows.push_back({"request id:", str(*job, "client_request_id")});
  if (!str(*job, "error").empty()) rows.push_back({"error:", str(*job, "error")});
  print_table(rows);
  std::string output = str(*job, "output");
  if (!output.empty()) std::printf("output:\n%s%s", output.c_str(), output.back() == '\n' ? "" : "\n");
  return 0;
}

int run_watch(const CommandContext& ctx, const JobCommandOptions& o) {
  if (o.all != o.job.empty()) return fail("watch: give a JOB or --all, not both");
  if (!o.all && (!o.types.empty() || o.json)) return fail("watch: --types and --json go with --all");
  if (!o.all) {
    if (auto st = check_job_id(o.job); !st) return fail(st.error());
  }
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  return o.all ? watch_notifications(*api, g_api_key, o.types, o.json) : watch_job(*api, o.job);
}

int run_cancel(const CommandContext& ctx, const JobCommandOptions& o) {
  if (auto st = check_job_id(o.job); !st) return fail(st.error());
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  auto job = call_api(*api, "POST", "/api/v1/jobs/" + o.job + "/cancel");
  if (!job) return kExitFailure;
  if (o.json) {
    print_json(*job);
  } else {
    std::printf("%s %s\n", str(*job, "id").c_str(), str(*job, "state").c_str());
  }
  return 0;
}

int run_jobs(const CommandContext& ctx, const JobCommandOptions& o) {
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  std::string query;
  auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    query += query.empty() ? "?" : "&";
    query += std::string(name) + "=" + percent_encode(value);
  };
  add("state", o.state);
  add("model", o.model_filter);
  add("limit", o.limit > 0 ? std::to_string(o.limit) : "");
  add("order", o.order);
  add("cursor", o.cursor);
  auto answer = call_api(*api, "GET", "/api/v1/jobs" + query);
  if (!answer) return kExitFailure;
  if (o.json) {
    print_json(*answer);
    return 0;
  }
  // On stderr, so the table stays clean for scripts that read stdout.
  if (const json::value& next = member(*answer, "next_cursor"); next.is_string()) {
    std::fprintf(stderr, "more jobs: infernet jobs --cursor %s\n", std::string(next.get_string()).c_str());
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "STATE", "MODEL", "ATTEMPT", "COST_MSAT", "CREATED"}};
  const json::value& jobs = member(*answer, "jobs");
  if (jobs.is_array()) {
    for (const auto& job : jobs.get_array()) {
      rows.push_back({str(job, "id"), str(job, "state"), str(job, "model"),
                      std::to_string(num(job, "attempt")), std::to_string(num(job, "cost_msat")),
                      utc_time(num(job, "created_at") / 1000)});
    }
  }
  print_table(rows);
  return 0;
}

int run_providers(const CommandContext& ctx, const JobCommandOptions& o) {
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  auto answer = call_api(*api, "GET", "/api/v1/providers");
  if (!answer) return kExitFailure;
  if (o.json) {
    print_json(*answer);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"PUBKEY", "NAME", "ALIVE", "MODELS", "PRICE_1K_OUT_MSAT", "LAST_SEEN"}};
  const json::value& providers = member(*answer, "providers");
  if (providers.is_array()) {
    for (const auto& p : providers.get_array()) {
      std::string models;
      const json::value& list = member(p, "models");
      if (list.is_array()) {
        for (const auto& m : list.get_array())
          models += (models.empty() ? "" : ",") + str(m, "name");
      }
      bool alive = member(p, "alive").is_bool() && member(p, "alive").get_bool();
      rows.push_back({str(p, "pubkey"), str(p, "name"), alive ? "yes" : "no", models.empty() ? "-" : models,
                      std::to_string(num(member(p, "prices"), "per_1k_output_msat")),
                      utc_time(num(p, "last_seen"))});
    }
  }
  print_table(rows);
  return 0;
}

int run_models(const CommandContext& ctx, const JobCommandOptions& o) {
  auto api = api_url(ctx, o);
  if (!api) return fail(api.error());
  std::string query;
  auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    query += query.empty() ? "?" : "&";
    query += std::string(name) + "=" + percent_encode(value);
  };
  auto count = [](uint64_t n) { return n > 0 ? std::to_string(n) : std::string(); };
  add("capability", o.capability);
  add("family", o.family);
  add("engine", o.engine);
  add("quantization", o.quantization);
  add("gpu_type", o.gpu_type);
  add("q", o.search);
  add("sort", o.sort);
  add("min_parameters", count(o.min_parameters));
  add("max_parameters", count(o.max_parameters));
  add("min_context", count(o.min_context));
  if (o.max_price_flag != nullptr && o.max_price_flag->count() > 0)
    add("max_price_per_1k_output_msat", std::to_string(o.max_price));
  add("limit", o.limit > 0 ? std::to_string(o.limit) : "");
  auto answer = call_api(*api, "GET", "/api/v1/models" + query);
  if (!answer) return kExitFailure;
  if (o.json) {
    print_json(*answer);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"MODEL", "PARAMS", "QUANT", "CONTEXT", "PROVIDERS", "PRICE_1K_OUT_MSAT", "GPUS"}};
  const json::value& models = member(*answer, "models");
  if (models.is_array()) {
    for (const auto& m : models.get_array()) {
      const json::value& range = member(member(m, "price"), "per_1k_output_msat");
      const uint64_t low = num(m, "min_price_per_1k_output_msat");
      const uint64_t high = range.is_object() ? num(range, "max") : low;
      std::string gpus;
      const json::value& names = member(member(m, "hardware"), "gpus");
      if (names.is_array()) {
        for (const auto& g : names.get_array())
          gpus += (gpus.empty() ? "" : ",") + std::string(g.is_string() ? g.get_string() : "");
      }
      const bool cpu = num(member(m, "hardware"), "providers_without_gpu") > 0;
      if (cpu) gpus += gpus.empty() ? "cpu" : ",cpu";
      const json::value& providers = member(m, "providers");
      size_t provider_count = providers.is_array() ? providers.get_array().size() : 0;
      rows.push_back({str(m, "name"), std::to_string(num(m, "parameters")), str(m, "quantization"),
                      std::to_string(num(m, "context_length")), std::to_string(provider_count),
                      low == high ? std::to_string(low) : std::to_string(low) + "-" + std::to_string(high),
                      gpus.empty() ? "-" : gpus});
    }
  }
  print_table(rows);
  return 0;
}

}  // namespace

// The flags of a job's spec, shared by submit and estimate (each with its own options, so a flag's count()
// is that command's).
void add_spec_options(CLI::App* cmd, JobCommandOptions& o) {
  cmd->add_option("--api", o.api, "URL of the node's API (config api.url, default http://127.0.0.1:7448)");
  cmd->add_option("--model", o.model, "Model name, e.g. tinyllama-q4 (see `infernet models`)")->required();
  o.prompt_flag = cmd->add_option("--prompt", o.prompt, "The prompt (default: read from stdin)");
  o.max_tokens_flag = cmd->add_option("--max-tokens", o.max_tokens, "Most output tokens (default 256)");
  o.temperature_flag = cmd->add_option("--temperature", o.temperature, "Sampling temperature, 0 to 2");
  o.seed_flag = cmd->add_option("--seed", o.seed, "Sampling seed");
  o.top_k_flag = cmd->add_option("--top-k", o.top_k, "Sample from the k most likely tokens (0: off)");
  o.top_p_flag = cmd->add_option("--top-p", o.top_p, "Nucleus sampling, above 0 up to 1 (1: off)");
  o.min_p_flag = cmd->add_option("--min-p", o.min_p, "Drop tokens below this share of the best (0: off)");
  o.repeat_penalty_flag =
      cmd->add_option("--repeat-penalty", o.repeat_penalty, "Penalize recent tokens, up to 4 (1: off)");
  o.repeat_last_n_flag =
      cmd->add_option("--repeat-last-n", o.repeat_last_n, "How many recent tokens the penalty sees");
  cmd->add_option("--stop", o.stop, "End the output before this text (repeat for up to 4)");
  cmd->add_flag("--deterministic", o.deterministic,
                "Ask for reproducible text: the same seed and parameters give the same output");
  cmd->add_flag("--chat", o.chat, "Send the prompt as a user message through the model's chat template");
  cmd->add_option("--system", o.system, "A system message to go before the prompt (implies --chat)");
  o.max_cost_flag =
      cmd->add_option("--max-cost-msat", o.max_cost_msat, "Budget cap in millisatoshis (default: none)");
  cmd->add_option("--priority", o.priority, "low, normal or high (default normal)");
  cmd->add_option("--start-by", o.start_by,
                  "Unix seconds: expire the job if no provider has accepted it by then");
  cmd->add_option("--finish-by", o.finish_by,
                  "Unix seconds: expire the job if it has not finished by then (the API's deadline)");
  cmd->add_option("--provider", o.provider, "Send only to this provider (npub or hex)");
  cmd->add_flag("--open-quotes", o.open_quotes,
                "Ask every provider of the model for an offer, take the best");
  cmd->add_option("--strategy", o.strategy,
                  "How to choose among eligible providers: balanced, cheapest or fastest (default: config "
                  "consumer.strategy)");
  cmd->add_option("--model-sha256", o.model_sha256, "Only providers serving the model file with this sha256");
  cmd->add_option("--request-id", o.request_id,
                  "Your id for this request: submitting it again returns the same job instead of a new one");
}

void add_job_commands(CLI::App& app, CommandContext& ctx) {
  static JobCommandOptions opts;
  static JobCommandOptions estimate_opts;
  auto add_api = [](CLI::App* cmd) {
    cmd->add_option("--api", opts.api,
                    "URL of the node's API (config api.url, default http://127.0.0.1:7448)");
  };
  auto add_json = [](CLI::App* cmd, const char* what) { cmd->add_flag("--json", opts.json, what); };
  auto add_job = [](CLI::App* cmd) { cmd->add_option("JOB", opts.job, "Job id")->required(); };

  auto* submit = app.add_subcommand(
      "submit",
      "Submit an inference job to the local consumer node; prints its id (with --watch, its output)");
  add_spec_options(submit, opts);
  submit->add_flag("--watch", opts.watch,
                   "Stream the output to stdout until the job ends; exit 0 if it completed, 1 otherwise");
  add_json(submit, "Print the job as JSON instead of its id");
  submit->callback([&ctx] { ctx.exit_code = run_submit(ctx, opts); });

  auto* estimate = app.add_subcommand(
      "estimate",
      "What a job would cost, before submitting it: the chosen provider's breakdown and the range");
  add_spec_options(estimate, estimate_opts);
  estimate->add_flag("--json", estimate_opts.json, "Print the API's JSON answer");
  estimate->callback([&ctx] { ctx.exit_code = run_estimate(ctx, estimate_opts); });

  auto* why = app.add_subcommand(
      "why", "Why a job is where it is: every provider considered, its verdict, and suggestions");
  add_api(why);
  add_job(why);
  add_json(why, "Print the API's JSON answer");
  why->callback([&ctx] { ctx.exit_code = run_why(ctx, opts); });

  auto* status = app.add_subcommand("status", "Show a job: state, provider, usage, cost, output");
  add_api(status);
  add_job(status);
  add_json(status, "Print the job as JSON");
  status->callback([&ctx] { ctx.exit_code = run_status(ctx, opts); });

  auto* watch = app.add_subcommand(
      "watch",
      "Follow a job: output to stdout as it streams, state changes to stderr; exit 0 if it completed");
  add_api(watch);
  watch->add_option("JOB", opts.job, "Job id");
  watch->add_flag("--all", opts.all,
                  "Follow notifications of every job instead, from now on: one line each (docs/api.md)");
  watch->add_option("--types", opts.types, "With --all: only these notification types (comma-separated)");
  add_json(watch, "With --all: print each notification as a JSON line");
  watch->callback([&ctx] { ctx.exit_code = run_watch(ctx, opts); });

  auto* cancel = app.add_subcommand("cancel", "Cancel a job; prints its id and state");
  add_api(cancel);
  add_job(cancel);
  add_json(cancel, "Print the job as JSON");
  cancel->callback([&ctx] { ctx.exit_code = run_cancel(ctx, opts); });

  auto* jobs = app.add_subcommand("jobs", "List the jobs in the node's database");
  add_api(jobs);
  jobs->add_option("--state", opts.state, "Only jobs in this state (submitted, running, completed, ...)");
  jobs->add_option("--model", opts.model_filter, "Only jobs for this model");
  jobs->add_option("--limit", opts.limit, "At most this many jobs (1-1000, default 100)");
  jobs->add_option("--order", opts.order, "desc (newest first, the default) or asc");
  jobs->add_option("--cursor", opts.cursor, "Continue after an earlier page (its next_cursor)");
  add_json(jobs, "Print the API's JSON answer");
  jobs->callback([&ctx] { ctx.exit_code = run_jobs(ctx, opts); });

  auto* providers = app.add_subcommand("providers", "List the providers the node has seen");
  add_api(providers);
  add_json(providers, "Print the API's JSON answer");
  providers->callback([&ctx] { ctx.exit_code = run_providers(ctx, opts); });

  auto* models =
      app.add_subcommand("models", "The models marketplace: what live providers serve, at what prices");
  add_api(models);
  models->add_option("--capability,--type", opts.capability, "Only models with this capability (e.g. chat)");
  models->add_option("--family", opts.family, "Only this model family (e.g. llama)");
  models->add_option("--engine", opts.engine, "Only models served by this engine (llama, torch, ...)");
  models->add_option("--quantization", opts.quantization, "Only this quantization (e.g. q4_0)");
  models->add_option("--min-params", opts.min_parameters, "At least this many parameters");
  models->add_option("--max-params", opts.max_parameters, "At most this many parameters");
  models->add_option("--min-context", opts.min_context, "A context of at least this many tokens");
  opts.max_price_flag = models->add_option("--max-price", opts.max_price,
                                           "Only offers at most this output price (msat per 1000 tokens)");
  models->add_option("--gpu-type", opts.gpu_type,
                     "Only providers with a matching GPU (e.g. NVIDIA_A100; cpu: none)");
  models->add_option("--search", opts.search, "Only models whose name contains this text");
  models->add_option("--sort", opts.sort, "name (default), price, providers or parameters");
  models->add_option("--limit", opts.limit, "At most this many models (1-1000)");
  add_json(models, "Print the API's JSON answer");
  models->callback([&ctx] { ctx.exit_code = run_models(ctx, opts); });
}

}  // namespace infernet::cli
