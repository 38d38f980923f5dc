// infernet reserve --provider NPUB --slots N --hours H, and infernet reservations: clients of the local
// node's API (docs/api.md, "Reservations").
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <thread>

#include <boost/json.hpp>

#include "apps/infernet/command_context.hpp"
#include "net/http_client.hpp"

namespace infernet::cli {
namespace {

namespace json = boost::json;

constexpr auto kRequestTimeout = std::chrono::seconds(30);
constexpr auto kPoll = std::chrono::milliseconds(200);

struct Api {
  std::string base;
  std::string key;  // config api.key, sent as a Bearer token
};

Api api_of(const CommandContext& ctx, const std::string& api) {
  Api out;
  auto config = ctx.load_config();
  if (config) out.key = config->get_string("api.key");
  out.base = !api.empty() ? api : config ? config->get_string("api.url") : "";
  return out;
}

// One request; the JSON answer, or the API's error message.
Result<json::value> request(const Api& api, std::string_view method, const std::string& target,
                            const std::string& body) {
  net::HttpClientOptions options;
  options.timeout = kRequestTimeout;
  if (!api.key.empty()) options.headers.emplace_back("Authorization", "Bearer " + api.key);
  auto client = net::HttpClient::create(api.base, options);
  if (!client) return make_error(ErrorCode::kInvalidInput, "api.url: " + client.error().message);
  auto response = client->request(method, target, body);
  if (!response) return make_error(ErrorCode::kIo, "API at " + api.base + ": " + response.error().message);
  boost::system::error_code ec;
  json::value answer = json::parse(response->body, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "the API answered " + std::to_string(response->status) + ": " +
                                          response->body.substr(0, 200));
  }
  if (response->status < 200 || response->status > 299) {
    const json::value* error = answer.is_object() ? answer.get_object().if_contains("error") : nullptr;
    const json::value* message =
        error != nullptr && error->is_object() ? error->get_object().if_contains("message") : nullptr;
    return make_error(ErrorCode::kInvalidInput, message != nullptr && message->is_string()
                                                    ? std::string(message->get_string())
                                                    : response->body.substr(0, 200));
  }
  return answer;
}

std::string field(const json::value& o, std::string_view key) {
  const json::value* v = o.is_object() ? o.get_object().if_contains(key) : nullptr;
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_number()) return json::serialize(*v);
  return "";
}

std::string utc(const std::string& unix_seconds) {
  if (unix_seconds.empty()) return "";
  const auto t = static_cast<std::time_t>(std::stoll(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void print_reservation(const json::value& r) {
  std::string line = field(r, "id") + " " + field(r, "state") + " " + field(r, "npub") +
                     " slots=" + field(r, "slots") + " hours=" + field(r, "hours");
  if (field(r, "state") == "accepted") {
    line += " from " + utc(field(r, "start")) + " to " + utc(field(r, "end")) +
            " discount=" + field(r, "discount_percent") + "%";
  }
  if (!field(r, "reason").empty()) line += " (" + field(r, "reason") + ")";
  std::printf("%s\n", line.c_str());
}

}  // namespace

void add_reservation_commands(CLI::App& app, CommandContext& ctx) {
  struct Options {
    std::string api;
    bool json = false;
    std::string provider;
    uint32_t slots = 1;
    uint32_t hours = 1;
    uint32_t wait_seconds = 10;
  };
  static Options opts;
  auto* reserve = app.add_subcommand(
      "reserve", "Reserve slots with a provider at its announced discount; waits for its answer");
  reserve->add_option("--api", opts.api,
                      "URL of the node's API (config api.url, default http://127.0.0.1:7448)");
  reserve->add_flag("--json", opts.json, "Print the API's JSON answer");
  reserve->add_option("--provider", opts.provider, "The provider (npub or hex)")->required();
  reserve->add_option("--slots", opts.slots, "Slots to hold (default 1)");
  reserve->add_option("--hours", opts.hours, "Hours to hold them, from now (default 1)");
  reserve->add_option("--wait", opts.wait_seconds,
                      "Seconds to wait for the answer (default 10; 0: do not wait)");
  reserve->callback([&ctx] {
    const Api api = api_of(ctx, opts.api);
    json::object body{{"provider", opts.provider}, {"slots", opts.slots}, {"hours", opts.hours}};
    auto made = request(api, "POST", "/api/v1/reservations", json::serialize(body));
    if (!made) {
      ctx.exit_code = fail(made.error());
      return;
    }
    json::value current = *made;
    const std::string id = field(current, "id");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(opts.wait_seconds);
    while (field(current, "state") == "requested" && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(kPoll);
      auto list = request(api, "GET", "/api/v1/reservations", "");
      if (!list) {
        ctx.exit_code = fail(list.error());
        return;
      }
      for (const auto& r : list->at("reservations").get_array()) {
        if (field(r, "id") == id) current = r;
      }
    }
    if (opts.json) {
      std::printf("%s\n", json::serialize(current).c_str());
    } else {
      print_reservation(current);
    }
    // Refused is a failed operation; still "requested" after the wait is not (the answer may come later).
    ctx.exit_code = field(current, "state") == "refused" ? kExitFailure : 0;
  });
  auto* list = app.add_subcommand("reservations", "List reservations, newest first, as providers answered");
  list->add_option("--api", opts.api,
                   "URL of the node's API (config api.url, default http://127.0.0.1:7448)");
  list->add_flag("--json", opts.json, "Print the API's JSON answer");
  list->callback([&ctx] {
    auto answer = request(api_of(ctx, opts.api), "GET", "/api/v1/reservations", "");
    if (!answer) {
      ctx.exit_code = fail(answer.error());
      return;
    }
    if (opts.json) {
      std::printf("%s\n", json::serialize(*answer).c_str());
      return;
    }
    for (const auto& r : answer->at("reservations").get_array())
      print_reservation(r);
  });
}

}  // namespace infernet::cli
