// infernet watch --all (the notification stream) and infernet webhook add|list|remove|enable: clients of the
// local node's API (docs/api.md, "Notifications" and "Webhooks").
#include <algorithm>
#include <atomic>
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
namespace {

namespace json = boost::json;

constexpr int kExitInterrupted = 130;
constexpr auto kRequestTimeout = std::chrono::seconds(30);
// Waits between re-attaching to a dropped stream: from 1 s, doubling to 10 s.
constexpr auto kFirstReattachWait = std::chrono::seconds(1);
constexpr auto kMaxReattachWait = std::chrono::seconds(10);

std::atomic<bool> g_stop{false};

std::string text_of(const json::value& object, std::string_view key) {
  if (!object.is_object()) return "";
  const json::value* v = object.get_object().if_contains(key);
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_number() || v->is_bool()) return json::serialize(*v);
  return "";
}

std::string utc_time_ms(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One line for a notification: id, time, type, job, and what the type says.
std::string describe(const json::value& n) {
  const json::value& data = n.is_object() && n.get_object().contains("data") ? n.at("data") : json::value();
  const std::string type = text_of(n, "type");
  std::string line = text_of(n, "id") + " " +
                     utc_time_ms(n.at("at").is_int64() ? n.at("at").get_int64() : 0) + " " + type + " job " +
                     text_of(n, "job_id") + " model " + text_of(data, "model");
  if (type == "job.completed") line += " cost " + text_of(data, "cost_msat") + " msat";
  if (type == "job.started") line += " provider " + text_of(data, "provider").substr(0, 12) + "...";
  if (type == "job.error") line += ": " + text_of(data, "code") + ": " + text_of(data, "message");
  if (type == "budget.threshold") {
    line += " " + text_of(data, "threshold_percent") + "% of " + text_of(data, "max_cost_msat") + " msat (" +
            (text_of(data, "estimated") == "true" ? "estimated " : "") + text_of(data, "spent_msat") +
            " msat)";
  }
  if (type == "budget.account") {
    line += " " + text_of(data, "threshold_percent") + "% of the " + text_of(data, "period") + " budget of " +
            text_of(data, "limit_msat") + " msat (" + text_of(data, "spent_msat") + " msat spent)";
  }
  if (std::string reason = text_of(data, "reason"); !reason.empty()) line += ": " + reason;
  return line;
}

struct FollowState {
  std::mutex mu;
  std::condition_variable changed;
  bool opened = false;    // guarded by mu
  bool attached = false;  // guarded by mu: the stream has opened once (said on stderr)
  bool ended = false;     // guarded by mu
  std::string close;      // guarded by mu: why it ended
  uint64_t last_id = 0;   // guarded by mu
};

// The key this command sends (config api.key), read with the URL by api_base(): one command, one API.
std::string g_api_key;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

std::string api_base(const CommandContext& ctx, const std::string& api) {
  auto config = ctx.load_config();
  if (config) g_api_key = config->get_string("api.key");
  if (!api.empty()) return api;
  return config ? config->get_string("api.url") : "";
}

net::HttpClientOptions api_client_options() {
  net::HttpClientOptions options;
  options.timeout = kRequestTimeout;
  if (!g_api_key.empty()) options.headers.emplace_back("Authorization", "Bearer " + g_api_key);
  return options;
}

// Sends one request; prints the JSON answer (or fails with the API's message).
int call(const std::string& api, std::string_view method, const std::string& target, const std::string& body,
         bool json_out, const std::function<void(const json::value&)>& print) {
  auto client = net::HttpClient::create(api, api_client_options());
  if (!client) return fail("api.url: " + client.error().message);
  auto response = client->request(method, target, body);
  if (!response) return fail("API at " + api + ": " + response.error().message);
  boost::system::error_code ec;
  json::value answer = json::parse(response->body, ec);
  if (ec)
    return fail("the API answered " + std::to_string(response->status) + ": " +
                response->body.substr(0, 200));
  if (response->status < 200 || response->status > 299) {
    const json::value* error = answer.is_object() ? answer.get_object().if_contains("error") : nullptr;
    return fail(error != nullptr ? text_of(*error, "message") : response->body.substr(0, 200));
  }
  if (json_out) {
    std::printf("%s\n", json::serialize(answer).c_str());
  } else {
    print(answer);
  }
  return 0;
}

void print_webhook(const json::value& w) {
  std::string types;
  if (w.at("types").is_array()) {
    for (const auto& t : w.at("types").get_array())
      types += (types.empty() ? "" : ",") + std::string(t.get_string());
  }
  std::printf(
      "%s %s types=%s %s delivered=%s through=%s%s\n", text_of(w, "id").c_str(), text_of(w, "url").c_str(),
      types.empty() ? "all" : types.c_str(),
      text_of(w, "enabled") == "true" ? "enabled" : ("disabled: " + text_of(w, "disabled_reason")).c_str(),
      text_of(w, "delivered").c_str(), text_of(w, "delivered_through").c_str(),
      text_of(w, "last_error").empty() ? "" : (" last_error=" + text_of(w, "last_error")).c_str());
}

}  // namespace

// Follows /api/v1/notifications/stream from the newest notification on (only what happens from now), one
// line per notification; re-attaches after the last id seen when the stream drops. Returns 130 on Ctrl-C,
// 1 when the API is unreachable at the start or refuses the stream.
int watch_notifications(const std::string& api, const std::string& api_key, const std::string& types,
                        bool json_lines) {
  g_api_key = api_key;
  auto ws_base = net::websocket_url_for(api);
  if (!ws_base) return fail("api.url: " + ws_base.error().message);
  while (!ws_base->empty() && ws_base->back() == '/')
    ws_base->pop_back();
  // Start after the newest stored notification: only what happens from now on is printed.
  uint64_t start = 0;
  {
    auto client = net::HttpClient::create(api, api_client_options());
    if (!client) return fail("api.url: " + client.error().message);
    auto page = client->get("/api/v1/notifications?limit=1&after=" + std::to_string(UINT64_MAX));
    if (!page) {
      return fail("cannot reach the API at " + api + ": " + page.error().message +
                  " (is `infernet node --consumer` running?)");
    }
    boost::system::error_code ec;
    json::value body = json::parse(page->body, ec);
    const json::value* last = !ec && body.is_object() ? body.get_object().if_contains("last_id") : nullptr;
    if (page->status != 200 || last == nullptr || !last->is_number()) {
      return fail("the API answered " + std::to_string(page->status) + ": " + page->body.substr(0, 200));
    }
    start = last->to_number<uint64_t>();
  }

  net::IoPool io(1);
  io.start();
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  auto state = std::make_shared<FollowState>();
  state->last_id = start;
  auto wait = kFirstReattachWait;
  for (;;) {
    uint64_t after = 0;
    {
      std::lock_guard lock(state->mu);
      after = state->last_id;
      state->opened = state->ended = false;
      state->close.clear();
    }
    std::string url = *ws_base + "/api/v1/notifications/stream?after=" + std::to_string(after);
    if (!types.empty()) url += "&types=" + types;
    if (!g_api_key.empty()) url += "&access_token=" + g_api_key;  // WebSocket upgrades take the key here
    net::WebSocketClientHandlers handlers;
    handlers.on_open = [state] {
      std::lock_guard lock(state->mu);
      state->opened = true;
      // Once, on stderr (stdout stays one line per notification): from here on nothing is missed.
      if (!state->attached) {
        state->attached = true;
        std::fprintf(stderr, "infernet: watching notifications after %llu (Ctrl-C to stop)\n",
                     static_cast<unsigned long long>(state->last_id));
      }
    };
    handlers.on_text = [state, json_lines](std::string_view text) {
      boost::system::error_code ec;
      json::value n = json::parse(text, ec);
      if (ec || !n.is_object() || !n.at("id").is_number()) return;
      std::lock_guard lock(state->mu);
      const uint64_t id = n.at("id").to_number<uint64_t>();
      if (id <= state->last_id) return;
      state->last_id = id;
      const std::string line = json_lines ? std::string(text) : describe(n);
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    };
    handlers.on_close = [state](const Error& error) {
      std::lock_guard lock(state->mu);
      state->ended = true;
      state->close = error.message;
      state->changed.notify_all();
    };
    auto client = net::WebSocketClient::create(io.io_context(), url, std::move(handlers));
    if (!client) return fail("api.url: " + client.error().message);
    (*client)->connect();
    std::unique_lock lock(state->mu);
    while (!state->ended && !g_stop)
      state->changed.wait_for(lock, std::chrono::milliseconds(100));
    if (g_stop) {
      lock.unlock();
      (*client)->close();
      return kExitInterrupted;
    }
    if (state->close.rfind("closed by peer: 44", 0) == 0)
      return fail("the API refused the stream: " + state->close);
    if (state->opened) wait = kFirstReattachWait;
    std::fprintf(stderr, "infernet: notification stream lost (%s); re-attaching after %llu\n",
                 state->close.c_str(), static_cast<unsigned long long>(state->last_id));
    lock.unlock();
    for (auto slept = std::chrono::milliseconds(0); slept < wait && !g_stop;
         slept += std::chrono::milliseconds(100))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    wait = std::min<std::chrono::seconds>(wait * 2, kMaxReattachWait);
  }
}

void add_webhook_commands(CLI::App& app, CommandContext& ctx) {
  struct Options {
    std::string api;
    bool json = false;
    std::string url;
    std::string types;
    std::string secret;
    std::string id;
  };
  static Options opts;
  auto* webhook = app.add_subcommand("webhook", "Manage the node's webhooks (POSTs of notifications)");
  webhook->require_subcommand(1);
  auto common = [](CLI::App* cmd) {
    cmd->add_option("--api", opts.api,
                    "URL of the node's API (config api.url, default http://127.0.0.1:7448)");
    cmd->add_flag("--json", opts.json, "Print the API's JSON answer");
  };
  auto* add =
      webhook->add_subcommand("add", "Register a webhook; prints its id and secret (shown only once)");
  common(add);
  add->add_option("URL", opts.url, "http://host[:port]/path to POST notifications to")->required();
  add->add_option("--types", opts.types, "Comma-separated notification types (default: all)");
  add->add_option("--secret", opts.secret, "Signing secret, 16-256 characters (default: generated)");
  add->callback([&ctx] {
    json::object body{{"url", opts.url}};
    if (!opts.secret.empty()) body["secret"] = opts.secret;
    if (!opts.types.empty()) {
      json::array types;
      std::string_view rest = opts.types;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        types.emplace_back(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
      body["types"] = std::move(types);
    }
    ctx.exit_code =
        call(api_base(ctx, opts.api), "POST", "/api/v1/webhooks", json::serialize(body), opts.json,
             [](const json::value& w) {
               std::printf("webhook %s\nsecret %s\n", text_of(w, "id").c_str(), text_of(w, "secret").c_str());
             });
  });
  auto* list = webhook->add_subcommand("list", "List webhooks with their delivery state");
  common(list);
  list->callback([&ctx] {
    ctx.exit_code =
        call(api_base(ctx, opts.api), "GET", "/api/v1/webhooks", "", opts.json, [](const json::value& a) {
          for (const auto& w : a.at("webhooks").get_array())
            print_webhook(w);
        });
  });
  auto* remove = webhook->add_subcommand("remove", "Remove a webhook and its outbox");
  common(remove);
  remove->add_option("ID", opts.id, "Webhook id")->required();
  remove->callback([&ctx] {
    ctx.exit_code = call(api_base(ctx, opts.api), "DELETE", "/api/v1/webhooks/" + opts.id, "", opts.json,
                         [](const json::value&) { std::printf("removed %s\n", opts.id.c_str()); });
  });
  auto* enable = webhook->add_subcommand("enable", "Enable a disabled webhook again, from where it stopped");
  common(enable);
  enable->add_option("ID", opts.id, "Webhook id")->required();
  enable->callback([&ctx] {
    ctx.exit_code = call(api_base(ctx, opts.api), "POST", "/api/v1/webhooks/" + opts.id + "/enable", "",
                         opts.json, print_webhook);
  });
}

}  // namespace infernet::cli
