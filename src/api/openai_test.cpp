// The OpenAI-compatible routes over a fake consumer: request parsing, the complete and streamed answers
// built from a job's events, errors in OpenAI's envelope, and a client that leaves cancelling its job.
#include "api/openai.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/fake_consumer.hpp"
#include "api/openai_request.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;
using consumer::JobState;

// Captures what the route writes, as the server would send it.
class CapturingWriter : public net::HttpBodyWriter {
 public:
  bool write(std::string bytes) override {
    if (closed) return false;
    body += bytes;
    return true;
  }
  void finish() override {
    finished = true;
    end();
  }
  bool respond(net::HttpResponse r) override {
    if (closed || !body.empty()) return false;
    response = std::move(r);
    responded = true;
    end();
    return true;
  }
  void on_end(std::function<void()> callback) override { on_end_ = std::move(callback); }
  // The client leaves.
  void end() {
    closed = true;
    if (auto cb = std::exchange(on_end_, nullptr)) cb();
  }

  std::string body;
  bool finished = false;
  bool responded = false;
  bool closed = false;
  net::HttpResponse response;

 private:
  std::function<void()> on_end_;
};

class OpenAiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    consumer::ModelSummary m;
    m.name = "tiny";
    m.providers = {"aa", "bb"};
    m.min_price_per_1k_output_msat = 2000;
    fake.add_model(m);
  }

  std::optional<net::HttpResponse> call(const std::string& method, const std::string& target,
                                        const std::string& body = "") {
    net::HttpRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    return route_openai(
        fake, defer, [] { return int64_t{1764072000}; }, request);
  }

  // Posts `body` and attaches a capturing writer to the answer; returns the job id.
  std::string start(const std::string& path, const std::string& body) {
    auto response = call("POST", path, body);
    EXPECT_TRUE(response && response->stream) << (response ? response->body : "no answer");
    if (!response || !response->stream) return "";
    response->stream(writer);
    run_deferred();
    for (const auto& [name, value] : response->headers) {
      if (name == "X-Infernet-Job-Id") return value;
    }
    ADD_FAILURE() << "no X-Infernet-Job-Id";
    return "";
  }

  // Runs deferred work, including what that work defers in turn.
  void run_deferred() {
    for (;;) {
      std::vector<std::function<void()>> now;
      {
        std::lock_guard lock(mu);
        now.swap(deferred);
      }
      if (now.empty()) return;
      for (auto& task : now)
        task();
    }
  }

  testing::FakeConsumerNode fake;
  std::mutex mu;
  std::vector<std::function<void()>> deferred;
  Defer defer = [this](std::function<void()> task) {
    std::lock_guard lock(mu);
    deferred.push_back(std::move(task));
  };
  std::shared_ptr<CapturingWriter> writer = std::make_shared<CapturingWriter>();
};

json::value parse(const std::string& text) {
  return json::parse(text);
}

TEST_F(OpenAiTest, ModelsListTheNetworksModelsInOpenAisShape) {
  auto list = call("GET", "/v1/models");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  auto v = parse(list->body);
  EXPECT_EQ(v.at("object"), "list");
  ASSERT_EQ(v.at("data").as_array().size(), 1u);
  EXPECT_EQ(v.at("data").at(0).at("id"), "tiny");
  EXPECT_EQ(v.at("data").at(0).at("object"), "model");
  EXPECT_EQ(v.at("data").at(0).at("providers"), 2);

  EXPECT_EQ(call("GET", "/v1/models/tiny")->status, 200);
  auto missing = call("GET", "/v1/models/nope");
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(parse(missing->body).at("error").at("code"), "model_not_found");
  EXPECT_EQ(call("POST", "/v1/models")->status, 405);
  EXPECT_EQ(call("GET", "/v1/embeddings")->status, 404);
  EXPECT_FALSE(call("GET", "/api/v1/jobs")) << "other paths are not OpenAI's";
}

TEST_F(OpenAiTest, BadBodiesAre400NamingTheParamAndStoreNothing) {
  struct Case {
    std::string path, body, param;
  };
  const std::vector<Case> cases = {
      {"/v1/chat/completions", "not json", "request body"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}]})", "model"},
      {"/v1/chat/completions", R"({"model":"tiny"})", "messages"},
      {"/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":5}]})",
       "messages[0].content"},
      {"/v1/chat/completions",
       R"({"model":"tiny","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "messages[0].content[0].type"},
      {"/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"tools":[]})",
       "tools"},
      {"/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"n":2})", "n"},
      {"/v1/chat/completions",
       R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"frequency_penalty":1})",
       "frequency_penalty"},
      {"/v1/chat/completions",
       R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"temprature":1})", "temprature"},
      {"/v1/chat/completions",
       R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}})",
       "stream_options"},
      {"/v1/chat/completions",
       R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_completion_tokens":5})",
       "max_completion_tokens"},
      {"/v1/chat/completions",
       R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":0})", "max_tokens"},
      {"/v1/completions", R"({"model":"tiny","prompt":["a","b"]})", "prompt"},
      {"/v1/completions", R"({"model":"tiny","prompt":"a","echo":true})", "echo"},
      {"/v1/completions", R"({"model":"tiny","messages":[]})", "messages"},
  };
  for (const auto& c : cases) {
    auto r = call("POST", c.path, c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << c.body;
    EXPECT_FALSE(r->stream) << c.body;
    auto error = parse(r->body).at("error");
    EXPECT_EQ(error.at("type"), "invalid_request_error") << c.body;
    if (c.param == "request body") {
      EXPECT_TRUE(error.at("param").is_null()) << r->body;  // not one field
    } else {
      EXPECT_EQ(error.at("param"), c.param.c_str()) << c.body << " -> " << r->body;
    }
    EXPECT_FALSE(error.at("message").as_string().empty());
  }
  auto unknown =
      call("POST", "/v1/chat/completions", R"({"model":"nope","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(unknown->status, 404) << "an unknown model fails at once instead of waiting for a provider";
  EXPECT_EQ(parse(unknown->body).at("error").at("code"), "model_not_found");
  EXPECT_EQ(fake.list({})->size(), 0u) << "a refused request stores no job";
}

TEST_F(OpenAiTest, OpenAisClientShapesAndInfernetsKnobsReachTheJob) {
  auto parsed = parse_completion_request(CompletionKind::kChat, R"({
    "model": "tiny", "max_completion_tokens": 9, "temperature": 0.5, "top_p": 0.9, "seed": 7, "stop": ["\n"],
    "n": 1, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": false, "user": "u1", "stream": true,
    "stream_options": {"include_usage": true}, "response_format": {"type": "text"},
    "max_cost_msat": 5000, "priority": "high", "top_k": 40, "deterministic": true, "strategy": "cheapest",
    "start_by": 1900000000, "finish_by": 1900000600,
    "messages": [{"role": "developer", "content": "Be brief."},
                 {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}]
  })");
  ASSERT_TRUE(parsed) << parsed.error().message;
  const auto& spec = parsed->spec;
  EXPECT_TRUE(parsed->stream);
  EXPECT_TRUE(parsed->include_usage);
  EXPECT_EQ(spec.model, "tiny");
  EXPECT_EQ(spec.max_tokens, 9u);
  EXPECT_DOUBLE_EQ(spec.sampling.temperature, 0.5);
  EXPECT_DOUBLE_EQ(spec.sampling.top_p, 0.9);
  EXPECT_EQ(spec.sampling.seed, 7u);
  EXPECT_EQ(spec.sampling.top_k, 40u);
  EXPECT_EQ(spec.strategy, "cheapest");
  EXPECT_EQ(spec.sampling.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(spec.max_cost_msat, 5000u);
  EXPECT_EQ(spec.priority, "high");
  EXPECT_TRUE(spec.deterministic);
  EXPECT_EQ(spec.start_by, 1900000000);
  EXPECT_EQ(spec.deadline, 1900000600);
  ASSERT_EQ(spec.messages.size(), 2u);
  EXPECT_EQ(spec.messages[0].role, "system");
  EXPECT_EQ(spec.messages[1].content, "Hello");

  auto text = parse_completion_request(CompletionKind::kText, R"({"model":"tiny","prompt":["Once"]})");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->spec.prompt, "Once");
  EXPECT_EQ(text->spec.max_tokens, kOpenAiDefaultMaxTokens);
}

TEST_F(OpenAiTest, ACompleteAnswerWaitsForTheJobWithoutHoldingTheThread) {
  std::string id =
      start("/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"hi"}]})");
  ASSERT_FALSE(id.empty());
  EXPECT_FALSE(writer->responded) << "nothing before the job is final";
  fake.push_event(id, "progress", R"({"attempt":1,"seq_in_attempt":1,"text":"Hel","tokens":1})");
  fake.push_event(id, "progress", R"({"attempt":1,"seq_in_attempt":2,"text":"lo \"x\"","tokens":2})");
  fake.push_event(
      id, "result",
      R"({"attempt":1,"provider":"aa","ok":true,"cost_msat":12,"input_tokens":4,"output_tokens":3,"finish_reason":"length"})");
  EXPECT_FALSE(writer->responded);
  fake.set_state(id, JobState::kCompleted);
  run_deferred();
  ASSERT_TRUE(writer->responded);
  EXPECT_EQ(writer->response.status, 200);
  auto v = parse(writer->response.body);
  EXPECT_EQ(v.at("id"), ("chatcmpl-" + id).c_str());
  EXPECT_EQ(v.at("object"), "chat.completion");
  EXPECT_EQ(v.at("created"), 1764072000);
  EXPECT_EQ(v.at("model"), "tiny");
  EXPECT_EQ(v.at("choices").at(0).at("message").at("role"), "assistant");
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "Hello \"x\"");
  EXPECT_EQ(v.at("choices").at(0).at("finish_reason"), "length");
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), 4);
  EXPECT_EQ(v.at("usage").at("completion_tokens"), 3);
  EXPECT_EQ(v.at("usage").at("total_tokens"), 7);
  EXPECT_EQ(v.at("infernet").at("cost_msat"), 12);
  EXPECT_EQ(fake.watcher_count(), 0u) << "the watch ends with the answer";
  EXPECT_EQ(fake.get(id)->state, JobState::kCompleted);
}

TEST_F(OpenAiTest, AStreamSendsChunksThenTheFinishReasonUsageAndDone) {
  std::string id = start("/v1/chat/completions",
                         R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true,
                             "stream_options":{"include_usage":true}})");
  fake.push_event(id, "progress", R"({"attempt":1,"seq_in_attempt":1,"text":"Hel","tokens":1})");
  const std::string first = writer->body;
  EXPECT_NE(first.find(R"("delta":{"role":"assistant","content":""})"), std::string::npos) << first;
  EXPECT_NE(first.find(R"("delta":{"content":"Hel"})"), std::string::npos) << first;
  fake.push_event(id, "progress", R"({"attempt":1,"seq_in_attempt":2,"text":"lo","tokens":1})");
  fake.push_event(
      id, "result",
      R"({"attempt":1,"provider":"aa","ok":true,"cost_msat":5,"input_tokens":4,"output_tokens":2,"finish_reason":"stop"})");
  fake.set_state(id, JobState::kCompleted);
  ASSERT_TRUE(writer->finished);
  // Every event is "data: <json>\n\n"; the last is [DONE].
  std::vector<std::string> events;
  for (size_t at = 0; at < writer->body.size();) {
    size_t end = writer->body.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    ASSERT_EQ(writer->body.compare(at, 6, "data: "), 0) << writer->body;
    events.push_back(writer->body.substr(at + 6, end - at - 6));
    at = end + 2;
  }
  ASSERT_EQ(events.size(), 6u) << writer->body;
  std::string text;
  for (size_t i = 0; i < 3; ++i) {
    auto chunk = parse(events[i]);
    EXPECT_EQ(chunk.at("object"), "chat.completion.chunk");
    EXPECT_EQ(chunk.at("id"), ("chatcmpl-" + id).c_str());
    EXPECT_TRUE(chunk.at("usage").is_null());
    EXPECT_TRUE(chunk.at("choices").at(0).at("finish_reason").is_null());
    if (auto* c = chunk.at("choices").at(0).at("delta").as_object().if_contains("content"))
      text += c->as_string();
  }
  EXPECT_EQ(text, "Hello");
  auto last_choice = parse(events[3]);
  EXPECT_EQ(last_choice.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_TRUE(last_choice.at("choices").at(0).at("delta").as_object().empty());
  auto usage = parse(events[4]);
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("completion_tokens"), 2);
  EXPECT_EQ(events[5], "[DONE]");
}

TEST_F(OpenAiTest, TextCompletionsStreamTextChoices) {
  std::string id = start("/v1/completions", R"({"model":"tiny","prompt":"Once","stream":true})");
  fake.push_event(id, "progress", R"({"attempt":1,"seq_in_attempt":1,"text":" upon","tokens":1})");
  fake.set_state(id, JobState::kCompleted);
  EXPECT_NE(writer->body.find(R"("object":"text_completion")"), std::string::npos);
  EXPECT_NE(writer->body.find(R"("text":" upon")"), std::string::npos) << writer->body;
  EXPECT_EQ(writer->body.find("usage"), std::string::npos) << "no usage unless asked for";
  EXPECT_NE(writer->body.find("data: [DONE]\n\n"), std::string::npos);
}

TEST_F(OpenAiTest, AJobThatFailsBeforeAnyTextAnswersAnErrorStatus) {
  std::string id = start("/v1/chat/completions",
                         R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true})");
  fake.push_event(id, "error",
                  R"({"attempt":1,"provider":"aa","code":"invalid-input","message":"prompt too long"})");
  fake.set_state(id, JobState::kFailed);
  ASSERT_TRUE(writer->responded) << writer->body;
  EXPECT_EQ(writer->response.status, 400);
  auto error = parse(writer->response.body).at("error");
  EXPECT_NE(error.at("message").as_string().find("prompt too long"), std::string::npos)
      << writer->response.body;
}

TEST_F(OpenAiTest, AJobThatFailsMidStreamEndsWithAnErrorEvent) {
  std::string id = start("/v1/chat/completions",
                         R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true})");
  fake.push_event(id, "progress", R"({"attempt":1,"seq_in_attempt":1,"text":"Hel","tokens":1})");
  fake.set_state(id, JobState::kExpired);
  EXPECT_TRUE(writer->finished);
  EXPECT_NE(writer->body.find(R"("code":"job_expired")"), std::string::npos) << writer->body;
  EXPECT_EQ(writer->body.find("[DONE]"), std::string::npos);
}

TEST_F(OpenAiTest, AClientThatLeavesCancelsItsJob) {
  std::string id =
      start("/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"hi"}]})");
  fake.push_event(id, "progress", R"({"attempt":1,"seq_in_attempt":1,"text":"Hel","tokens":1})");
  writer->end();
  run_deferred();
  EXPECT_EQ(fake.get(id)->state, JobState::kCanceled);
  EXPECT_EQ(fake.watcher_count(), 0u);
  EXPECT_FALSE(writer->responded);
}

}  // namespace
}  // namespace infernet::api
