// What the two model makers share (internal to src/models): the llama shape and its tensors, the byte-level
// vocabulary, the GGUF metadata llama.cpp needs to load a llama model, writing a file so that a killed make
// leaves no half file, a seeded normal generator, and llama.cpp's tokenizer on a vocabulary-only copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <ggml.h>
#include <gguf.h>

#include "core/result.hpp"

struct llama_model;

namespace infernet::models::detail {

// The llama hyperparameters, written as llama.* keys and used to declare the tensors.
struct LlamaShape {
  uint32_t vocab = 0;
  uint32_t embedding = 0;
  uint32_t feed_forward = 0;
  uint32_t layers = 0;
  uint32_t heads = 0;  // as many key/value heads: no grouped-query attention
  uint32_t context_length = 0;
  bool tied_output = false;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;

  uint32_t head_dim() const { return embedding / heads; }
};

// Checks a shape's numbers; the message names the option ("layers: must be at least 1").
Status validate_shape(const LlamaShape& shape);

// Token ids of the byte-level vocabulary, in SentencePiece's usual order.
inline constexpr int32_t kUnkToken = 0;
inline constexpr int32_t kBosToken = 1;
inline constexpr int32_t kEosToken = 2;
inline constexpr int32_t kFirstByteToken = 3;  // <0x00>; <0xFF> is 258
inline constexpr int32_t kSpaceToken = 259;    // "▁", the first normal token
inline constexpr uint32_t kMinVocab = 260;

struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama_token_type
};

// <unk>, <s>, </s>, <0x00>..<0xFF>, then normal tokens up to `size`: "▁" first, then every string over
// "▁a-z" by length, so that SentencePiece's merges reach each of them (shorter strings score higher).
Vocabulary make_vocabulary(uint32_t size);

// The standard ChatML template; llama_chat_apply_template recognises it as "chatml".
extern const char* const kChatMlTemplate;

// Sets general.*, llama.* and tokenizer.* keys. file_type is a llama_ftype.
void set_llama_metadata(gguf_context* gguf, const LlamaShape& shape, const Vocabulary& vocab,
                        std::string_view name, uint32_t file_type);

// The weights of a llama model, named as llama.cpp expects ("blk.0.attn_q.weight").
struct LlamaLayer {
  ggml_tensor* attn_norm = nullptr;
  ggml_tensor* attn_q = nullptr;
  ggml_tensor* attn_k = nullptr;
  ggml_tensor* attn_v = nullptr;
  ggml_tensor* attn_output = nullptr;
  ggml_tensor* ffn_norm = nullptr;
  ggml_tensor* ffn_gate = nullptr;
  ggml_tensor* ffn_up = nullptr;
  ggml_tensor* ffn_down = nullptr;
};

struct LlamaWeights {
  ggml_tensor* token_embd = nullptr;
  ggml_tensor* output_norm = nullptr;
  ggml_tensor* output = nullptr;  // null when tied to token_embd
  std::vector<LlamaLayer> layers;

  // Every tensor, norms included, in file order.
  std::vector<ggml_tensor*> all() const;
};

// Declares the weights in ctx: matrices of matrix_type, norms always f32.
LlamaWeights declare_llama_weights(ggml_context* ctx, const LlamaShape& shape, ggml_type matrix_type);
// How many tensors declare_llama_weights makes, to size a context.
size_t llama_tensor_count(const LlamaShape& shape);

// Fails early, before minutes of work, if out_path is empty or its directory is missing or not writable.
Status check_output_path(const std::string& out_path);
// A sibling of path unique to this process, for writing before the final rename.
std::string temporary_path(const std::string& path, std::string_view purpose);
// Writes the GGUF to a temporary sibling and renames it onto path. Errors: kIo.
Status write_gguf_atomically(const gguf_context* gguf, const std::string& path);
// Renames, or removes `from` and fails. Errors: kIo.
Status rename_into_place(const std::string& from, const std::string& to);

// A seeded generator whose sequence is the same on every platform (unlike std::normal_distribution).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next();             // splitmix64
  uint64_t below(uint64_t n);  // uniform in [0, n)
  double uniform();            // in [0, 1)
  float normal(float stddev);  // Box-Muller
 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Routes llama.cpp's and ggml's log lines to spdlog at debug level (warnings and errors at warn) while alive,
// then restores the previous handlers. Not for concurrent use from several threads.
class LlamaLogToSpdlog {
 public:
  LlamaLogToSpdlog();
  ~LlamaLogToSpdlog();
  LlamaLogToSpdlog(const LlamaLogToSpdlog&) = delete;
  LlamaLogToSpdlog& operator=(const LlamaLogToSpdlog&) = delete;

 private:
  ggml_log_callback previous_ = nullptr;
  void* previous_data_ = nullptr;
};

// llama.cpp's own tokenizer for our vocabulary: training text is tokenized exactly as inference will be.
class Tokenizer {
 public:
  // Loads a vocabulary-only copy of the metadata (written to a temporary file next to out_path).
  static Result<Tokenizer> load(const gguf_context* metadata, const std::string& out_path);
  ~Tokenizer();
  Tokenizer(Tokenizer&& other) noexcept : model_(other.model_) { other.model_ = nullptr; }
  Tokenizer& operator=(Tokenizer&&) = delete;
  Tokenizer(const Tokenizer&) = delete;

  // With add_bos, prepends <s> (the vocabulary's add_bos_token is true).
  Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_bos) const;

 private:
  explicit Tokenizer(llama_model* model) : model_(model) {}
  llama_model* model_;
};

}  // namespace infernet::models::detail
