// The llama engine: serves every GGUF file in a models directory through llama.cpp's C API.
//
// Each model has one llama.cpp context with `slots` sequences and one thread that runs them with continuous
// batching: every step decodes one batch holding the next prompt chunk or the next token of each active job,
// so jobs join and leave between tokens. Each sequence has its own KV cache stream (kv_unified off), so a
// job's attention never sees another job's cells.
//
// Determinism: a job with deterministic = true is decoded in batches of its own (never batched with another
// job's tokens, which would change the matrix shapes and so the floating-point sums) with the context's
// fixed threads and micro-batch size; with flash attention off (the default) its logits, and so its text, do
// not depend on the thread count either. ModelDescription::determinism states what is pinned.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "engine/engine.hpp"

namespace infernet::engine {

struct LlamaEngineOptions {
  std::filesystem::path models_dir;
  // Where fingerprints are cached between runs; "" keeps them in memory only.
  std::filesystem::path fingerprint_cache;
  uint32_t slots = 2;          // jobs decoded together per model
  size_t queue_capacity = 64;  // jobs waiting for a slot, all models together
  uint32_t context = 2048;     // tokens per job (prompt and output), at most the model's training context
  int threads = 0;             // 0: one per core
  uint32_t batch = 512;        // tokens per decode call (llama.cpp's n_batch and n_ubatch)
  bool flash_attn = false;     // on: faster prefill, but the text then depends on the thread count
  int gpu_layers = -1;         // layers offloaded to a GPU when one is present; -1: all
  // FOR TESTS ONLY (provider.test_token_delay_ms): a pause after each token; timing only, never the text.
  std::chrono::milliseconds test_token_delay{0};
};

// Scans and loads the models. Errors: kIo when the directory cannot be listed, kInvalidInput when no file in
// it is a usable model (each skipped file is logged with its reason).
Result<std::unique_ptr<Engine>> make_llama_engine(const LlamaEngineOptions& options);

// A short description of the llama.cpp build: "llama.cpp <commit> (cpu)" or "(cuda)".
std::string llama_build_description();

}  // namespace infernet::engine
