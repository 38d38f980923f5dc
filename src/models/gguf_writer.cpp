// The GGUF layout of our llama models and the helpers both makers share (see gguf_writer.hpp).
#include "models/gguf_writer.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <llama.h>
#include <spdlog/spdlog.h>

namespace infernet::models::detail {
namespace {

namespace fs = std::filesystem;

// The normal tokens' alphabet: "▁" (U+2581, SentencePiece's space) and the lower-case letters.
const std::vector<std::string>& normal_alphabet() {
  static const std::vector<std::string> alphabet = [] {
    std::vector<std::string> a{"\xE2\x96\x81"};
    for (char c = 'a'; c <= 'z'; ++c)
      a.emplace_back(1, c);
    return a;
  }();
  return alphabet;
}

std::string byte_token(unsigned value) {
  char text[8];
  std::snprintf(text, sizeof(text), "<0x%02X>", value);
  return text;
}

std::string layer_tensor(size_t layer, std::string_view what) {
  return "blk." + std::to_string(layer) + "." + std::string(what) + ".weight";
}

ggml_tensor* named(ggml_tensor* t, const std::string& name) {
  ggml_set_name(t, name.c_str());
  return t;
}

void init_llama_once() {
  static std::once_flag once;
  std::call_once(once, [] { llama_backend_init(); });
}

// llama.cpp logs a line in pieces (GGML_LOG_LEVEL_CONT continues the previous one): collect until '\n'.
void log_to_spdlog(ggml_log_level level, const char* text, void* /*user_data*/) {
  thread_local std::string line;
  thread_local ggml_log_level line_level = GGML_LOG_LEVEL_DEBUG;
  if (level != GGML_LOG_LEVEL_CONT) line_level = level;
  line += text;
  if (line.empty() || line.back() != '\n') return;
  line.pop_back();
  if (line_level == GGML_LOG_LEVEL_ERROR || line_level == GGML_LOG_LEVEL_WARN) {
    spdlog::warn("llama.cpp: {}", line);
  } else {
    spdlog::debug("llama.cpp: {}", line);
  }
  line.clear();
}

}  // namespace

const char* const kChatMlTemplate =
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

Status validate_shape(const LlamaShape& shape) {
  auto invalid = [](std::string message) { return make_error(ErrorCode::kInvalidInput, std::move(message)); };
  if (shape.layers == 0) return invalid("layers: must be at least 1");
  if (shape.embedding == 0) return invalid("embedding: must be at least 1");
  if (shape.feed_forward == 0) return invalid("feed_forward: must be at least 1");
  if (shape.heads == 0) return invalid("heads: must be at least 1");
  if (shape.embedding % shape.heads != 0) {
    return invalid("embedding: " + std::to_string(shape.embedding) + " is not a multiple of heads (" +
                   std::to_string(shape.heads) + ")");
  }
  // RoPE rotates pairs of dimensions.
  if (shape.head_dim() % 2 != 0) {
    return invalid("heads: embedding / heads = " + std::to_string(shape.head_dim()) + " must be even");
  }
  if (shape.context_length < 2) return invalid("context_length: must be at least 2");
  if (shape.vocab < kMinVocab) {
    return invalid("vocab: must be at least " + std::to_string(kMinVocab) +
                   " (256 bytes, <unk>, <s>, </s> and '\xE2\x96\x81')");
  }
  // Keeps every tensor far below ggml's and GGUF's size limits.
  if (shape.vocab > (1u << 20)) return invalid("vocab: must be at most 1048576");
  if (shape.embedding > 16384) return invalid("embedding: must be at most 16384");
  if (shape.feed_forward > 65536) return invalid("feed_forward: must be at most 65536");
  if (shape.layers > 256) return invalid("layers: must be at most 256");
  return {};
}

Vocabulary make_vocabulary(uint32_t size) {
  Vocabulary v;
  v.tokens.reserve(size);
  v.scores.reserve(size);
  v.types.reserve(size);
  auto add = [&v](std::string text, float score, llama_token_type type) {
    v.tokens.push_back(std::move(text));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, LLAMA_TOKEN_TYPE_UNKNOWN);
  add("<s>", 0, LLAMA_TOKEN_TYPE_CONTROL);
  add("</s>", 0, LLAMA_TOKEN_TYPE_CONTROL);
  for (unsigned b = 0; b < 256; ++b)
    add(byte_token(b), 0, LLAMA_TOKEN_TYPE_BYTE);

  // Strings over the alphabet by length, counting in base 27 within each length.
  const auto& alphabet = normal_alphabet();
  std::vector<size_t> digits{0};
  float score = 0;
  while (v.tokens.size() < size) {
    std::string text;
    for (size_t d : digits)
      text += alphabet[d];
    add(std::move(text), score, LLAMA_TOKEN_TYPE_NORMAL);
    score -= 1;
    size_t i = digits.size();
    while (i > 0 && ++digits[i - 1] == alphabet.size()) {
      digits[i - 1] = 0;
      --i;
    }
    if (i == 0) digits.assign(digits.size() + 1, 0);
  }
  return v;
}

void set_llama_metadata(gguf_context* gguf, const LlamaShape& shape, const Vocabulary& vocab,
                        std::string_view name, uint32_t file_type) {
  gguf_set_val_str(gguf, "general.architecture", "llama");
  gguf_set_val_str(gguf, "general.name", std::string(name).c_str());
  gguf_set_val_u32(gguf, "general.file_type", file_type);

  gguf_set_val_u32(gguf, "llama.context_length", shape.context_length);
  gguf_set_val_u32(gguf, "llama.embedding_length", shape.embedding);
  gguf_set_val_u32(gguf, "llama.block_count", shape.layers);
  gguf_set_val_u32(gguf, "llama.feed_forward_length", shape.feed_forward);
  gguf_set_val_u32(gguf, "llama.attention.head_count", shape.heads);
  gguf_set_val_u32(gguf, "llama.attention.head_count_kv", shape.heads);
  gguf_set_val_u32(gguf, "llama.rope.dimension_count", shape.head_dim());
  gguf_set_val_f32(gguf, "llama.rope.freq_base", shape.rope_freq_base);
  gguf_set_val_f32(gguf, "llama.attention.layer_norm_rms_epsilon", shape.rms_eps);
  gguf_set_val_u32(gguf, "llama.vocab_size", static_cast<uint32_t>(vocab.tokens.size()));

  gguf_set_val_str(gguf, "tokenizer.ggml.model", "llama");
  std::vector<const char*> texts;
  texts.reserve(vocab.tokens.size());
  for (const auto& t : vocab.tokens)
    texts.push_back(t.c_str());
  gguf_set_arr_str(gguf, "tokenizer.ggml.tokens", texts.data(), texts.size());
  gguf_set_arr_data(gguf, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, vocab.scores.data(),
                    vocab.scores.size());
  gguf_set_arr_data(gguf, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, vocab.types.data(),
                    vocab.types.size());
  gguf_set_val_u32(gguf, "tokenizer.ggml.unknown_token_id", kUnkToken);
  gguf_set_val_u32(gguf, "tokenizer.ggml.bos_token_id", kBosToken);
  gguf_set_val_u32(gguf, "tokenizer.ggml.eos_token_id", kEosToken);
  gguf_set_val_bool(gguf, "tokenizer.ggml.add_bos_token", true);
  gguf_set_val_bool(gguf, "tokenizer.ggml.add_eos_token", false);
  // Otherwise llama.cpp prepends a space to every text, which the training windows never saw.
  gguf_set_val_bool(gguf, "tokenizer.ggml.add_space_prefix", false);
  gguf_set_val_str(gguf, "tokenizer.chat_template", kChatMlTemplate);
}

std::vector<ggml_tensor*> LlamaWeights::all() const {
  std::vector<ggml_tensor*> out{token_embd, output_norm};
  if (output != nullptr) out.push_back(output);
  for (const auto& l : layers) {
    out.insert(out.end(), {l.attn_norm, l.attn_q, l.attn_k, l.attn_v, l.attn_output, l.ffn_norm, l.ffn_gate,
                           l.ffn_up, l.ffn_down});
  }
  return out;
}

size_t llama_tensor_count(const LlamaShape& shape) {
  return 3 + 9 * static_cast<size_t>(shape.layers);
}

LlamaWeights declare_llama_weights(ggml_context* ctx, const LlamaShape& shape, ggml_type matrix_type) {
  const int64_t d = shape.embedding;
  const int64_t ff = shape.feed_forward;
  const int64_t n_vocab = shape.vocab;
  // ggml's ne[0] is the input dimension: mul_mat(w, x) maps ne[0] to ne[1].
  auto matrix = [&](int64_t in, int64_t out, const std::string& name) {
    return named(ggml_new_tensor_2d(ctx, matrix_type, in, out), name);
  };
  auto norm = [&](const std::string& name) { return named(ggml_new_tensor_1d(ctx, GGML_TYPE_F32, d), name); };

  LlamaWeights w;
  w.token_embd = matrix(d, n_vocab, "token_embd.weight");
  w.output_norm = norm("output_norm.weight");
  if (!shape.tied_output) w.output = matrix(d, n_vocab, "output.weight");
  w.layers.resize(shape.layers);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    auto& l = w.layers[i];
    l.attn_norm = norm(layer_tensor(i, "attn_norm"));
    l.attn_q = matrix(d, d, layer_tensor(i, "attn_q"));
    l.attn_k = matrix(d, d, layer_tensor(i, "attn_k"));
    l.attn_v = matrix(d, d, layer_tensor(i, "attn_v"));
    l.attn_output = matrix(d, d, layer_tensor(i, "attn_output"));
    l.ffn_norm = norm(layer_tensor(i, "ffn_norm"));
    l.ffn_gate = matrix(d, ff, layer_tensor(i, "ffn_gate"));
    l.ffn_up = matrix(d, ff, layer_tensor(i, "ffn_up"));
    l.ffn_down = matrix(ff, d, layer_tensor(i, "ffn_down"));
  }
  return w;
}

Status check_output_path(const std::string& out_path) {
  if (out_path.empty()) return make_error(ErrorCode::kInvalidInput, "out: no output path given");
  fs::path path(out_path);
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return make_error(ErrorCode::kInvalidInput, "out: '" + out_path + "' is a directory");
  }
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) {
    return make_error(ErrorCode::kInvalidInput, "out: directory '" + dir.string() + "' does not exist");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return make_error(ErrorCode::kInvalidInput,
                      "out: directory '" + dir.string() + "' is not writable: " + std::strerror(errno));
  }
  return {};
}

std::string temporary_path(const std::string& path, std::string_view purpose) {
  return path + ".tmp-" + std::string(purpose) + "-" + std::to_string(::getpid());
}

Status rename_into_place(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) {
    fs::remove(from, ec);
    return make_error(ErrorCode::kIo,
                      "out: cannot rename the finished file onto '" + to + "': " + ec.message());
  }
  return {};
}

Status write_gguf_atomically(const gguf_context* gguf, const std::string& path) {
  const std::string tmp = temporary_path(path, "write");
  if (!gguf_write_to_file(gguf, tmp.c_str(), /*only_meta=*/false)) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return make_error(ErrorCode::kIo, "out: cannot write '" + tmp + "' (disk full or not writable?)");
  }
  return rename_into_place(tmp, path);
}

uint64_t Random::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Random::below(uint64_t n) {
  // The modulo bias is below 2^-40 for the sizes used here.
  return next() % n;
}

double Random::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

float Random::normal(float stddev) {
  if (has_spare_) {
    has_spare_ = false;
    return static_cast<float>(spare_ * stddev);
  }
  double u1 = 0;
  while (u1 <= 0)
    u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2.0 * M_PI * u2);
  has_spare_ = true;
  return static_cast<float>(r * std::cos(2.0 * M_PI * u2) * stddev);
}

LlamaLogToSpdlog::LlamaLogToSpdlog() {
  llama_log_get(&previous_, &previous_data_);
  llama_log_set(log_to_spdlog, nullptr);
}

LlamaLogToSpdlog::~LlamaLogToSpdlog() {
  llama_log_set(previous_, previous_data_);
}

Result<Tokenizer> Tokenizer::load(const gguf_context* metadata, const std::string& out_path) {
  init_llama_once();
  // llama.cpp reads models only from files: write the keys (no tensors) next to the output and load that.
  gguf_context* copy = gguf_init_empty();
  gguf_set_kv(copy, metadata);
  const std::string path = temporary_path(out_path, "vocab");
  const bool written = gguf_write_to_file(copy, path.c_str(), /*only_meta=*/false);
  gguf_free(copy);
  std::error_code ec;
  if (!written) {
    fs::remove(path, ec);
    return make_error(ErrorCode::kIo, "out: cannot write '" + path + "'");
  }
  llama_model_params params = llama_model_default_params();
  params.vocab_only = true;
  params.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(path.c_str(), params);
  fs::remove(path, ec);
  if (model == nullptr) {
    return make_error(ErrorCode::kInternal,
                      "llama.cpp did not load the vocabulary (run with --log-level debug)");
  }
  return Tokenizer(model);
}

Tokenizer::~Tokenizer() {
  if (model_ != nullptr) llama_model_free(model_);
}

Result<std::vector<int32_t>> Tokenizer::tokenize(std::string_view text, bool add_bos) const {
  if (text.size() > INT32_MAX / 2) return make_error(ErrorCode::kLimitExceeded, "corpus: larger than 1 GiB");
  const llama_vocab* vocab = llama_model_get_vocab(model_);
  // Byte-level: at most one token per byte, plus <s>.
  std::vector<llama_token> tokens(text.size() + 2);
  int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), add_bos, /*parse_special=*/false);
  if (n < 0) {
    tokens.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), add_bos, false);
  }
  if (n < 0) return make_error(ErrorCode::kInternal, "llama.cpp could not tokenize the corpus");
  tokens.resize(static_cast<size_t>(n));
  return std::vector<int32_t>(tokens.begin(), tokens.end());
}

}  // namespace infernet::models::detail
