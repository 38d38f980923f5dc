// The OpenAPI document against the routes the API really serves: it parses, its references resolve, every
// route is documented and every documented route is served, with the methods each path allows.
#include "api/openapi.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "api/api.hpp"
#include "api/fake_consumer.hpp"

namespace infernet::api {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// Every route the API answers: (method, path as the document writes it, a concrete target to probe). A route
// added to the code belongs here and in src/api/openapi.json; the tests below fail until both agree.
struct Route {
  std::string method;
  std::string path;
  std::string target;
};

const std::string kBlob(64, 'e');

const std::vector<Route>& served_routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", "/api/v1/jobs", "/api/v1/jobs"},
      {"POST", "/api/v1/jobs", "/api/v1/jobs"},
      {"GET", "/api/v1/jobs/{id}", "/api/v1/jobs/job1"},
      {"POST", "/api/v1/jobs/{id}/cancel", "/api/v1/jobs/job1/cancel"},
      {"GET", "/api/v1/jobs/{id}/events", "/api/v1/jobs/job1/events"},
      {"GET", "/api/v1/jobs/{id}/result", "/api/v1/jobs/job1/result"},
      {"GET", "/api/v1/jobs/{id}/stream", "/api/v1/jobs/job1/stream"},
      {"GET", "/api/v1/jobs/{id}/why", "/api/v1/jobs/job1/why"},
      {"POST", "/api/v1/estimate", "/api/v1/estimate"},
      {"GET", "/api/v1/budget", "/api/v1/budget"},
      {"GET", "/api/v1/reservations", "/api/v1/reservations"},
      {"POST", "/api/v1/reservations", "/api/v1/reservations"},
      {"GET", "/api/v1/models", "/api/v1/models"},
      {"GET", "/api/v1/models/{name}", "/api/v1/models/tiny"},
      {"GET", "/api/v1/providers", "/api/v1/providers"},
      {"GET", "/api/v1/openapi.json", "/api/v1/openapi.json"},
      {"GET", "/api/v1/notifications", "/api/v1/notifications"},
      {"GET", "/api/v1/notifications/stream", "/api/v1/notifications/stream"},
      {"GET", "/api/v1/webhooks", "/api/v1/webhooks"},
      {"POST", "/api/v1/webhooks", "/api/v1/webhooks"},
      {"DELETE", "/api/v1/webhooks/{id}", "/api/v1/webhooks/1"},
      {"POST", "/api/v1/webhooks/{id}/enable", "/api/v1/webhooks/1/enable"},
      {"PUT", "/upload", "/upload"},
      {"GET", "/{sha256}", "/" + kBlob},
      {"HEAD", "/{sha256}", "/" + kBlob},
      {"DELETE", "/{sha256}", "/" + kBlob},
      {"GET", "/v1/models", "/v1/models"},
      {"GET", "/v1/models/{model}", "/v1/models/tiny"},
      {"POST", "/v1/chat/completions", "/v1/chat/completions"},
      {"POST", "/v1/completions", "/v1/completions"},
  };
  return kRoutes;
}

// WebSocket endpoints answer a plain request with 426 whatever its method.
bool is_websocket(const std::string& path) {
  return path.ends_with("/stream");
}

std::string upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

json::value document() {
  boost::system::error_code ec;
  json::value doc = json::parse(openapi_document(), ec);
  EXPECT_FALSE(ec) << "openapi.json does not parse: " << ec.message();
  return doc;
}

// (METHOD, path) pairs the document describes.
std::set<std::pair<std::string, std::string>> documented_routes(const json::value& doc) {
  static const std::set<std::string> kMethods = {"get",     "put",  "post",  "delete",
                                                 "options", "head", "patch", "trace"};
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [key, operation] : item.as_object()) {
      if (kMethods.count(std::string(key)) != 0) out.emplace(upper(std::string(key)), std::string(path));
    }
  }
  return out;
}

// Resolves a local JSON pointer ("#/components/schemas/Job"), or returns nullptr.
const json::value* resolve(const json::value& doc, std::string_view ref) {
  if (!ref.starts_with("#/")) return nullptr;
  const json::value* at = &doc;
  std::string_view rest = ref.substr(2);
  while (at != nullptr) {
    const size_t slash = rest.find('/');
    std::string token(rest.substr(0, slash));
    for (size_t i; (i = token.find("~1")) != std::string::npos;)
      token.replace(i, 2, "/");
    for (size_t i; (i = token.find("~0")) != std::string::npos;)
      token.replace(i, 2, "~");
    const json::object* object = at->if_object();
    at = object != nullptr && object->contains(token) ? &object->at(token) : nullptr;
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return at;
}

void collect_refs(const json::value& v, std::vector<std::string>& out) {
  if (const auto* o = v.if_object()) {
    for (const auto& [key, member] : *o) {
      if (key == "$ref" && member.is_string()) out.emplace_back(member.as_string());
      collect_refs(member, out);
    }
  } else if (const auto* a = v.if_array()) {
    for (const auto& item : *a)
      collect_refs(item, out);
  }
}

TEST(OpenApi, IsAnOpenApi31DocumentWhoseReferencesAllResolve) {
  json::value doc = document();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(std::string(doc.at("openapi").as_string()).substr(0, 4), "3.1.");
  EXPECT_TRUE(doc.at("info").as_object().contains("title"));
  const auto& schemes = doc.at("components").at("securitySchemes").as_object();
  EXPECT_EQ(schemes.at("apiKey").at("scheme"), "bearer");
  EXPECT_EQ(schemes.at("nip98").at("name"), "Authorization");
  EXPECT_TRUE(doc.at("components").at("schemas").as_object().contains("Error"));
  std::vector<std::string> refs;
  collect_refs(doc, refs);
  EXPECT_GT(refs.size(), 50u);
  for (const auto& ref : refs)
    EXPECT_NE(resolve(doc, ref), nullptr) << "unresolved $ref " << ref;
  // Every operation documents a success answer.
  for (const auto& [method, path] : documented_routes(doc)) {
    std::string key = method;
    for (char& c : key)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto& responses = doc.at("paths").at(path).at(key).at("responses").as_object();
    const bool success = std::any_of(responses.begin(), responses.end(), [](const auto& r) {
      return r.key().starts_with("2") || r.key() == "101";
    });
    EXPECT_TRUE(success) << method << " " << path;
  }
}

TEST(OpenApi, DocumentsExactlyTheRoutesTheTableLists) {
  json::value doc = document();
  std::set<std::pair<std::string, std::string>> table;
  for (const auto& r : served_routes())
    table.emplace(r.method, r.path);
  const auto documented = documented_routes(doc);
  for (const auto& route : table)
    EXPECT_EQ(documented.count(route), 1u)
        << route.first << " " << route.second << " is served, not documented";
  for (const auto& route : documented)
    EXPECT_EQ(table.count(route), 1u) << route.first << " " << route.second << " is documented, not served";
}

class OpenApiRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-openapi-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    notify::WebhooksOptions wo;
    wo.database = (dir_ / "webhooks.db").string();
    wo.sender = [](const notify::Delivery&) -> Result<int> { return 200; };
    auto webhooks = notify::Webhooks::open(consumer_, wo);
    ASSERT_TRUE(webhooks) << webhooks.error().to_string();
    webhooks_ = std::move(*webhooks);
    ApiOptions options;
    options.blob_dir = (dir_ / "blobs").string();
    options.webhooks = webhooks_.get();
    handlers_ = make_handlers(consumer_, options);
  }
  void TearDown() override {
    handlers_ = {};
    webhooks_.reset();
    fs::remove_all(dir_);
  }

  net::HttpResponse send(const std::string& method, const std::string& target) {
    net::HttpRequest request;
    request.method = method;
    request.target = target;
    request.remote_address = "127.0.0.1";
    request.headers["host"] = "127.0.0.1:7448";
    return handlers_.http(request);
  }

  fs::path dir_;
  testing::FakeConsumerNode consumer_;
  std::unique_ptr<notify::Webhooks> webhooks_;
  net::ServerHandlers handlers_;
};

// Each listed route reaches its handler: never "no such endpoint", never 405.
TEST_F(OpenApiRoutes, EveryListedRouteIsServed) {
  for (const auto& r : served_routes()) {
    auto response = send(r.method, r.target);
    EXPECT_NE(response.status, 405) << r.method << " " << r.target << ": " << response.body;
    EXPECT_EQ(response.body.find("no such endpoint"), std::string::npos)
        << r.method << " " << r.target << ": " << response.body;
    if (is_websocket(r.path)) EXPECT_EQ(response.status, 426) << r.target;
  }
}

// A method a path does not serve gets 405 whose Allow header names exactly the documented methods, so a
// method added to a path without documenting it fails here.
TEST_F(OpenApiRoutes, AllowHeadersMatchTheDocumentedMethods) {
  json::value doc = document();
  std::map<std::string, std::set<std::string>> methods_by_path;
  for (const auto& [method, path] : documented_routes(doc))
    methods_by_path[path].insert(method);
  std::map<std::string, std::string> target_of;
  for (const auto& r : served_routes())
    target_of[r.path] = r.target;
  for (const auto& [path, methods] : methods_by_path) {
    if (is_websocket(path)) continue;
    ASSERT_EQ(target_of.count(path), 1u) << path;
    auto response = send("PATCH", target_of[path]);
    ASSERT_EQ(response.status, 405) << path << ": " << response.body;
    std::string allow;
    for (const auto& [name, value] : response.headers) {
      if (upper(name) == "ALLOW") allow = value;
    }
    std::set<std::string> allowed;
    std::stringstream list(allow);
    for (std::string item; std::getline(list, item, ',');) {
      item.erase(0, item.find_first_not_of(' '));
      allowed.insert(item);
    }
    EXPECT_EQ(allowed, methods) << path << " allows " << allow;
  }
}

// Each path word the routers compare a request with appears in some documented path: a new
// `rest == "things"` branch fails here until "things" is documented.
TEST(OpenApi, EveryPathWordTheRoutersMatchIsDocumented) {
  json::value doc = document();
  std::vector<std::string> paths;
  for (const auto& [path, item] : doc.at("paths").as_object())
    paths.emplace_back(path);
  const std::regex compared(R"re(\b(rest|action|path|tail)\s*[!=]=\s*"([^"]+)")re");
  const std::regex prefixed(R"re(\b(rest|path)\.starts_with\("([^"]+)"\))re");
  size_t words = 0;
  for (const char* file : {"routes.cpp", "market.cpp", "market_routes.cpp", "notification_api.cpp",
                           "openai.cpp", "blob_routes.cpp", "reservation_api.cpp"}) {
    std::ifstream in(fs::path(INFERNET_SOURCE_DIR) / "src" / "api" / file);
    ASSERT_TRUE(in) << file;
    std::stringstream text;
    text << in.rdbuf();
    const std::string source = text.str();
    for (const std::regex& pattern : {compared, prefixed}) {
      for (auto it = std::sregex_iterator(source.begin(), source.end(), pattern);
           it != std::sregex_iterator(); ++it) {
        std::string word = (*it)[2];
        while (!word.empty() && word.back() == '/')
          word.pop_back();
        if (word.empty()) continue;
        ++words;
        const bool documented = std::any_of(paths.begin(), paths.end(),
                                            [&](const std::string& p) { return p.find(word) != p.npos; });
        EXPECT_TRUE(documented) << file << " routes \"" << word << "\", which no documented path contains";
      }
    }
  }
  EXPECT_GT(words, 15u) << "the scan found too few route words; did the routers' style change?";
}

}  // namespace
}  // namespace infernet::api
