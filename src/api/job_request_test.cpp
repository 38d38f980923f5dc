#include "api/job_request.hpp"

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "api/api_error.hpp"
#include "api/blob_routes.hpp"
#include "api/blob_store.hpp"
#include "api/fake_consumer.hpp"
#include "api/routes.hpp"
#include "core/encoding.hpp"
#include "core/random.hpp"
#include "core/sha256.hpp"
#include "protocol/protocol.hpp"

namespace infernet::api {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// A fresh directory under the system's temporary directory, removed with the test.
class TempDir {
 public:
  TempDir() {
    std::array<uint8_t, 8> bytes{};
    fill_random(bytes);
    path_ = fs::temp_directory_path() / ("infernet-blobs-" + hex_encode(bytes));
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string error_message(const Result<JobRequest>& r) {
  return r ? std::string("(parsed)") : r.error().message;
}

TEST(JobRequest, TheGuideShapeFillsTheSpec) {
  auto r = parse_job_request(
      R"({"model":"m","input":{"prompt":"city","negative_prompt":"blurry","num_inference_steps":50},)"
      R"("parameters":{"max_tokens":9,"temperature":0.5,"seed":3,"top_k":4,"top_p":0.9,"min_p":0.1,)"
      R"("repeat_penalty":1.2,"repeat_last_n":7,"stop":"END","deterministic":true},)"
      R"("resources":{"gpu_type":"NVIDIA_A100","min_gpu_memory_mb":40000,"priority":"medium"},)"
      R"("budget":{"max_cost_sats":10000},"deadline":99})");
  ASSERT_TRUE(r) << r.error().message;
  const consumer::JobSpec& s = r->spec;
  EXPECT_EQ(s.model, "m");
  EXPECT_EQ(s.prompt, "city");
  EXPECT_EQ(s.max_tokens, 9u);
  EXPECT_DOUBLE_EQ(s.sampling.temperature, 0.5);
  EXPECT_EQ(s.sampling.seed, 3u);
  EXPECT_EQ(s.sampling.top_k, 4u);
  EXPECT_DOUBLE_EQ(s.sampling.top_p, 0.9);
  EXPECT_DOUBLE_EQ(s.sampling.min_p, 0.1);
  EXPECT_DOUBLE_EQ(s.sampling.repeat_penalty, 1.2);
  EXPECT_EQ(s.sampling.repeat_last_n, 7u);
  EXPECT_EQ(s.sampling.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(s.deterministic);
  EXPECT_EQ(s.gpu_type, "NVIDIA_A100");
  EXPECT_EQ(s.min_gpu_memory_mb, 40000u);
  EXPECT_EQ(s.priority, "medium");  // the consumer reads it as normal
  EXPECT_EQ(s.max_cost_msat, 10000u * 1000u);
  EXPECT_EQ(s.deadline, 99);
  const std::vector<std::string> warnings = {
      "input.negative_prompt: ignored: model m takes no such parameter",
      "input.num_inference_steps: ignored: model m takes no such parameter"};
  EXPECT_EQ(r->warnings, warnings);
  EXPECT_EQ(s.notes, warnings) << "the job's events record the warnings";
  EXPECT_TRUE(r->files.empty());
}

TEST(JobRequest, FlatAndNestedMixWhenNoSettingRepeats) {
  auto r = parse_job_request(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"parameters":{"max_tokens":5},)"
      R"("temperature":1,"budget":{"max_cost_msat":7},"resources":null,"input":{"files":null}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->spec.messages.size(), 1u);
  EXPECT_EQ(r->spec.max_tokens, 5u);
  EXPECT_EQ(r->spec.max_cost_msat, 7u);
  EXPECT_TRUE(r->warnings.empty());
}

TEST(JobRequest, ASettingGivenTwiceIsRefusedNamingBoth) {
  struct Case {
    const char* body;
    const char* error;
  };
  for (const Case& c : {
           Case{R"({"max_tokens":5,"parameters":{"max_tokens":6}})",
                "parameters.max_tokens: also given as max_tokens; give it once"},
           Case{R"({"parameters":{"stop":"a"},"stop":["b"]})",
                "stop: also given as parameters.stop; give it once"},
           Case{R"({"prompt":"a","input":{"prompt":"b"}})",
                "input.prompt: also given as prompt; give it once"},
           Case{R"({"budget":{"max_cost_sats":1,"max_cost_msat":5}})",
                "budget.max_cost_msat: also given as budget.max_cost_sats; give it once"},
           Case{R"({"max_cost_msat":1,"budget":{"max_cost_sats":5}})",
                "budget.max_cost_sats: also given as max_cost_msat; give it once"},
           Case{R"({"priority":"low","resources":{"priority":"high"}})",
                "resources.priority: also given as priority; give it once"},
       }) {
    auto r = parse_job_request(c.body);
    EXPECT_EQ(error_message(r), c.error) << c.body;
    if (!r) {
      EXPECT_EQ(to_api_error(r.error()).status, 400);
    }
  }
}

TEST(JobRequest, BadNestedFieldsAreNamedWithTheirSection) {
  struct Case {
    const char* body;
    const char* error;
    const char* field;
  };
  for (const Case& c : {
           Case{R"({"parameters":{"temperature":"hot"}})", "parameters.temperature: must be a number",
                "parameters.temperature"},
           Case{R"({"parameters":{"model":"m"}})", "parameters.model: unknown field", "parameters.model"},
           Case{R"({"parameters":{"widht":1}})", "parameters.widht: unknown field", "parameters.widht"},
           Case{R"({"resources":{"gpu":"x"}})", "resources.gpu: unknown field", "resources.gpu"},
           Case{R"({"resources":{"gpu_type":5}})", "resources.gpu_type: must be a string",
                "resources.gpu_type"},
           Case{R"({"resources":{"min_gpu_memory_mb":-1}})",
                "resources.min_gpu_memory_mb: must be a non-negative integer", "resources.min_gpu_memory_mb"},
           Case{R"({"budget":{"max_cost_sats":18446744073709552}})", "budget.max_cost_sats: too large",
                "budget.max_cost_sats"},
           Case{R"({"budget":{"max_cost_sats":1.5}})", "budget.max_cost_sats: must be a non-negative integer",
                "budget.max_cost_sats"},
           Case{R"({"budget":{"dollars":1}})", "budget.dollars: unknown field", "budget.dollars"},
           Case{R"({"input":"hi"})", "input: must be an object", "input"},
           Case{R"({"input":{"messages":[{"role":"user"}]}})", "input.messages[0].content: required",
                "input.messages[0].content"},
           Case{R"({"input":{"files":"abc"}})", "input.files: must be a list of SHA-256 hashes",
                "input.files"},
           Case{R"({"input":{"files":["abc"]}})",
                "input.files[0]: must be a blob's SHA-256 (64 hex digits) from PUT /upload",
                "input.files[0]"},
           Case{R"({"input":{"a b":1}})", "input: has a key that is not a plain name", "input"},
           Case{R"({"inptu":{}})", "inptu: unknown field", "inptu"},
       }) {
    auto r = parse_job_request(c.body);
    ASSERT_FALSE(r) << c.body;
    EXPECT_EQ(r.error().message, c.error) << c.body;
    EXPECT_EQ(to_api_error(r.error()).field, c.field) << c.body;
  }
  std::string many = R"({"input":{"files":[)";
  for (size_t i = 0; i <= kMaxInputFiles; ++i)
    many += std::string(i ? "," : "") + "\"" + std::string(64, 'a') + "\"";
  EXPECT_EQ(error_message(parse_job_request(many + "]}}")), "input.files: at most 8");
  std::string keys = R"({"input":{)";
  for (int i = 0; i < 17; ++i)
    keys += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\":1";
  EXPECT_EQ(error_message(parse_job_request(keys + "}}")),
            "input: at most 16 keys besides prompt, messages and files");
}

TEST(BlobStore, StoresContentAddressedAndRefusesWhatIsOverItsLimits) {
  TempDir dir;
  BlobStore store({dir.path() / "blobs", 16, 40, 3});
  const std::string text = "hello blobs";
  auto d = store.put(text, "text/plain");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->sha256, hex_encode(sha256(text)));
  EXPECT_EQ(d->size, text.size());
  EXPECT_EQ(d->type, "text/plain");
  EXPECT_GT(d->uploaded, 0);
  auto again = store.put(text, "");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->type, "text/plain") << "a blob stored before is returned as it was";
  EXPECT_EQ(*store.read(d->sha256), text);
  std::string upper = d->sha256;
  for (char& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(*store.read(upper), text);
  // Nothing but the blob and its type is left behind (the temporary file was renamed).
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "blobs")) {
    EXPECT_EQ(e.path().filename().string().substr(0, 64), d->sha256);
    ++files;
  }
  EXPECT_EQ(files, 2u);

  auto big = store.put(std::string(17, 'x'), "");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kLimitExceeded);
  ASSERT_TRUE(store.put(std::string(16, 'a'), ""));
  auto full = store.put(std::string(16, 'b'), "");  // 11 + 16 + 16 > 40
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kLimitExceeded);
  EXPECT_FALSE(store.stat(hex_encode(sha256(std::string(16, 'b')))));
  EXPECT_EQ(store.put("x", "bad\ntype").error().code, ErrorCode::kInvalidInput);

  EXPECT_EQ(store.stat("zz").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(store.stat(std::string(64, '0')).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(store.remove(d->sha256));
  EXPECT_EQ(store.read(d->sha256).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store.remove(d->sha256).error().code, ErrorCode::kNotFound);
}

TEST(BlobStore, FilesAreAttachedToThePromptOrTheConversation) {
  TempDir dir;
  BlobStore store({dir.path()});
  const std::string hash = store.put("notes: hello", "text/plain")->sha256;
  const std::string binary = store.put(std::string("\x00\x9f", 2), "")->sha256;

  auto prompt = parse_job_request(R"({"model":"m","input":{"prompt":"Sum up","files":[")" + hash + "\"]}}");
  ASSERT_TRUE(prompt);
  ASSERT_TRUE(attach_files(*prompt, &store));
  EXPECT_EQ(prompt->spec.prompt, "Sum up\n\nFile " + hash + ":\nnotes: hello");

  auto alone = parse_job_request(R"({"model":"m","input":{"files":[")" + hash + "\"]}}");
  ASSERT_TRUE(attach_files(*alone, &store));
  EXPECT_EQ(alone->spec.prompt, "File " + hash + ":\nnotes: hello");

  auto chat = parse_job_request(
      R"({"model":"m","input":{"messages":[{"role":"user","content":"hi"}],"files":[")" + hash + "\"]}}");
  ASSERT_TRUE(attach_files(*chat, &store));
  EXPECT_EQ(chat->spec.messages,
            (std::vector<ChatMessage>{{"user", "hi"}, {"user", "File " + hash + ":\nnotes: hello"}}));

  auto not_text = parse_job_request(R"({"model":"m","input":{"prompt":"x","files":[")" + hash + "\",\"" +
                                    binary + "\"]}}");
  auto st = attach_files(*not_text, &store);
  ASSERT_FALSE(st);
  EXPECT_EQ(field_of(st.error().message), "input.files[1]");
  EXPECT_NE(st.error().message.find("not UTF-8 text"), std::string::npos);

  auto unknown =
      parse_job_request(R"({"model":"m","input":{"prompt":"x","files":[")" + std::string(64, 'e') + "\"]}}");
  st = attach_files(*unknown, &store);
  ASSERT_FALSE(st);
  EXPECT_EQ(field_of(st.error().message), "input.files[0]");
  EXPECT_EQ(attach_files(*unknown, nullptr).error().message, "input.files[0]: this node keeps no blobs");

  // The prompt limit holds with the files in it.
  const std::string big = store.put(std::string(protocol::kMaxPromptBytes - 10, 'w'), "")->sha256;
  auto too_long = parse_job_request(R"({"model":"m","input":{"prompt":"x","files":[")" + big + "\"]}}");
  st = attach_files(*too_long, &store);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "input.files[0]: with this file the prompt exceeds 262144 bytes");
}

net::HttpRequest request(std::string method, std::string target, std::string body = "") {
  net::HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  r.headers["host"] = "127.0.0.1:7448";
  return r;
}

TEST(BlobRoutes, UploadFetchDeleteAndJobsWithWarnings) {
  TempDir dir;
  testing::FakeConsumerNode consumer;
  RouteOptions options;
  options.blobs = std::make_shared<BlobStore>(BlobStoreOptions{dir.path()});

  auto put = request("PUT", "/upload", "file text");
  put.headers["content-type"] = "text/plain";
  auto uploaded = route_request(consumer, options, put);
  ASSERT_EQ(uploaded.status, 200) << uploaded.body;
  json::object d = json::parse(uploaded.body).as_object();
  const std::string hash = hex_encode(sha256(std::string("file text")));
  EXPECT_EQ(d["sha256"].as_string(), hash);
  EXPECT_EQ(d["size"].to_number<int>(), 9);
  EXPECT_EQ(d["type"].as_string(), "text/plain");
  EXPECT_EQ(d["url"].as_string(), "http://127.0.0.1:7448/" + hash);

  auto got = route_request(consumer, options, request("GET", "/" + hash + ".txt"));
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "file text");
  EXPECT_EQ(got.content_type, "text/plain");
  EXPECT_EQ(route_request(consumer, options, request("HEAD", "/" + hash)).status, 200);
  EXPECT_EQ(route_request(consumer, options, request("POST", "/" + hash)).status, 405);
  EXPECT_EQ(route_request(consumer, options, request("GET", "/upload")).status, 405);

  auto wrong = request("PUT", "/upload", "other");
  wrong.headers["x-sha-256"] = hash;
  auto refused = route_request(consumer, options, wrong);
  EXPECT_EQ(refused.status, 400);
  EXPECT_FALSE(options.blobs->stat(hex_encode(sha256(std::string("other"))))) << "nothing stored";

  auto job = route_request(consumer, options,
                           request("POST", "/api/v1/jobs",
                                   R"({"model":"m","input":{"prompt":"p","files":[")" + hash +
                                       R"("],"guidance_scale":7},"resources":{"priority":"medium"}})"));
  ASSERT_EQ(job.status, 201) << job.body;
  json::object j = json::parse(job.body).as_object();
  EXPECT_EQ(j["prompt"].as_string(), "p\n\nFile " + hash + ":\nfile text");
  ASSERT_EQ(j["warnings"].as_array().size(), 1u);
  EXPECT_EQ(j["warnings"].as_array()[0].as_string(),
            "input.guidance_scale: ignored: model m takes no such parameter");

  EXPECT_EQ(route_request(consumer, options, request("DELETE", "/" + hash)).status, 200);
  EXPECT_EQ(route_request(consumer, options, request("GET", "/" + hash)).status, 404);
  auto gone =
      route_request(consumer, options,
                    request("POST", "/api/v1/jobs", R"({"model":"m","input":{"files":[")" + hash + "\"]}}"));
  EXPECT_EQ(gone.status, 400);
  EXPECT_EQ(json::parse(gone.body).at("error").at("field").as_string(), "input.files[0]");

  // Without a blob store, blob paths are unknown.
  EXPECT_EQ(route_request(consumer, RouteOptions{}, request("GET", "/" + hash)).status, 404);
}

}  // namespace
}  // namespace infernet::api
