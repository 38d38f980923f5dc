// The training forward pass. Each step mirrors llama.cpp's src/models/llama.cpp so that inference in
// llama.cpp reproduces the training loss; only the attention is spelled out with ops that have a backward
// pass in ggml (diag_mask_inf + soft_max instead of a mask tensor or flash attention, which have none).
#include "models/llama_graph.hpp"

#include <cmath>

namespace infernet::models::detail {
namespace {

ggml_tensor* rms_norm(ggml_context* ctx, ggml_tensor* x, ggml_tensor* weight, float eps) {
  return ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), weight);
}

// llama.cpp's RoPE for the llama architecture: type NORM (adjacent pairs), no scaling, no YaRN.
ggml_tensor* rope(ggml_context* ctx, ggml_tensor* x, ggml_tensor* positions, const LlamaShape& shape) {
  return ggml_rope_ext(ctx, x, positions, nullptr, static_cast<int>(shape.head_dim()), GGML_ROPE_TYPE_NORMAL,
                       static_cast<int>(shape.context_length), shape.rope_freq_base, /*freq_scale=*/1.0f,
                       /*ext_factor=*/0.0f, /*attn_factor=*/1.0f, /*beta_fast=*/32.0f, /*beta_slow=*/1.0f);
}

// Causal multi-head self-attention of x [embedding, window * batch].
ggml_tensor* attention(ggml_context* ctx, const LlamaShape& shape, const LlamaLayer& layer, ggml_tensor* x,
                       ggml_tensor* positions, int64_t window, int64_t batch) {
  const int64_t head_dim = shape.head_dim();
  const int64_t heads = shape.heads;
  auto project = [&](ggml_tensor* w) {
    return ggml_reshape_4d(ctx, ggml_mul_mat(ctx, w, x), head_dim, heads, window, batch);
  };
  ggml_tensor* q = rope(ctx, project(layer.attn_q), positions, shape);
  ggml_tensor* k = rope(ctx, project(layer.attn_k), positions, shape);
  ggml_tensor* v = project(layer.attn_v);

  // [head_dim, window, heads, batch]: one matrix per head and sequence.
  q = ggml_cont(ctx, ggml_permute(ctx, q, 0, 2, 1, 3));
  k = ggml_cont(ctx, ggml_permute(ctx, k, 0, 2, 1, 3));
  // scores [key, query, heads, batch]; a query sees only keys at or before it.
  ggml_tensor* scores = ggml_mul_mat(ctx, k, q);
  scores = ggml_diag_mask_inf(ctx, scores, 0);
  scores = ggml_soft_max_ext(ctx, scores, nullptr, 1.0f / std::sqrt(static_cast<float>(head_dim)), 0.0f);
  // v as [window, head_dim, heads, batch], so that mul_mat sums over keys.
  ggml_tensor* vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));
  ggml_tensor* out = ggml_mul_mat(ctx, vt, scores);  // [head_dim, query, heads, batch]
  out = ggml_cont(ctx, ggml_permute(ctx, out, 0, 2, 1, 3));
  out = ggml_reshape_2d(ctx, out, shape.embedding, window * batch);
  return ggml_mul_mat(ctx, layer.attn_output, out);
}

ggml_tensor* feed_forward(ggml_context* ctx, const LlamaLayer& layer, ggml_tensor* x) {
  ggml_tensor* gate = ggml_mul_mat(ctx, layer.ffn_gate, x);
  ggml_tensor* up = ggml_mul_mat(ctx, layer.ffn_up, x);
  return ggml_mul_mat(ctx, layer.ffn_down, ggml_swiglu_split(ctx, gate, up));
}

}  // namespace

ggml_tensor* build_llama_forward(ggml_context* ctx, const LlamaShape& shape, const LlamaWeights& weights,
                                 ggml_tensor* tokens, ggml_tensor* positions) {
  const int64_t window = tokens->ne[0];
  const int64_t batch = tokens->ne[1];
  ggml_tensor* x = ggml_get_rows(ctx, weights.token_embd, ggml_reshape_1d(ctx, tokens, window * batch));
  for (const auto& layer : weights.layers) {
    ggml_tensor* h = rms_norm(ctx, x, layer.attn_norm, shape.rms_eps);
    x = ggml_add(ctx, x, attention(ctx, shape, layer, h, positions, window, batch));
    h = rms_norm(ctx, x, layer.ffn_norm, shape.rms_eps);
    x = ggml_add(ctx, x, feed_forward(ctx, layer, h));
  }
  x = rms_norm(ctx, x, weights.output_norm, shape.rms_eps);
  ggml_tensor* output = weights.output != nullptr ? weights.output : weights.token_embd;
  return ggml_mul_mat(ctx, output, x);
}

}  // namespace infernet::models::detail
