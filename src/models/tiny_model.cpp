// The tiny model: a small llama trained from random weights on a text corpus with ggml's own optimizer
// (ggml-opt, AdamW), then written as GGUF.
//
// Why not llama.cpp's llama_opt_epoch: in this llama.cpp version it never trains token_embd, gives attn_k and
// attn_v no gradient (they pass through the KV cache) and does not zero gradients between steps; it suits
// fine-tuning, not training from scratch. So the forward graph is built here (llama_graph.cpp) and handed to
// ggml-opt as a static graph: allocated once, evaluated every step with new inputs.
//
// Data: the corpus is tokenized by llama.cpp itself (a vocabulary-only load of the file being made), so the
// token ids trained on are the ones inference sees. Half of each batch's windows start at a random token; the
// other half start at the beginning of a corpus line behind <s>, exactly as a prompt does at inference.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml-opt.h>
#include <llama.h>
#include <spdlog/spdlog.h>

#include "models/gguf_writer.hpp"
#include "models/llama_graph.hpp"
#include "models/models.hpp"

namespace infernet::models {
namespace {

using detail::LlamaShape;
using detail::LlamaWeights;
using detail::Random;

// Refuses corpora larger than this: the whole token stream and its windows stay in memory.
constexpr size_t kMaxCorpusBytes = 64u << 20;

struct GgmlContextFree {
  void operator()(ggml_context* c) const { ggml_free(c); }
};
struct GgufFree {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
struct BackendFree {
  void operator()(ggml_backend* b) const { ggml_backend_free(b); }
};
struct SchedFree {
  void operator()(ggml_backend_sched* s) const { ggml_backend_sched_free(s); }
};
struct BufferFree {
  void operator()(ggml_backend_buffer* b) const { ggml_backend_buffer_free(b); }
};
struct OptFree {
  void operator()(ggml_opt_context* o) const { ggml_opt_free(o); }
};

Status invalid(std::string message) {
  return make_error(ErrorCode::kInvalidInput, std::move(message));
}

Status validate(const TinyModelOptions& o, const LlamaShape& shape) {
  if (o.steps == 0) return invalid("steps: must be at least 1");
  if (o.threads == 0 || o.threads > 512) return invalid("threads: must be between 1 and 512");
  if (o.batch == 0 || o.batch > 4096) return invalid("batch: must be between 1 and 4096");
  if (o.window < 2) return invalid("window: must be at least 2 tokens");
  if (o.window > o.context_length) {
    return invalid("window: " + std::to_string(o.window) + " tokens exceed context_length (" +
                   std::to_string(o.context_length) + ")");
  }
  if (!(o.learning_rate > 0 && o.learning_rate < 1)) return invalid("learning_rate: must be in (0, 1)");
  if (auto ok = detail::validate_shape(shape); !ok) return ok;
  return detail::check_output_path(o.out_path);
}

Result<std::string> read_corpus(const std::string& path) {
  if (path.empty()) return make_error(ErrorCode::kInvalidInput, "corpus: no path given");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kInvalidInput, "corpus: cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kInvalidInput, "corpus: error reading '" + path + "'");
  std::string out = std::move(text).str();
  if (out.size() > kMaxCorpusBytes) {
    return make_error(ErrorCode::kInvalidInput, "corpus: '" + path + "' is larger than 64 MiB");
  }
  return out;
}

// Learning rate: linear warm-up, then cosine decay to a tenth.
struct Schedule {
  float peak = 0;
  uint32_t steps = 0;
  uint32_t step = 0;  // 0-based, set before each evaluation

  float learning_rate() const {
    const uint32_t warmup = std::max<uint32_t>(1, std::min<uint32_t>(100, steps / 10));
    if (step < warmup) return peak * static_cast<float>(step + 1) / static_cast<float>(warmup);
    const double progress = static_cast<double>(step - warmup) / std::max<uint32_t>(1, steps - warmup);
    return peak * static_cast<float>(0.1 + 0.45 * (1 + std::cos(M_PI * progress)));
  }
};

ggml_opt_optimizer_params schedule_params(void* user_data) {
  const auto* schedule = static_cast<const Schedule*>(user_data);
  ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
  p.adamw.alpha = schedule->learning_rate();
  p.adamw.beta2 = 0.99f;
  p.adamw.wd = 0.0f;
  return p;
}

// Small random weights; RMSNorm gains start at one, as in every llama.
void initialize(const LlamaWeights& weights, uint64_t seed) {
  Random random(seed);
  std::vector<float> values;
  for (ggml_tensor* t : weights.all()) {
    values.resize(static_cast<size_t>(ggml_nelements(t)));
    if (ggml_n_dims(t) == 1) {
      std::fill(values.begin(), values.end(), 1.0f);
    } else {
      for (float& v : values)
        v = random.normal(0.02f);
    }
    ggml_backend_tensor_set(t, values.data(), 0, ggml_nbytes(t));
  }
}

// Where training windows come from: the token stream and the starts of its non-empty lines.
struct Windows {
  const std::vector<int32_t>& tokens;  // begins with <s>
  std::vector<size_t> line_starts;
  size_t window;

  Windows(const std::vector<int32_t>& t, int32_t newline, size_t w) : tokens(t), window(w) {
    for (size_t i = 1; i + window <= tokens.size(); ++i) {
      const bool after_newline = i == 1 || tokens[i - 1] == newline;
      if (after_newline && tokens[i] != newline) line_starts.push_back(i);
    }
  }

  // Writes window inputs and the next token after each into input[window], label[window].
  void fill(Random& random, bool at_line_start, int32_t* input, int32_t* label) const {
    if (at_line_start && !line_starts.empty()) {
      const size_t start = line_starts[random.below(line_starts.size())];
      input[0] = detail::kBosToken;
      std::copy_n(tokens.begin() + static_cast<ptrdiff_t>(start), window - 1, input + 1);
      std::copy_n(tokens.begin() + static_cast<ptrdiff_t>(start), window, label);
      return;
    }
    const size_t start = random.below(tokens.size() - window);
    std::copy_n(tokens.begin() + static_cast<ptrdiff_t>(start), window, input);
    std::copy_n(tokens.begin() + static_cast<ptrdiff_t>(start) + 1, window, label);
  }
};

}  // namespace

Result<TinyModelReport> make_tiny_model(const TinyModelOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&started] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  LlamaShape shape;
  shape.vocab = detail::kMinVocab;
  shape.embedding = options.embedding;
  shape.feed_forward = options.feed_forward;
  shape.layers = options.layers;
  shape.heads = options.heads;
  shape.context_length = options.context_length;
  shape.tied_output = options.tied_output;
  if (auto ok = validate(options, shape); !ok) return tl::unexpected(ok.error());

  auto corpus = read_corpus(options.corpus_path);
  if (!corpus) return tl::unexpected(corpus.error());

  detail::LlamaLogToSpdlog quiet_llama;
  std::unique_ptr<gguf_context, GgufFree> gguf(gguf_init_empty());
  detail::set_llama_metadata(gguf.get(), shape, detail::make_vocabulary(shape.vocab), options.name,
                             LLAMA_FTYPE_ALL_F32);
  auto tokenizer = detail::Tokenizer::load(gguf.get(), options.out_path);
  if (!tokenizer) return tl::unexpected(tokenizer.error());
  auto tokens = tokenizer->tokenize(*corpus, /*add_bos=*/true);
  if (!tokens) return tl::unexpected(tokens.error());
  auto newline = tokenizer->tokenize("\n", false);
  if (!newline || newline->size() != 1) {
    return make_error(ErrorCode::kInternal, "the vocabulary does not map '\\n' to one token");
  }
  const size_t window = options.window;
  if (tokens->size() < window + 2) {
    return make_error(ErrorCode::kInvalidInput,
                      "corpus: '" + options.corpus_path +
                          "' is too short: " + std::to_string(tokens->size()) +
                          " tokens, training needs at least window + 2 = " + std::to_string(window + 2));
  }
  const Windows windows(*tokens, newline->front(), window);

  // Weights and the step's inputs live in one statically allocated context on the CPU backend.
  std::unique_ptr<ggml_backend, BackendFree> backend(ggml_backend_cpu_init());
  if (!backend) return make_error(ErrorCode::kInternal, "ggml: no CPU backend");
  ggml_backend_cpu_set_n_threads(backend.get(), static_cast<int>(options.threads));
  ggml_backend_t backends[] = {backend.get()};
  std::unique_ptr<ggml_backend_sched, SchedFree> sched(
      ggml_backend_sched_new(backends, nullptr, 1, GGML_DEFAULT_GRAPH_SIZE, false, false));

  const size_t n_static = detail::llama_tensor_count(shape) + 2;
  std::unique_ptr<ggml_context, GgmlContextFree> ctx_static(
      ggml_init({n_static * ggml_tensor_overhead(), nullptr, /*no_alloc=*/true}));
  const LlamaWeights weights = detail::declare_llama_weights(ctx_static.get(), shape, GGML_TYPE_F32);
  const auto batch = static_cast<int64_t>(options.batch);
  ggml_tensor* inputs =
      ggml_new_tensor_2d(ctx_static.get(), GGML_TYPE_I32, static_cast<int64_t>(window), batch);
  ggml_set_name(inputs, "tokens");
  ggml_tensor* positions = ggml_new_tensor_1d(ctx_static.get(), GGML_TYPE_I32, static_cast<int64_t>(window));
  ggml_set_name(positions, "positions");
  std::unique_ptr<ggml_backend_buffer, BufferFree> static_buffer(
      ggml_backend_alloc_ctx_tensors(ctx_static.get(), backend.get()));
  if (!static_buffer) return make_error(ErrorCode::kInternal, "ggml: cannot allocate the weights");
  initialize(weights, options.seed);
  std::vector<int32_t> position_values(window);
  for (size_t i = 0; i < window; ++i)
    position_values[i] = static_cast<int32_t>(i);
  ggml_backend_tensor_set(positions, position_values.data(), 0, ggml_nbytes(positions));
  uint64_t parameters = 0;
  for (ggml_tensor* t : weights.all()) {
    ggml_set_param(t);
    parameters += static_cast<uint64_t>(ggml_nelements(t));
  }

  std::unique_ptr<ggml_context, GgmlContextFree> ctx_compute(
      ggml_init({GGML_DEFAULT_GRAPH_SIZE * ggml_tensor_overhead() + 3 * ggml_graph_overhead(), nullptr,
                 /*no_alloc=*/true}));
  ggml_tensor* logits = build_llama_forward(ctx_compute.get(), shape, weights, inputs, positions);

  Schedule schedule{options.learning_rate, options.steps, 0};
  ggml_opt_params params = ggml_opt_default_params(sched.get(), GGML_OPT_LOSS_TYPE_CROSS_ENTROPY);
  params.ctx_compute = ctx_compute.get();
  params.inputs = inputs;
  params.outputs = logits;
  params.optimizer = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
  params.get_opt_pars = schedule_params;
  params.get_opt_pars_ud = &schedule;
  std::unique_ptr<ggml_opt_context, OptFree> opt(ggml_opt_init(params));
  ggml_tensor* labels = ggml_opt_labels(opt.get());

  spdlog::info("tiny model: {} corpus tokens, {} parameters, {} steps of {}x{} tokens on {} threads",
               tokens->size(), parameters, options.steps, batch, window, options.threads);
  Random data_order(options.seed ^ 0x5DEECE66Dull);
  std::vector<int32_t> input_values(window * options.batch);
  std::vector<int32_t> label_ids(window * options.batch);
  // Labels are one-hot rows over the vocabulary, one row per predicted position.
  std::vector<float> label_values(static_cast<size_t>(ggml_nelements(labels)), 0.0f);
  std::vector<float> losses;
  losses.reserve(options.steps);
  const uint32_t report_every = std::max<uint32_t>(1, options.steps / 10);
  for (uint32_t step = 0; step < options.steps; ++step) {
    for (size_t b = 0; b < options.batch; ++b) {
      windows.fill(data_order, b % 2 == 0, &input_values[b * window], &label_ids[b * window]);
    }
    std::fill(label_values.begin(), label_values.end(), 0.0f);
    for (size_t i = 0; i < label_ids.size(); ++i)
      label_values[i * shape.vocab + static_cast<size_t>(label_ids[i])] = 1.0f;
    ggml_backend_tensor_set(inputs, input_values.data(), 0, ggml_nbytes(inputs));
    ggml_backend_tensor_set(labels, label_values.data(), 0, ggml_nbytes(labels));

    schedule.step = step;
    ggml_opt_alloc(opt.get(), /*backward=*/true);
    ggml_opt_eval(opt.get(), nullptr);
    float loss = 0;
    ggml_backend_tensor_get(ggml_opt_loss(opt.get()), &loss, 0, sizeof(loss));
    if (!std::isfinite(loss)) {
      return make_error(ErrorCode::kInternal, "training diverged at step " + std::to_string(step + 1) +
                                                  " (loss is not finite); try a lower learning_rate");
    }
    losses.push_back(loss);
    const TrainingProgress progress{step + 1, options.steps, loss, elapsed()};
    if (options.on_progress) options.on_progress(progress);
    if ((step + 1) % report_every == 0 || step + 1 == options.steps) {
      spdlog::info("tiny model: step {}/{} loss {:.3f} ({:.1f} s)", step + 1, options.steps, loss,
                   progress.elapsed_s);
    }
  }

  for (ggml_tensor* t : weights.all())
    gguf_add_tensor(gguf.get(), t);
  if (auto ok = detail::write_gguf_atomically(gguf.get(), options.out_path); !ok) {
    return tl::unexpected(ok.error());
  }

  TinyModelReport report;
  report.path = options.out_path;
  report.parameters = parameters;
  report.corpus_tokens = tokens->size();
  report.steps = options.steps;
  report.initial_loss = losses.front();
  const size_t tail = std::clamp<size_t>(losses.size() / 5, 1, 20);
  double sum = 0;
  for (size_t i = losses.size() - tail; i < losses.size(); ++i)
    sum += losses[i];
  report.final_loss = static_cast<float>(sum / static_cast<double>(tail));
  report.seconds = elapsed();
  spdlog::info("tiny model: wrote {} (loss {:.3f} -> {:.3f}, {:.1f} s)", report.path, report.initial_loss,
               report.final_loss, report.seconds);
  return report;
}

}  // namespace infernet::models
