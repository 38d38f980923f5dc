// The model makers, checked through llama.cpp itself: what it loads, how it tokenizes, what it generates.
#include "models/models.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <llama.h>
#include <spdlog/spdlog.h>

namespace infernet::models {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test binary run, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("infernet-models-test-" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void quiet_log(ggml_log_level, const char*, void*) {}

struct ModelFree {
  void operator()(llama_model* m) const { llama_model_free(m); }
};
struct ContextFree {
  void operator()(llama_context* c) const { llama_free(c); }
};
using ModelPtr = std::unique_ptr<llama_model, ModelFree>;

ModelPtr load(const std::string& path) {
  llama_model_params params = llama_model_default_params();
  params.n_gpu_layers = 0;
  return ModelPtr(llama_model_load_from_file(path.c_str(), params));
}

std::string meta(const llama_model* model, const char* key) {
  char buf[512];
  int n = llama_model_meta_val_str(model, key, buf, sizeof(buf));
  return n < 0 ? std::string("<missing>") : std::string(buf);
}

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text, bool add_bos) {
  std::vector<llama_token> tokens(text.size() + 2);
  int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                         static_cast<int32_t>(tokens.size()), add_bos, false);
  tokens.resize(static_cast<size_t>(std::max(n, 0)));
  return tokens;
}

std::string detokenize(const llama_vocab* vocab, const std::vector<llama_token>& tokens) {
  std::string text(tokens.size() * 8 + 16, '\0');
  int n = llama_detokenize(vocab, tokens.data(), static_cast<int32_t>(tokens.size()), text.data(),
                           static_cast<int32_t>(text.size()), /*remove_special=*/true, false);
  text.resize(static_cast<size_t>(std::max(n, 0)));
  return text;
}

// Greedy (temperature 0) continuation of prompt, n_predict tokens, as text.
std::string greedy_continue(llama_model* model, const std::string& prompt, int n_predict) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::vector<llama_token> tokens = tokenize(vocab, prompt, /*add_bos=*/true);
  llama_context_params cparams = llama_context_default_params();
  cparams.n_ctx = 256;
  cparams.n_batch = 256;
  // One thread: on a busy machine, ggml's per-node barriers make two threads far slower for a model this
  // small.
  cparams.n_threads = 1;
  cparams.n_threads_batch = 1;
  std::unique_ptr<llama_context, ContextFree> ctx(llama_init_from_model(model, cparams));
  if (!ctx) return "<no context>";
  llama_sampler* sampler = llama_sampler_init_greedy();
  std::vector<llama_token> generated;
  llama_batch batch = llama_batch_get_one(tokens.data(), static_cast<int32_t>(tokens.size()));
  llama_token next = 0;
  for (int i = 0; i < n_predict; ++i) {
    if (llama_decode(ctx.get(), batch) != 0) break;
    next = llama_sampler_sample(sampler, ctx.get(), -1);
    if (llama_vocab_is_eog(vocab, next)) break;
    generated.push_back(next);
    batch = llama_batch_get_one(&next, 1);
  }
  llama_sampler_free(sampler);
  return detokenize(vocab, generated);
}

class ModelsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    llama_backend_init();
    llama_log_set(quiet_log, nullptr);
    spdlog::set_level(spdlog::level::warn);
    dir_ = new TempDir();
    TinyModelOptions options;
    options.out_path = dir_->file("tiny.gguf");
    options.steps = 30;
    tiny_ = new Result<TinyModelReport>(make_tiny_model(options));
  }
  static void TearDownTestSuite() {
    delete tiny_;
    delete dir_;
  }

  static TempDir* dir_;
  static Result<TinyModelReport>* tiny_;
};

TempDir* ModelsTest::dir_ = nullptr;
Result<TinyModelReport>* ModelsTest::tiny_ = nullptr;

TEST_F(ModelsTest, TinyModelLoadsWithItsMetadata) {
  ASSERT_TRUE(*tiny_) << tiny_->error().to_string();
  ModelPtr model = load((*tiny_)->path);
  ASSERT_TRUE(model);
  EXPECT_EQ(meta(model.get(), "general.architecture"), "llama");
  EXPECT_EQ(meta(model.get(), "general.name"), "infernet-tiny");
  EXPECT_EQ(meta(model.get(), "llama.block_count"), "2");
  EXPECT_EQ(llama_model_n_params(model.get()), (*tiny_)->parameters);
  EXPECT_EQ((*tiny_)->parameters, llama_parameter_count(2, 64, 192, 260, false));
  EXPECT_EQ(llama_vocab_n_tokens(llama_model_get_vocab(model.get())), 260);
  EXPECT_EQ(llama_model_n_ctx_train(model.get()), 256);

  const char* tmpl = llama_model_chat_template(model.get(), nullptr);
  ASSERT_NE(tmpl, nullptr);
  llama_chat_message chat[] = {{"user", "hi"}};
  char out[256];
  int n = llama_chat_apply_template(tmpl, chat, 1, /*add_ass=*/true, out, sizeof(out));
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(out, static_cast<size_t>(n)),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_F(ModelsTest, TokenizerRoundTripsSpacesAndUtf8) {
  ASSERT_TRUE(*tiny_) << tiny_->error().to_string();
  ModelPtr model = load((*tiny_)->path);
  ASSERT_TRUE(model);
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  const std::string text = "  Licensed under the Apache License,\n\tVersion 2.0 — grüße, 日本語 ✓ ";
  std::vector<llama_token> tokens = tokenize(vocab, text, /*add_bos=*/true);
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(tokens.front(), llama_vocab_bos(vocab));
  // Byte-level: one token per byte, a space being the single token "▁" (not its three UTF-8 bytes).
  EXPECT_EQ(tokens.size(), text.size() + 1);
  EXPECT_EQ(detokenize(vocab, tokens), text);
  EXPECT_EQ(tokenize(vocab, " ", false), std::vector<llama_token>{259});
}

TEST_F(ModelsTest, TrainingLowersTheLoss) {
  ASSERT_TRUE(*tiny_) << tiny_->error().to_string();
  // A uniform guess over 260 tokens costs ln(260) = 5.56 nats; 30 steps already learn the byte frequencies.
  EXPECT_GT((*tiny_)->initial_loss, 5.0f);
  EXPECT_LT((*tiny_)->final_loss, (*tiny_)->initial_loss - 1.5f);
  EXPECT_EQ((*tiny_)->steps, 30u);
}

TEST_F(ModelsTest, TinyModelIsDeterministic) {
  ASSERT_TRUE(*tiny_) << tiny_->error().to_string();
  TinyModelOptions options;
  options.out_path = dir_->file("tiny-again.gguf");
  options.steps = 30;
  auto again = make_tiny_model(options);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->final_loss, (*tiny_)->final_loss);
  EXPECT_TRUE(read_file(again->path) == read_file((*tiny_)->path));
}

TEST_F(ModelsTest, RandomModelHasTheShapeAndTypeAsked) {
  struct Case {
    const char* quantization;
    llama_ftype ftype;
  };
  for (Case c : {Case{"q8_0", LLAMA_FTYPE_MOSTLY_Q8_0}, Case{"q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},
                 Case{"f16", LLAMA_FTYPE_MOSTLY_F16}}) {
    SCOPED_TRACE(c.quantization);
    RandomModelOptions options;
    options.out_path = dir_->file(std::string("random-") + c.quantization + ".gguf");
    options.layers = 2;
    options.embedding = 128;
    options.feed_forward = 384;
    options.heads = 4;
    options.vocab = 2000;
    options.context_length = 512;
    options.quantization = c.quantization;
    auto report = make_random_model(options);
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_EQ(report->quantization, c.quantization);
    EXPECT_FALSE(fs::exists(options.out_path + ".tmp-f16-" + std::to_string(::getpid())));

    ModelPtr model = load(options.out_path);
    ASSERT_TRUE(model);
    const double requested = static_cast<double>(llama_parameter_count(2, 128, 384, 2000, true));
    EXPECT_NEAR(static_cast<double>(llama_model_n_params(model.get())), requested, requested * 0.05);
    EXPECT_EQ(llama_model_ftype(model.get()), c.ftype);
    EXPECT_EQ(llama_vocab_n_tokens(llama_model_get_vocab(model.get())), 2000);
    EXPECT_EQ(meta(model.get(), "general.architecture"), "llama");
    // Noise, but it decodes.
    EXPECT_FALSE(greedy_continue(model.get(), "hello world", 4).empty());
  }
}

TEST_F(ModelsTest, BadOptionsNameTheOption) {
  auto expect_invalid = [](const auto& result, const std::string& needle) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidInput);
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
  };
  TinyModelOptions tiny;
  tiny.out_path = dir_->file("bad.gguf");
  tiny.steps = 1;

  TinyModelOptions missing = tiny;
  missing.corpus_path = dir_->file("no-such-corpus.txt");
  expect_invalid(make_tiny_model(missing), "corpus: cannot read");

  TinyModelOptions too_short = tiny;
  too_short.corpus_path = dir_->file("short.txt");
  std::ofstream(too_short.corpus_path) << "too short";
  expect_invalid(make_tiny_model(too_short), "corpus: '" + too_short.corpus_path + "' is too short");

  TinyModelOptions no_layers = tiny;
  no_layers.layers = 0;
  expect_invalid(make_tiny_model(no_layers), "layers:");

  TinyModelOptions odd_heads = tiny;
  odd_heads.heads = 5;
  expect_invalid(make_tiny_model(odd_heads), "embedding:");

  TinyModelOptions no_dir = tiny;
  no_dir.out_path = dir_->file("missing-dir/tiny.gguf");
  expect_invalid(make_tiny_model(no_dir), "out: directory");

  RandomModelOptions random;
  random.out_path = dir_->file("bad-random.gguf");
  random.quantization = "q3_weird";
  expect_invalid(make_random_model(random), "quantization: unknown type 'q3_weird'");
  random.quantization = "q8_0";
  random.layers = 0;
  expect_invalid(make_random_model(random), "layers:");
  random.layers = 1;
  random.vocab = 100;
  expect_invalid(make_random_model(random), "vocab:");
  EXPECT_FALSE(fs::exists(random.out_path));
  EXPECT_FALSE(fs::exists(tiny.out_path));
}

// The build's tiny model (target tiny_model, 2000 steps) recites its corpus: greedy continuation of a line's
// first 40 characters reproduces the corpus's next 40 characters.
TEST_F(ModelsTest, CachedTinyModelContinuesCorpusLines) {
  const std::string path = INFERNET_TINY_MODEL;
  ASSERT_FALSE(path.empty()) << "the build defines no tiny model (corpus missing at configure time?)";
  ASSERT_TRUE(fs::exists(path)) << path << " is missing: build the tiny_model target";
  const std::string corpus = read_file(INFERNET_TINY_CORPUS);
  ASSERT_FALSE(corpus.empty());

  // Lines whose first 40 characters occur once in the corpus: their continuation is well defined.
  std::vector<size_t> starts;
  for (size_t pos = 0; pos < corpus.size();) {
    size_t end = corpus.find('\n', pos);
    if (end == std::string::npos) end = corpus.size();
    if (end - pos >= 60 && pos + 80 <= corpus.size()) {
      const std::string prefix = corpus.substr(pos, 40);
      if (corpus.find(prefix) == pos && corpus.find(prefix, pos + 1) == std::string::npos)
        starts.push_back(pos);
    }
    pos = end + 1;
  }
  ASSERT_GE(starts.size(), 3u);

  ModelPtr model = load(path);
  ASSERT_TRUE(model);
  int reproduced = 0;
  for (size_t k = 1; k <= 3; ++k) {
    const size_t start = starts[k * starts.size() / 4];
    const std::string prompt = corpus.substr(start, 40);
    const std::string expected = corpus.substr(start + 40, 40);
    const std::string got = greedy_continue(model.get(), prompt, 48);
    const bool ok = got.compare(0, expected.size(), expected) == 0;
    reproduced += ok ? 1 : 0;
    std::printf("prompt   %s\nexpected %s\ngot      %s\n%s\n", prompt.c_str(), expected.c_str(), got.c_str(),
                ok ? "ok" : "differs");
  }
  EXPECT_GE(reproduced, 2);
}

}  // namespace
}  // namespace infernet::models
