// The llama forward pass as a ggml graph, for training: the same computation llama.cpp's llama architecture
// runs at inference (RMSNorm, RoPE of type NORM, causal softmax attention, SwiGLU feed-forward), over a batch
// of equal-length windows, so that weights trained here mean the same thing when llama.cpp loads them.
#pragma once

#include <ggml.h>

#include "models/gguf_writer.hpp"

namespace infernet::models::detail {

// Builds the logits [vocab, window * batch] for `tokens` [window, batch] (i32) at `positions` [window] (i32,
// 0..window-1) in ctx (no_alloc; ggml-opt allocates the intermediate tensors).
ggml_tensor* build_llama_forward(ggml_context* ctx, const LlamaShape& shape, const LlamaWeights& weights,
                                 ggml_tensor* tokens, ggml_tensor* positions);

}  // namespace infernet::models::detail
