// THE PROXY ENGINE: runs jobs on an OpenAI-compatible server the provider already runs (llama.cpp's
// llama-server, Ollama, vLLM) instead of loading a model itself. Each run is one streamed request to that
// server's /chat/completions (a request with messages) or /completions (a raw prompt); the pieces, usage and
// finish reason come back from its server-sent events. docs/engines.md describes the mapping.
//
// The upstream is outside input: every size and JSON shape it sends is checked, and anything unexpected
// fails the run with kIo rather than reaching the caller.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "engine/engine.hpp"

namespace infernet::engine {

struct ProxyEngineOptions {
  // The API's root, where /models and /chat/completions live, e.g. "http://127.0.0.1:8080/v1". http only.
  std::string base_url;
  std::string api_key;  // sent as "Authorization: Bearer <api_key>" when not empty
  // The model names to serve (sent upstream as "model"). Empty: every model GET {base_url}/models lists.
  std::vector<std::string> models;
  size_t slots = 2;            // requests upstream at the same time; match the server's own parallelism
  size_t queue_capacity = 64;  // runs waiting for a slot
  // The longest wait for the upstream: to connect and answer (it answers only once the prompt is processed
  // and the first token is out, so this covers prompt processing on a CPU), and between two parts of a
  // stream. A whole generation may take longer.
  std::chrono::milliseconds timeout{120000};
  size_t max_response_bytes = 64 << 20;  // one run's whole stream; bigger fails the run with kIo
};

// Asks the upstream for its models (GET {base_url}/models) and returns an engine serving them. Errors:
// kInvalidInput (bad base_url or api_key), kUnsupported (https), kIo (upstream unreachable, refusing the
// key, answering something that is not a model list, or listing no models when options.models is empty).
// When options.models is given, an upstream without a model list (404) is accepted.
Result<std::unique_ptr<Engine>> make_proxy_engine(const ProxyEngineOptions& options);

}  // namespace infernet::engine
