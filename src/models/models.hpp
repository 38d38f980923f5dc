// The project's own GGUF models, made by its own C++ code, so that tests, demos and benchmarks run a real
// llama.cpp model on any machine without downloading weights (no registry ships any).
//
// Two kinds:
//   - the tiny model: a ~140K-parameter llama trained from scratch with ggml's optimizer on a text corpus
//     (by default the Apache-2.0 licence Debian ships); greedy decoding continues lines of that corpus, so
//     tests can predict its output. Deterministic for a given seed and thread count.
//   - the random model: a ~100M-parameter llama with random weights, quantized by llama.cpp. Its text is
//     noise; its speed is that of a real model of its size, for benchmarks.
//
// Both use a byte-level SentencePiece ("llama") vocabulary: the 256 byte tokens, <unk>, <s>, </s> and "▁"
// (the random model adds synthetic tokens up to its vocabulary size), and the ChatML chat template.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace infernet::models {

// The corpus every machine has: Debian's base-files package ships it.
inline constexpr std::string_view kDefaultCorpus = "/usr/share/common-licenses/Apache-2.0";

// One optimizer step of the tiny model's training, for progress reports.
struct TrainingProgress {
  uint32_t step = 0;  // 1-based
  uint32_t steps = 0;
  float loss = 0;  // mean cross-entropy per token of this step's batch, in nats
  double elapsed_s = 0;
};

struct TinyModelOptions {
  std::string corpus_path{kDefaultCorpus};
  std::string out_path;
  uint32_t steps = 1200;
  // The result depends on the thread count (the order of floating-point sums), so a fixed recipe fixes it.
  // One thread is the default: ggml's threads meet at a barrier after every graph node, and on a machine
  // busy with other work (a parallel build) two threads spend most of their time waiting for each other.
  uint32_t threads = 1;
  uint64_t seed = 42;  // weight initialisation and the order of training windows

  // Shape. The defaults learn the 11 KB Apache-2.0 text well enough to recite most of its lines, in about a
  // minute on one core.
  uint32_t layers = 2;
  uint32_t embedding = 64;
  uint32_t feed_forward = 192;
  uint32_t heads = 4;
  uint32_t context_length = 256;
  bool tied_output = false;  // share token_embd as the output projection

  // Training: `batch` windows of `window` tokens per step; AdamW with warm-up and cosine decay.
  uint32_t window = 128;
  uint32_t batch = 8;
  float learning_rate = 4e-3f;

  std::string name = "infernet-tiny";  // general.name
  // Called after every step when set (from the calling thread).
  std::function<void(const TrainingProgress&)> on_progress;
};

struct TinyModelReport {
  std::string path;
  uint64_t parameters = 0;
  uint64_t corpus_tokens = 0;
  uint32_t steps = 0;
  float initial_loss = 0;  // the first step's loss, before any update
  float final_loss = 0;    // mean over the last steps (a fifth of them, at most 20)
  double seconds = 0;      // the whole make: tokenizing, training, writing
};

// Trains the tiny model and writes it to out_path (through a temporary file, renamed at the end).
// Errors: kInvalidInput naming the option (corpus missing or too short, a zero or inconsistent shape, an
// output directory that does not exist or is not writable); kIo when writing fails; kInternal when llama.cpp
// refuses the vocabulary.
Result<TinyModelReport> make_tiny_model(const TinyModelOptions& options);

struct RandomModelOptions {
  std::string out_path;
  // Defaults: ~110M parameters (tied output), the size of a small real model.
  uint32_t layers = 12;
  uint32_t embedding = 768;
  uint32_t feed_forward = 2048;
  uint32_t heads = 12;
  uint32_t vocab = 32000;
  uint32_t context_length = 2048;
  bool tied_output = true;
  std::string quantization = "q8_0";  // one of random_model_quantizations()
  uint64_t seed = 1;
  uint32_t threads = 0;                  // for quantizing; 0: all cores
  std::string name = "infernet-random";  // general.name
};

struct RandomModelReport {
  std::string path;
  uint64_t parameters = 0;
  std::string quantization;
  uint64_t file_bytes = 0;
  double seconds = 0;
};

// Writes a llama model with random-normal weights (std 0.02) and quantizes it with llama.cpp.
// Errors: kInvalidInput naming the option (zero or inconsistent shape, unknown quantization, vocab too small,
// output directory missing); kIo when writing fails; kInternal when llama.cpp's quantizer fails.
Result<RandomModelReport> make_random_model(const RandomModelOptions& options);

// The names make_random_model accepts: "f32", "f16", "q8_0", "q4_0", ...
std::vector<std::string_view> random_model_quantizations();

// Parameters of a llama model of this shape (what llama.cpp's llama_model_n_params reports for our files).
uint64_t llama_parameter_count(uint32_t layers, uint32_t embedding, uint32_t feed_forward, uint32_t vocab,
                               bool tied_output);

}  // namespace infernet::models
