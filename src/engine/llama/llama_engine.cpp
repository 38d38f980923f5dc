#include "engine/llama/llama_engine.hpp"

#include <ggml.h>
#include <llama.h>
#include <spdlog/spdlog.h>

#include <map>
#include <mutex>
#include <thread>

#include "engine/llama/model_catalog.hpp"
#include "engine/llama/model_runner.hpp"

namespace infernet::engine {
namespace {

using llama::ModelRunner;

// llama.cpp logs a great deal at load time; its warnings and errors go to our log, the rest only at debug.
void route_llama_log(ggml_log_level level, const char* text, void* /*user*/) {
  std::string_view line(text);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' '))
    line.remove_suffix(1);
  if (line.empty()) return;
  if (level == GGML_LOG_LEVEL_ERROR) {
    spdlog::warn("llama.cpp: {}", line);
  } else if (level == GGML_LOG_LEVEL_WARN) {
    spdlog::debug("llama.cpp: {}", line);
  } else {
    spdlog::trace("llama.cpp: {}", line);
  }
}

void init_llama_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(route_llama_log, nullptr);
    llama_backend_init();
  });
}

class LlamaEngine final : public Engine {
 public:
  LlamaEngine() = default;
  ~LlamaEngine() override { stop(); }
  LlamaEngine(const LlamaEngine&) = delete;
  LlamaEngine& operator=(const LlamaEngine&) = delete;

  std::string name() const override { return "llama"; }

  std::vector<ModelDescription> models() const override {
    std::vector<ModelDescription> out;
    for (const auto& [name, runner] : runners_)
      out.push_back(runner->description());
    return out;
  }

  Status submit(GenerateRequest request, GenerateCallbacks callbacks) override {
    auto it = runners_.find(request.model);
    if (it == runners_.end()) {
      return make_error(ErrorCode::kInvalidInput,
                        "model: this provider does not serve '" + request.model + "'");
    }
    if (auto st = check_generation(request.prompt, request.messages, request.sampling, kMaxPromptBytes); !st)
      return st;
    if (request.max_tokens < 1) return make_error(ErrorCode::kInvalidInput, "max_tokens: must be at least 1");
    return it->second->submit(std::move(request), std::move(callbacks));
  }

  Result<uint32_t> count_tokens(const std::string& model, const std::string& prompt,
                                const std::vector<ChatMessage>& messages) const override {
    auto it = runners_.find(model);
    if (it == runners_.end())
      return make_error(ErrorCode::kInvalidInput, "model: this provider does not serve '" + model + "'");
    if (prompt.empty() == messages.empty())
      return make_error(ErrorCode::kInvalidInput, "prompt: give either a prompt or messages");
    if (prompt.size() > kMaxPromptBytes) return make_error(ErrorCode::kInvalidInput, "prompt: too long");
    if (auto st = check_messages(messages, kMaxPromptBytes); !st) return tl::unexpected(st.error());
    return it->second->count_tokens(prompt, messages);
  }

  void cancel(const std::string& id) override {
    for (auto& [name, runner] : runners_) {
      if (runner->cancel(id)) return;
    }
  }

  void stop() override {
    for (auto& [name, runner] : runners_)
      runner->stop();
  }

  std::map<std::string, std::unique_ptr<ModelRunner>> runners_;
  llama::QueueBudget budget_;
};

}  // namespace

std::string llama_build_description() {
  init_llama_once();
  return std::string("llama.cpp ") + ggml_commit() + (llama_supports_gpu_offload() ? " (gpu)" : " (cpu)");
}

Result<std::unique_ptr<Engine>> make_llama_engine(const LlamaEngineOptions& options) {
  init_llama_once();
  if (options.slots < 1) return make_error(ErrorCode::kInvalidInput, "slots: must be at least 1");
  if (options.context < 16)
    return make_error(ErrorCode::kInvalidInput, "context: must be at least 16 tokens");
  if (options.batch < 1) return make_error(ErrorCode::kInvalidInput, "batch: must be at least 1");
  llama::FingerprintCache cache(options.fingerprint_cache);
  auto catalog = llama::scan_models(options.models_dir, cache);
  if (!catalog) return tl::unexpected(catalog.error());

  auto engine = std::make_unique<LlamaEngine>();
  engine->budget_.capacity = options.queue_capacity;
  llama::RunnerOptions ro;
  ro.slots = options.slots;
  ro.context = options.context;
  ro.threads = options.threads > 0 ? options.threads
                                   : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  ro.batch = options.batch;
  ro.flash_attn = options.flash_attn;
  ro.gpu_layers = options.gpu_layers;
  ro.test_token_delay = options.test_token_delay;
  std::string skipped;
  for (const auto& problem : catalog->skipped)
    skipped += "; " + problem.error;
  for (const llama::GgufInfo& info : catalog->models) {
    auto runner = ModelRunner::load(info, ro, &engine->budget_);
    if (!runner) {
      spdlog::warn("models: skipping {}: {}", info.path.string(), runner.error().message);
      skipped += "; " + runner.error().message;
      continue;
    }
    spdlog::info("models: serving {} ({}, {} parameters, {}, sha256 {})", info.name, info.architecture,
                 (*runner)->description().parameters, info.quantization, info.sha256.substr(0, 12));
    engine->runners_.emplace(info.name, std::move(*runner));
  }
  if (engine->runners_.empty()) {
    return make_error(ErrorCode::kInvalidInput, "models directory " + options.models_dir.string() +
                                                    " has no usable GGUF model" + skipped);
  }
  return engine;
}

}  // namespace infernet::engine
