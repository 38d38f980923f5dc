#include "api/api.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "api/fake_consumer.hpp"
#include "net/http_client.hpp"
#include "net/io_pool.hpp"
#include "net/net_testing.hpp"
#include "net/websocket_client.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;
using consumer::JobState;
using net::testing::ClientEvents;

json::value parse(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  EXPECT_FALSE(ec) << body;
  return v;
}

// The error object of an error response, checked for the common shape.
json::object error_of(const net::HttpResponse& response) {
  json::value v = parse(response.body);
  EXPECT_TRUE(v.is_object() && v.as_object().contains("error")) << response.body;
  return v.as_object()["error"].as_object();
}

std::string field_of_error(const net::HttpResponse& response) {
  json::object e = error_of(response);
  return e.contains("field") ? std::string(e["field"].as_string()) : "";
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    options.api.now_ms = [this] { return consumer_.now_ms(); };
    server_ = std::make_unique<ApiServer>(consumer_, options);
    ASSERT_TRUE(server_->start());
    auto client = net::HttpClient::create(server_->url());
    ASSERT_TRUE(client) << client.error().message;
    client_ = std::make_unique<net::HttpClient>(std::move(*client));
    io_.start();
  }
  void TearDown() override {
    server_->stop();
    io_.stop();
  }

  net::HttpResponse get(const std::string& target) {
    auto r = client_->get(target);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : net::HttpResponse{};
  }
  net::HttpResponse post(const std::string& target, const std::string& body) {
    auto r = client_->post(target, body);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : net::HttpResponse{};
  }
  std::string create_job(const std::string& body = R"({"model":"tiny","prompt":"hi"})") {
    auto r = post("/api/v1/jobs", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(parse(r.body).at("id").as_string());
  }

  // A stream client on /api/v1/jobs/{id}/stream?after=N.
  std::shared_ptr<ClientEvents> stream(const std::string& job_id, uint64_t after,
                                       std::shared_ptr<net::WebSocketClient>* out = nullptr) {
    auto events = std::make_shared<ClientEvents>();
    std::string url = "ws://127.0.0.1:" + std::to_string(server_->port()) + "/api/v1/jobs/" + job_id +
                      "/stream?after=" + std::to_string(after);
    auto client = net::WebSocketClient::create(io_.io_context(), url, ClientEvents::handlers(events));
    EXPECT_TRUE(client) << client.error().message;
    (*client)->connect();
    if (out) *out = *client;
    return events;
  }

  std::vector<json::object> messages(ClientEvents& events) {
    std::lock_guard lock(events.mu);
    std::vector<json::object> out;
    for (const auto& m : events.messages)
      out.push_back(parse(m).as_object());
    return out;
  }

  testing::FakeConsumerNode consumer_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<net::HttpClient> client_;
  net::IoPool io_{1};
};

TEST_F(ApiTest, CreateAnswers201WithTheJob) {
  auto r = post("/api/v1/jobs",
                R"({"model":"tiny","prompt":"hello","max_tokens":32,"temperature":0.5,"seed":7,)"
                R"("max_cost_msat":900,"priority":"high","deadline":1800000000,"provider":"npub1x",)"
                R"("open_quotes":true,"client_request_id":"r1"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  json::object job = parse(r.body).as_object();
  std::string id(job["id"].as_string());
  EXPECT_EQ(id, "job1");
  EXPECT_EQ(job["state"], "submitted");
  EXPECT_EQ(job["model"], "tiny");
  EXPECT_EQ(job["prompt"], "hello");
  EXPECT_EQ(job["max_tokens"].to_number<int>(), 32);
  EXPECT_DOUBLE_EQ(job["temperature"].to_number<double>(), 0.5);
  EXPECT_EQ(job["seed"].to_number<int>(), 7);
  EXPECT_EQ(job["max_cost_msat"].to_number<int>(), 900);
  EXPECT_EQ(job["priority"], "high");
  EXPECT_EQ(job["deadline"].to_number<int64_t>(), 1800000000);
  EXPECT_EQ(job["provider"], "npub1x");
  EXPECT_EQ(job["open_quotes"], true);
  EXPECT_EQ(job["client_request_id"], "r1");
  EXPECT_EQ(job["usage"].as_object()["output_tokens"].to_number<int>(), 0);
  EXPECT_EQ(job["created_at"].to_number<int64_t>(), consumer_.now_ms());
  bool located = false;
  for (const auto& [name, value] : r.headers)
    located |= name == "location" && value == "/api/v1/jobs/" + id;
  EXPECT_TRUE(located);

  auto fetched = get("/api/v1/jobs/" + id);
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(parse(fetched.body), parse(r.body));
}

TEST_F(ApiTest, RepeatedClientRequestIdAnswers200WithTheSameJob) {
  const std::string body = R"({"model":"tiny","prompt":"hi","client_request_id":"abc"})";
  auto first = post("/api/v1/jobs", body);
  ASSERT_EQ(first.status, 201) << first.body;
  consumer_.set_now_ms(consumer_.now_ms() + 60'000);
  auto again = post("/api/v1/jobs", body);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(parse(again.body).at("id"), parse(first.body).at("id"));

  // Another request id is another job.
  auto other = post("/api/v1/jobs", R"({"model":"tiny","prompt":"hi","client_request_id":"abd"})");
  EXPECT_EQ(other.status, 201);
  EXPECT_NE(parse(other.body).at("id"), parse(first.body).at("id"));
}

TEST_F(ApiTest, CreateRefusesUnknownFieldsAndWrongTypesNamingTheField) {
  struct Case {
    std::string body;
    std::string field;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"model":"tiny","prompt":"hi","max_tokenz":5})", "max_tokenz"},
           {R"({"model":5,"prompt":"hi"})", "model"},
           {R"({"model":"tiny","prompt":["hi"]})", "prompt"},
           {R"({"model":"tiny","prompt":"hi","max_tokens":"ten"})", "max_tokens"},
           {R"({"model":"tiny","prompt":"hi","max_tokens":-1})", "max_tokens"},
           {R"({"model":"tiny","prompt":"hi","max_tokens":4294967296})", "max_tokens"},
           {R"({"model":"tiny","prompt":"hi","max_tokens":1.5})", "max_tokens"},
           {R"({"model":"tiny","prompt":"hi","temperature":"hot"})", "temperature"},
           {R"({"model":"tiny","prompt":"hi","seed":-3})", "seed"},
           {R"({"model":"tiny","prompt":"hi","deadline":"soon"})", "deadline"},
           {R"({"model":"tiny","prompt":"hi","open_quotes":1})", "open_quotes"},
           {R"({"model":"tiny","prompt":"hi","priority":2})", "priority"},
           {R"({"model":"tiny","prompt":"hi","unknown":null})", "unknown"},
       }) {
    auto r = post("/api/v1/jobs", c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_EQ(error_of(r)["code"], "invalid_input") << c.body;
    EXPECT_EQ(field_of_error(r), c.field) << c.body << " -> " << r.body;
  }
  auto not_json = post("/api/v1/jobs", "{\"model\":");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(field_of_error(not_json), "");
  EXPECT_NE(std::string(error_of(not_json)["message"].as_string()).find("request body"), std::string::npos);
  EXPECT_EQ(post("/api/v1/jobs", "[1,2]").status, 400);

  auto odd_name = post("/api/v1/jobs", R"({"model":"tiny","prompt":"hi","we ird":1})");
  EXPECT_EQ(odd_name.status, 400);
  EXPECT_EQ(field_of_error(odd_name), "");
  EXPECT_TRUE(consumer_.list({})->empty()) << "a refused request must store nothing";
}

TEST_F(ApiTest, ConsumerValidationErrorsAre400WithTheField) {
  auto r = post("/api/v1/jobs", R"({"model":"tiny","prompt":"hi","max_tokens":0})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(field_of_error(r), "max_tokens");
  EXPECT_EQ(error_of(r)["message"], "max_tokens: must be from 1 to 65536");

  // null is "not given": the default max_tokens passes, and a missing model is the consumer's to report.
  auto nulls = post("/api/v1/jobs", R"({"model":null,"prompt":"hi","max_tokens":null})");
  EXPECT_EQ(nulls.status, 400);
  EXPECT_EQ(field_of_error(nulls), "model");
}

TEST_F(ApiTest, UnknownJobsAndPathsAre404AndBadIds400) {
  auto r = get("/api/v1/jobs/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r)["code"], "not_found");
  EXPECT_EQ(post("/api/v1/jobs/nope/cancel", "").status, 404);
  EXPECT_EQ(get("/api/v1/jobs/nope/events").status, 404);
  EXPECT_EQ(get("/api/v1/jobs/nope/result").status, 404);
  EXPECT_EQ(get("/api/v1/nothing").status, 404);
  EXPECT_EQ(get("/api/v1/jobs/x/else").status, 404);
  EXPECT_EQ(get("/other").status, 404);

  auto bad_id = get("/api/v1/jobs/a%20b");
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_EQ(field_of_error(bad_id), "id");
  EXPECT_EQ(get("/api/v1/jobs/" + std::string(200, 'a')).status, 400);
}

TEST_F(ApiTest, WrongMethodsAre405WithAllow) {
  auto r = client_->del("/api/v1/jobs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  bool allow = false;
  for (const auto& [name, value] : r->headers)
    allow |= name == "allow" && value == "GET, POST";
  EXPECT_TRUE(allow);
  std::string id = create_job();
  EXPECT_EQ(get("/api/v1/jobs/" + id + "/cancel").status, 405);
  EXPECT_EQ(post("/api/v1/jobs/" + id, "{}").status, 405);
  EXPECT_EQ(post("/api/v1/providers", "{}").status, 405);
  EXPECT_EQ(get("/api/v1/jobs/" + id + "/stream").status, 426);
}

TEST_F(ApiTest, ListFiltersByStateModelTimeAndLimit) {
  std::string a = create_job(R"({"model":"alpha","prompt":"1"})");
  consumer_.set_now_ms(consumer_.now_ms() + 1000);
  std::string b = create_job(R"({"model":"beta","prompt":"2"})");
  consumer_.set_now_ms(consumer_.now_ms() + 1000);
  std::string c = create_job(R"({"model":"alpha","prompt":"3"})");
  consumer_.set_state(c, JobState::kCompleted, "done");
  int64_t b_time = parse(get("/api/v1/jobs/" + b).body).at("created_at").to_number<int64_t>();

  auto ids = [&](const std::string& query) {
    auto r = get("/api/v1/jobs" + query);
    EXPECT_EQ(r.status, 200) << query << " " << r.body;
    std::vector<std::string> out;
    json::value body = parse(r.body);
    for (const auto& job : body.at("jobs").as_array())
      out.emplace_back(job.at("id").as_string());
    return out;
  };
  EXPECT_EQ(ids(""), (std::vector<std::string>{c, b, a}));  // newest first
  EXPECT_EQ(ids("?state=completed"), (std::vector<std::string>{c}));
  EXPECT_EQ(ids("?model=alpha"), (std::vector<std::string>{c, a}));
  EXPECT_EQ(ids("?model=alpha&state=submitted"), (std::vector<std::string>{a}));
  EXPECT_EQ(ids("?since=" + std::to_string(b_time)), (std::vector<std::string>{c, b}));
  EXPECT_EQ(ids("?until=" + std::to_string(b_time)), (std::vector<std::string>{b, a}));
  EXPECT_EQ(ids("?limit=1"), (std::vector<std::string>{c}));
  EXPECT_EQ(consumer_.last_query().limit, 2u) << "one row past the page tells whether more exist";
  EXPECT_EQ(ids("?order=asc"), (std::vector<std::string>{a, b, c}));
  EXPECT_EQ(ids("?state="), (std::vector<std::string>{c, b, a})) << "an empty value is no filter";

  for (const auto& [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"?state=done", "state"},
           {"?limit=0", "limit"},
           {"?limit=1001", "limit"},
           {"?limit=ten", "limit"},
           {"?since=-5", "since"},
           {"?until=1e9", "until"},
           {"?colour=red", "colour"},
           {"?state=running&state=failed", "state"},
           {"?state=%zz", "state"},
           {"?order=newest", "order"},
           {"?cursor=abc", "cursor"},
           {"?cursor=12.", "cursor"},
           {"?cursor=.job1", "cursor"},
           {"?cursor=-1.job1", "cursor"},
           {"?cursor=12.job%2F1", "cursor"},
           {"?cursor=99999999999999999999.job1", "cursor"},
       }) {
    auto r = get("/api/v1/jobs" + query);
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_EQ(field_of_error(r), field) << query << " -> " << r.body;
  }
}

// 25 jobs, pages of 10, both orders: every job once, in order; next_cursor is null on the last page; a job
// submitted while paging does not shift the pages of a newest-first walk.
TEST_F(ApiTest, ListPagesWithACursor) {
  // Pairs share a millisecond, so pages split ties, which the id orders ("job10" < "job9").
  std::vector<std::pair<int64_t, std::string>> by_position;
  for (int i = 0; i < 25; ++i) {
    if (i % 2 == 0) consumer_.set_now_ms(consumer_.now_ms() + 1);
    by_position.emplace_back(consumer_.now_ms(), create_job());
  }
  std::sort(by_position.begin(), by_position.end());
  std::vector<std::string> created;
  for (const auto& [at, id] : by_position)
    created.push_back(id);
  std::string late;
  for (const std::string order : {"desc", "asc"}) {
    std::vector<std::string> seen;
    std::vector<size_t> sizes;
    std::string cursor;
    for (int page = 0; page < 5; ++page) {
      auto r = get("/api/v1/jobs?limit=10&order=" + order + (cursor.empty() ? "" : "&cursor=" + cursor));
      ASSERT_EQ(r.status, 200) << r.body;
      json::value body = parse(r.body);
      sizes.push_back(body.at("jobs").as_array().size());
      for (const auto& job : body.at("jobs").as_array())
        seen.emplace_back(job.at("id").as_string());
      if (body.at("next_cursor").is_null()) break;
      cursor = std::string(body.at("next_cursor").as_string());
      if (order == "desc" && page == 0) {
        consumer_.set_now_ms(consumer_.now_ms() + 1);
        late = create_job();
      }
    }
    std::vector<std::string> want = created;
    if (order == "desc") {
      std::reverse(want.begin(), want.end());
      EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5}));
    } else {
      want.push_back(late);  // oldest first reaches the job added meanwhile
      EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 6}));
    }
    EXPECT_EQ(seen, want) << order;
  }
  // Exactly one page: no cursor, since nothing is left.
  auto one = parse(get("/api/v1/jobs?limit=26&order=asc").body);
  EXPECT_EQ(one.at("jobs").as_array().size(), 26u);
  EXPECT_TRUE(one.at("next_cursor").is_null());
}

TEST_F(ApiTest, CancelReturnsTheCanceledJob) {
  std::string id = create_job();
  auto r = post("/api/v1/jobs/" + id + "/cancel", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r.body).at("state"), "canceled");
  EXPECT_EQ(parse(get("/api/v1/jobs/" + id).body).at("state"), "canceled");
}

TEST_F(ApiTest, EventsAfterN) {
  std::string id = create_job();
  consumer_.push_event(id, "note", R"({"message":"provider p skipped: busy"})");
  consumer_.push_event(id, "progress", R"({"text":"Hel","tokens":1})");
  auto all = parse(get("/api/v1/jobs/" + id + "/events").body).at("events").as_array();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].at("seq").to_number<int>(), 1);
  EXPECT_EQ(all[0].at("type"), "state");
  EXPECT_EQ(all[0].at("data").at("state"), "submitted");
  EXPECT_EQ(all[2].at("data").at("text"), "Hel");
  EXPECT_EQ(all[2].at("job_id"), id.c_str());

  auto after = parse(get("/api/v1/jobs/" + id + "/events?after=2").body).at("events").as_array();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].at("seq").to_number<int>(), 3);
  EXPECT_TRUE(parse(get("/api/v1/jobs/" + id + "/events?after=3").body).at("events").as_array().empty());
  auto bad = get("/api/v1/jobs/" + id + "/events?after=x");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(field_of_error(bad), "after");
}

TEST_F(ApiTest, ResultIs409UntilTheJobIsFinal) {
  std::string id = create_job();
  auto early = get("/api/v1/jobs/" + id + "/result");
  EXPECT_EQ(early.status, 409);
  EXPECT_EQ(error_of(early)["code"], "not_final");
  consumer_.set_state(id, JobState::kCompleted, "Hello world");
  auto done = get("/api/v1/jobs/" + id + "/result");
  ASSERT_EQ(done.status, 200) << done.body;
  json::value result = parse(done.body);
  EXPECT_EQ(result.at("state"), "completed");
  EXPECT_EQ(result.at("output"), "Hello world");
  EXPECT_EQ(result.at("usage").at("input_tokens").to_number<int>(), 5);
  EXPECT_EQ(result.at("cost_msat").to_number<int>(), 42);
  EXPECT_EQ(result.at("error"), "");
}

TEST_F(ApiTest, ProvidersAndModels) {
  consumer::ProviderRecord p;
  p.pubkey = std::string(64, 'a');
  p.name = "gpu-box";
  p.alive = true;
  p.announcement.models.push_back(
      protocol::ModelInfo{"tiny", "", "fake", 1000, "", 512, "fake", {"text-generation"}});
  p.announcement.prices.per_1k_output_msat = 2000;
  consumer_.add_provider(p);
  consumer_.add_model(consumer::ModelSummary{"tiny", {p.pubkey}, 2000});

  auto providers = parse(get("/api/v1/providers").body).at("providers").as_array();
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0].at("pubkey"), p.pubkey.c_str());
  EXPECT_EQ(std::string(providers[0].at("npub").as_string()).substr(0, 5), "npub1");
  EXPECT_EQ(providers[0].at("name"), "gpu-box");
  EXPECT_EQ(providers[0].at("alive"), true);
  EXPECT_EQ(providers[0].at("models").at(0).at("name"), "tiny");
  EXPECT_EQ(providers[0].at("prices").at("per_1k_output_msat").to_number<int>(), 2000);

  auto models = parse(get("/api/v1/models").body).at("models").as_array();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].at("name"), "tiny");
  EXPECT_EQ(models[0].at("providers").at(0), p.pubkey.c_str());
  EXPECT_EQ(models[0].at("min_price_per_1k_output_msat").to_number<int>(), 2000);
}

TEST_F(ApiTest, TheAccountBudgetIsShownAndAJobOverItIsRefusedWith402) {
  consumer_.set_budget({{"daily", 1000, 600, 100, 300, 1764115200}, {"monthly", 0, 600, 100, 0, 1764547200}});
  auto r = get("/api/v1/budget");
  ASSERT_EQ(r.status, 200) << r.body;
  auto b = parse(r.body);
  EXPECT_EQ(b.at("daily").at("limit_msat").to_number<int>(), 1000);
  EXPECT_EQ(b.at("daily").at("spent_msat").to_number<int>(), 600);
  EXPECT_EQ(b.at("daily").at("reserved_msat").to_number<int>(), 100);
  EXPECT_EQ(b.at("daily").at("remaining_msat").to_number<int>(), 300);
  EXPECT_EQ(b.at("daily").at("resets_at").to_number<int64_t>(), 1764115200);
  EXPECT_EQ(b.at("monthly").at("limit_msat").to_number<int>(), 0);
  EXPECT_EQ(post("/api/v1/budget", "{}").status, 405);

  auto refused = post("/api/v1/jobs", R"({"model":"tiny","prompt":"hi","max_cost_msat":301})");
  EXPECT_EQ(refused.status, 402) << refused.body;
  EXPECT_EQ(parse(refused.body).at("error").at("code"), "budget_exceeded");
  EXPECT_EQ(post("/api/v1/jobs", R"({"model":"tiny","prompt":"hi","max_cost_msat":300})").status, 201);
}

TEST_F(ApiTest, StreamReplaysAfterNThenGoesLiveThenCompletesAndCloses) {
  std::string id = create_job();                              // seq 1: submitted
  consumer_.set_state(id, JobState::kAssigned);               // 2
  consumer_.push_event(id, "progress", R"({"text":"Hel"})");  // 3
  auto events = stream(id, 2);
  ASSERT_TRUE(events->wait_open());
  ASSERT_TRUE(events->wait_messages(1));
  EXPECT_EQ(consumer_.watcher_count(), 1u);

  consumer_.push_event(id, "progress", R"({"text":"lo"})");  // 4, live
  consumer_.set_state(id, JobState::kCompleted, "Hello");    // 5
  consumer_.push_event(id, "note", R"({"message":"after the end"})");
  ASSERT_TRUE(events->wait_messages(4));
  ASSERT_TRUE(events->wait_closed());
  EXPECT_EQ(events->close_message().rfind("closed by peer: 1000", 0), 0u) << events->close_message();

  auto got = messages(*events);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0]["type"], "progress");
  EXPECT_EQ(got[0]["seq"].to_number<int>(), 3);
  EXPECT_EQ(got[0]["job_id"], id.c_str());
  EXPECT_EQ(got[0]["data"].at("text"), "Hel");
  EXPECT_EQ(got[1]["seq"].to_number<int>(), 4);
  EXPECT_EQ(got[1]["data"].at("text"), "lo");
  EXPECT_EQ(got[2]["type"], "state");
  EXPECT_EQ(got[2]["seq"].to_number<int>(), 5);
  EXPECT_EQ(got[3]["type"], "complete");
  EXPECT_EQ(got[3]["final"], true);
  EXPECT_EQ(got[3]["seq"].to_number<int>(), 5);
  EXPECT_EQ(got[3]["data"].at("state"), "completed");
  EXPECT_EQ(got[3]["data"].at("output"), "Hello");
  // The watch is released once the stream ends.
  for (int i = 0; i < 100 && consumer_.watcher_count() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(consumer_.watcher_count(), 0u);
}

TEST_F(ApiTest, ReattachingToAFinishedJobReplaysTheRestAndTheFinalMessage) {
  std::string id = create_job();
  consumer_.push_event(id, "progress", R"({"text":"x"})");  // 2
  consumer_.set_state(id, JobState::kFailed);               // 3

  auto from_one = stream(id, 1);
  ASSERT_TRUE(from_one->wait_closed());
  auto got = messages(*from_one);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["seq"].to_number<int>(), 2);
  EXPECT_EQ(got[1]["seq"].to_number<int>(), 3);
  EXPECT_EQ(got[2]["type"], "error");
  EXPECT_EQ(got[2]["final"], true);
  EXPECT_EQ(got[2]["data"].at("state"), "failed");

  auto from_end = stream(id, 3);
  ASSERT_TRUE(from_end->wait_closed());
  got = messages(*from_end);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["type"], "error");
  EXPECT_EQ(got[0]["seq"].to_number<int>(), 3);
  EXPECT_EQ(consumer_.watcher_count(), 0u);
}

TEST_F(ApiTest, CanceledJobStreamsACanceledMessage) {
  std::string id = create_job();
  auto events = stream(id, 0);
  ASSERT_TRUE(events->wait_messages(1));  // the submitted state
  ASSERT_EQ(post("/api/v1/jobs/" + id + "/cancel", "").status, 200);
  ASSERT_TRUE(events->wait_closed());
  auto got = messages(*events);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1]["data"].at("state"), "canceled");
  EXPECT_EQ(got[2]["type"], "canceled");
}

TEST_F(ApiTest, ClientLeavingReleasesTheWatch) {
  std::string id = create_job();
  std::shared_ptr<net::WebSocketClient> client;
  auto events = stream(id, 0, &client);
  ASSERT_TRUE(events->wait_messages(1));
  EXPECT_EQ(consumer_.watcher_count(), 1u);
  client->close();
  ASSERT_TRUE(events->wait_closed());
  for (int i = 0; i < 100 && consumer_.watcher_count() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(consumer_.watcher_count(), 0u);
}

TEST_F(ApiTest, StreamOfUnknownJobOrBadAfterClosesWithAReason) {
  auto unknown = stream("nope", 0);
  ASSERT_TRUE(unknown->wait_closed());
  EXPECT_EQ(unknown->close_message().rfind("closed by peer: 4404", 0), 0u) << unknown->close_message();

  std::string id = create_job();
  auto events = std::make_shared<ClientEvents>();
  auto client = net::WebSocketClient::create(
      io_.io_context(),
      "ws://127.0.0.1:" + std::to_string(server_->port()) + "/api/v1/jobs/" + id + "/stream?after=x",
      ClientEvents::handlers(events));
  ASSERT_TRUE(client);
  (*client)->connect();
  ASSERT_TRUE(events->wait_closed());
  EXPECT_EQ(events->close_message().rfind("closed by peer: 4400", 0), 0u) << events->close_message();
  EXPECT_NE(events->close_message().find("after"), std::string::npos);

  auto elsewhere = std::make_shared<ClientEvents>();
  auto refused = net::WebSocketClient::create(
      io_.io_context(), "ws://127.0.0.1:" + std::to_string(server_->port()) + "/api/v1/jobs",
      ClientEvents::handlers(elsewhere));
  ASSERT_TRUE(refused);
  (*refused)->connect();
  ASSERT_TRUE(elsewhere->wait_closed());
  EXPECT_FALSE(elsewhere->opened);
}

TEST(ApiHandlers, RefuseOtherOrigins) {
  testing::FakeConsumerNode consumer;
  auto handlers = make_handlers(consumer);
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v1/jobs";
  request.headers["host"] = "127.0.0.1:7448";
  request.remote_address = "127.0.0.1";  // a local tool: no credentials needed (access.hpp)
  EXPECT_EQ(handlers.http(request).status, 200);
  request.headers["origin"] = "http://127.0.0.1:7448";
  EXPECT_EQ(handlers.http(request).status, 200);
  request.headers["origin"] = "https://evil.example";
  auto refused = handlers.http(request);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(error_of(refused)["code"], "cross_origin");
  request.target = "/api/v1/jobs/job1/stream";
  EXPECT_EQ(handlers.websocket(nullptr, request), nullptr);
}

TEST(ApiHandlers, OversizedBodyIs413) {
  testing::FakeConsumerNode consumer;
  ApiOptions options;
  options.max_body_bytes = 1024;
  auto handlers = make_handlers(consumer, options);
  net::HttpRequest request;
  request.method = "POST";
  request.target = "/api/v1/jobs";
  request.remote_address = "127.0.0.1";
  request.body = R"({"model":"tiny","prompt":")" + std::string(2000, 'a') + "\"}";
  auto refused = handlers.http(request);
  EXPECT_EQ(refused.status, 413);
  EXPECT_EQ(error_of(refused)["code"], "limit_exceeded");
  EXPECT_TRUE(consumer.list({})->empty());
}

TEST(ApiListen, ParsesHostAndPort) {
  auto v4 = parse_listen_address("127.0.0.1:7448");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 7448);
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "::1:80", "[::1:80", "h:x"}) {
    auto r = parse_listen_address(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message.rfind("api.listen: ", 0), 0u) << r.error().message;
  }
}

TEST(ApiServerStart, BadListenAddressIsAnError) {
  testing::FakeConsumerNode consumer;
  ApiServer server(consumer, ApiServerOptions{"nonsense", 1, {}});
  auto st = server.start();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(server.port(), 0);
  EXPECT_EQ(server.url(), "");
}

}  // namespace
}  // namespace infernet::api
