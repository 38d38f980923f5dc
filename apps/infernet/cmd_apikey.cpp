// infernet apikey create|list|revoke: the local API's keys (docs/api.md, "Authentication"). The commands work
// on the key file directly, so the node need not run; a running node sees the change at its next request.
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/api_keys.hpp"
#include "apps/infernet/command_context.hpp"
#include "core/clock.hpp"

namespace infernet::cli {
namespace {

constexpr int64_t kMaxExpiryDays = 36500;
constexpr int64_t kSecondsPerDay = 86400;

// The key file: api.keys_database, or <data_dir>/api_keys.db as the node opens it.
Result<std::unique_ptr<api::ApiKeyStore>> open_store(const CommandContext& ctx) {
  auto config = ctx.load_config();
  if (!config) return tl::unexpected(config.error());
  std::string path = config->get_string("api.keys_database");
  if (path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(config->data_dir(), ec);
    ::chmod(config->data_dir().c_str(), 0700);
    path = config->data_dir() + "/api_keys.db";
  }
  auto store = api::ApiKeyStore::open(path);
  if (!store) return tl::unexpected(with_context(store.error(), "api keys " + path));
  return store;
}

std::string utc(int64_t seconds, const char* none) {
  if (seconds == 0) return none;
  std::time_t t = seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%MZ", &tm);
  return buf;
}

boost::json::object record_json(const api::ApiKeyRecord& r) {
  boost::json::object o;
  o["id"] = r.id;
  o["name"] = r.name;
  o["scope"] = std::string(api::scope_name(r.scope));
  o["created_at"] = r.created_at;
  o["expires_at"] = r.expires_at;
  o["last_used_at"] = r.last_used_at;
  return o;
}

struct CreateOptions {
  std::string scope;
  std::string name;
  int64_t expires_in_days = 0;
  bool json = false;
};

int create_key(const CommandContext& ctx, const CreateOptions& opts) {
  auto scope = api::parse_scope("--scope", opts.scope);
  if (!scope) return fail(scope.error());
  if (opts.expires_in_days < 0 || opts.expires_in_days > kMaxExpiryDays) {
    return fail("--expires-in: must be from 1 to " + std::to_string(kMaxExpiryDays) +
                " days (0 or absent: never)");
  }
  auto store = open_store(ctx);
  if (!store) return fail(store.error());
  int64_t now = SystemClock().now_unix();
  int64_t expires_at = opts.expires_in_days == 0 ? 0 : now + opts.expires_in_days * kSecondsPerDay;
  auto made = (*store)->create(opts.name, *scope, now, expires_at);
  if (!made) return fail(made.error());
  if (opts.json) {
    boost::json::object o = record_json(made->record);
    o["key"] = made->secret;
    std::printf("%s\n", boost::json::serialize(o).c_str());
    return 0;
  }
  // The key alone on stdout, so `KEY=$(infernet apikey create ...)` works; the rest is for the person.
  std::printf("%s\n", made->secret.c_str());
  std::fprintf(stderr, "infernet: API key %s (scope %s, expires %s); it is shown only this once\n",
               made->record.id.c_str(), opts.scope.c_str(), utc(expires_at, "never").c_str());
  return 0;
}

int list_keys(const CommandContext& ctx, bool json) {
  auto store = open_store(ctx);
  if (!store) return fail(store.error());
  auto keys = (*store)->list();
  if (!keys) return fail(keys.error());
  if (json) {
    boost::json::array list;
    for (const auto& k : *keys)
      list.push_back(record_json(k));
    boost::json::object o;
    o["keys"] = std::move(list);
    std::printf("%s\n", boost::json::serialize(o).c_str());
    return 0;
  }
  std::printf("%-12s  %-20s  %-6s  %-17s  %-17s  %s\n", "ID", "NAME", "SCOPE", "CREATED", "EXPIRES",
              "LAST USED");
  for (const auto& k : *keys) {
    std::printf("%-12s  %-20s  %-6s  %-17s  %-17s  %s\n", k.id.c_str(), k.name.c_str(),
                std::string(api::scope_name(k.scope)).c_str(), utc(k.created_at, "-").c_str(),
                utc(k.expires_at, "never").c_str(), utc(k.last_used_at, "never").c_str());
  }
  return 0;
}

int revoke_key(const CommandContext& ctx, const std::string& id) {
  auto store = open_store(ctx);
  if (!store) return fail(store.error());
  if (auto st = (*store)->revoke(id); !st) return fail(st.error());
  std::printf("revoked %s\n", id.c_str());
  return 0;
}

}  // namespace

void add_apikey_commands(CLI::App& app, CommandContext& ctx) {
  auto* apikey =
      app.add_subcommand("apikey", "Manage the local API's keys (stored hashed in the data directory)");
  apikey->require_subcommand(1);

  static CreateOptions create_opts;
  auto* create = apikey->add_subcommand("create", "Create a key and print it (shown only once)");
  create->add_option("--scope", create_opts.scope, "read (GET requests and streams) or submit (everything)")
      ->required();
  create->add_option("--name", create_opts.name, "A label for `apikey list` (up to 64 bytes)");
  create->add_option("--expires-in", create_opts.expires_in_days,
                     "Days until the key stops working (default: never)");
  create->add_flag("--json", create_opts.json,
                   "Print {id, key, name, scope, created_at, expires_at} as JSON");
  create->callback([&ctx] { ctx.exit_code = create_key(ctx, create_opts); });

  static bool list_json = false;
  auto* list = apikey->add_subcommand(
      "list", "List keys: id, name, scope, created, expires, last used (never the key)");
  list->add_flag("--json", list_json, "Print {\"keys\": [...]} with Unix-second times (0: never)");
  list->callback([&ctx] { ctx.exit_code = list_keys(ctx, list_json); });

  static std::string revoke_id;
  auto* revoke =
      apikey->add_subcommand("revoke", "Revoke a key by its id; a running node refuses it at once");
  revoke->add_option("id", revoke_id, "The key's id (from `apikey list`)")->required();
  revoke->callback([&ctx] { ctx.exit_code = revoke_key(ctx, revoke_id); });
}

}  // namespace infernet::cli
