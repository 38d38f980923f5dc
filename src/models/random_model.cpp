// The random model: a llama of realistic size with random-normal weights, for speed measurements. It is
// written in f16 (f32 when asked) and, for the quantized types, converted by llama.cpp's own quantizer, so
// its tensors have exactly the layout a downloaded model of that type has.
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include <ggml.h>
#include <gguf.h>
#include <llama.h>
#include <spdlog/spdlog.h>

#include "models/gguf_writer.hpp"
#include "models/models.hpp"

namespace infernet::models {
namespace {

namespace fs = std::filesystem;
using detail::LlamaShape;

struct Quantization {
  std::string_view name;
  llama_ftype ftype;
  ggml_type written;  // the type of the matrices in the file handed to the quantizer (or the final file)
  bool quantize;
};

constexpr Quantization kQuantizations[] = {
    {"f32", LLAMA_FTYPE_ALL_F32, GGML_TYPE_F32, false},
    {"f16", LLAMA_FTYPE_MOSTLY_F16, GGML_TYPE_F16, false},
    {"q8_0", LLAMA_FTYPE_MOSTLY_Q8_0, GGML_TYPE_F16, true},
    {"q6_k", LLAMA_FTYPE_MOSTLY_Q6_K, GGML_TYPE_F16, true},
    {"q5_1", LLAMA_FTYPE_MOSTLY_Q5_1, GGML_TYPE_F16, true},
    {"q5_0", LLAMA_FTYPE_MOSTLY_Q5_0, GGML_TYPE_F16, true},
    {"q4_k_m", LLAMA_FTYPE_MOSTLY_Q4_K_M, GGML_TYPE_F16, true},
    {"q4_1", LLAMA_FTYPE_MOSTLY_Q4_1, GGML_TYPE_F16, true},
    {"q4_0", LLAMA_FTYPE_MOSTLY_Q4_0, GGML_TYPE_F16, true},
};

// Every quantized type packs rows in blocks of 32 values (k-quants in 256, with a fallback llama.cpp picks).
constexpr uint32_t kQuantBlock = 32;

struct GgmlContextFree {
  void operator()(ggml_context* c) const { ggml_free(c); }
};
struct GgufFree {
  void operator()(gguf_context* c) const { gguf_free(c); }
};

const Quantization* find_quantization(std::string_view name) {
  for (const auto& q : kQuantizations) {
    if (q.name == name) return &q;
  }
  return nullptr;
}

std::string quantization_list() {
  std::string out;
  for (const auto& q : kQuantizations) {
    if (!out.empty()) out += ", ";
    out += q.name;
  }
  return out;
}

// Fills every matrix with N(0, 0.02^2) and every norm with ones; f16 goes through an f32 row buffer.
void fill_random(const detail::LlamaWeights& weights, uint64_t seed) {
  detail::Random random(seed);
  std::vector<float> row;
  for (ggml_tensor* t : weights.all()) {
    const int64_t n = ggml_nelements(t);
    if (ggml_n_dims(t) == 1) {
      auto* data = static_cast<float*>(t->data);
      std::fill(data, data + n, 1.0f);
      continue;
    }
    const int64_t cols = t->ne[0];
    row.resize(static_cast<size_t>(cols));
    for (int64_t r = 0; r < n / cols; ++r) {
      for (float& v : row)
        v = random.normal(0.02f);
      if (t->type == GGML_TYPE_F16) {
        ggml_fp32_to_fp16_row(row.data(), static_cast<ggml_fp16_t*>(t->data) + r * cols, cols);
      } else {
        std::copy(row.begin(), row.end(), static_cast<float*>(t->data) + r * cols);
      }
    }
  }
}

Status quantize(const std::string& from, const std::string& to, const Quantization& q, uint32_t threads) {
  llama_model_quantize_params params = llama_model_quantize_default_params();
  params.ftype = q.ftype;
  params.nthread = threads == 0 ? static_cast<int32_t>(std::thread::hardware_concurrency())
                                : static_cast<int32_t>(threads);
  if (llama_model_quantize(from.c_str(), to.c_str(), &params) != 0) {
    std::error_code ec;
    fs::remove(to, ec);
    return make_error(ErrorCode::kInternal, "llama.cpp could not quantize to " + std::string(q.name) +
                                                " (run with --log-level debug for its reasons)");
  }
  return {};
}

}  // namespace

std::vector<std::string_view> random_model_quantizations() {
  std::vector<std::string_view> out;
  for (const auto& q : kQuantizations)
    out.push_back(q.name);
  return out;
}

uint64_t llama_parameter_count(uint32_t layers, uint32_t embedding, uint32_t feed_forward, uint32_t vocab,
                               bool tied_output) {
  const uint64_t d = embedding;
  const uint64_t per_layer = 4 * d * d + 3 * d * feed_forward + 2 * d;
  return (tied_output ? 1 : 2) * d * vocab + d + layers * per_layer;
}

Result<RandomModelReport> make_random_model(const RandomModelOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const Quantization* q = find_quantization(options.quantization);
  if (q == nullptr) {
    return make_error(ErrorCode::kInvalidInput, "quantization: unknown type '" + options.quantization +
                                                    "' (one of " + quantization_list() + ")");
  }
  LlamaShape shape;
  shape.vocab = options.vocab;
  shape.embedding = options.embedding;
  shape.feed_forward = options.feed_forward;
  shape.layers = options.layers;
  shape.heads = options.heads;
  shape.context_length = options.context_length;
  shape.tied_output = options.tied_output;
  if (auto ok = detail::validate_shape(shape); !ok) return tl::unexpected(ok.error());
  if (q->quantize && (shape.embedding % kQuantBlock != 0 || shape.feed_forward % kQuantBlock != 0)) {
    return make_error(
        ErrorCode::kInvalidInput,
        "quantization: " + std::string(q->name) + " needs embedding and feed_forward to be multiples of 32");
  }
  if (options.threads > 512) return make_error(ErrorCode::kInvalidInput, "threads: must be at most 512");
  if (auto ok = detail::check_output_path(options.out_path); !ok) return tl::unexpected(ok.error());

  detail::LlamaLogToSpdlog quiet_llama;
  const uint64_t parameters = llama_parameter_count(shape.layers, shape.embedding, shape.feed_forward,
                                                    shape.vocab, shape.tied_output);
  spdlog::info("random model: {} parameters, {} layers, embedding {}, vocab {}, {}", parameters, shape.layers,
               shape.embedding, shape.vocab, q->name);

  // One context holds every tensor's data: about 2 bytes per parameter in f16.
  const size_t data_bytes = static_cast<size_t>(parameters) * ggml_type_size(q->written) + (64u << 10);
  const size_t n_tensors = detail::llama_tensor_count(shape);
  std::unique_ptr<ggml_context, GgmlContextFree> ctx(ggml_init(
      {data_bytes + n_tensors * (ggml_tensor_overhead() + GGML_MEM_ALIGN), nullptr, /*no_alloc=*/false}));
  if (!ctx) return make_error(ErrorCode::kInternal, "out of memory for the weights");
  const detail::LlamaWeights weights = detail::declare_llama_weights(ctx.get(), shape, q->written);
  fill_random(weights, options.seed);

  std::unique_ptr<gguf_context, GgufFree> gguf(gguf_init_empty());
  detail::set_llama_metadata(gguf.get(), shape, detail::make_vocabulary(shape.vocab), options.name,
                             q->quantize ? LLAMA_FTYPE_MOSTLY_F16 : q->ftype);
  for (ggml_tensor* t : weights.all())
    gguf_add_tensor(gguf.get(), t);

  if (!q->quantize) {
    if (auto ok = detail::write_gguf_atomically(gguf.get(), options.out_path); !ok) {
      return tl::unexpected(ok.error());
    }
  } else {
    const std::string unquantized = detail::temporary_path(options.out_path, "f16");
    if (!gguf_write_to_file(gguf.get(), unquantized.c_str(), /*only_meta=*/false)) {
      std::error_code ec;
      fs::remove(unquantized, ec);
      return make_error(ErrorCode::kIo, "out: cannot write '" + unquantized + "' (disk full?)");
    }
    gguf.reset();
    ctx.reset();
    const std::string quantized = detail::temporary_path(options.out_path, "quant");
    Status ok = quantize(unquantized, quantized, *q, options.threads);
    std::error_code ec;
    fs::remove(unquantized, ec);
    if (!ok) return tl::unexpected(ok.error());
    if (auto renamed = detail::rename_into_place(quantized, options.out_path); !renamed) {
      return tl::unexpected(renamed.error());
    }
  }

  RandomModelReport report;
  report.path = options.out_path;
  report.parameters = parameters;
  report.quantization = std::string(q->name);
  std::error_code ec;
  report.file_bytes = fs::file_size(options.out_path, ec);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("random model: wrote {} ({:.1f} MB, {:.1f} s)", report.path, report.file_bytes / 1e6,
               report.seconds);
  return report;
}

}  // namespace infernet::models
