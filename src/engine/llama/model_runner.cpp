#include "engine/llama/model_runner.hpp"

#include <ggml.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace infernet::engine::llama {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

Error invalid(std::string message) {
  return Error{ErrorCode::kInvalidInput, std::move(message)};
}

// The sampler chain for one job, in llama.cpp's usual order. Greedy when temperature is 0: the penalty
// still applies, then the most likely token is taken, so the text depends on nothing random.
llama_sampler* make_sampler(const llama_vocab* vocab, const SamplingParams& p) {
  llama_sampler* chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
  if (p.repeat_penalty != 1 && p.repeat_last_n > 0) {
    llama_sampler_chain_add(chain, llama_sampler_init_penalties(llama_vocab_n_tokens(vocab),
                                                                static_cast<int32_t>(p.repeat_last_n),
                                                                static_cast<float>(p.repeat_penalty), 0, 0));
  }
  if (p.temperature == 0) {
    llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    return chain;
  }
  if (p.top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(static_cast<int32_t>(p.top_k)));
  if (p.top_p < 1) llama_sampler_chain_add(chain, llama_sampler_init_top_p(static_cast<float>(p.top_p), 1));
  if (p.min_p > 0) llama_sampler_chain_add(chain, llama_sampler_init_min_p(static_cast<float>(p.min_p), 1));
  llama_sampler_chain_add(chain, llama_sampler_init_temp(static_cast<float>(p.temperature)));
  // llama.cpp's dist sampler draws a random seed for LLAMA_DEFAULT_SEED (0xFFFFFFFF); the seed is mixed
  // into 32 bits so that every 64-bit seed names one fixed sequence.
  const auto seed = static_cast<uint32_t>(p.seed ^ (p.seed >> 32));
  llama_sampler_chain_add(chain, llama_sampler_init_dist(seed == LLAMA_DEFAULT_SEED ? seed - 1 : seed));
  return chain;
}

}  // namespace

ModelRunner::ModelRunner(const GgufInfo& info, const RunnerOptions& options, QueueBudget* budget)
    : info_(info), options_(options), budget_(budget) {}

Result<std::unique_ptr<ModelRunner>> ModelRunner::load(const GgufInfo& info, const RunnerOptions& options,
                                                       QueueBudget* budget) {
  std::unique_ptr<ModelRunner> r(new ModelRunner(info, options, budget));
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = options.gpu_layers;
  r->model_ = llama_model_load_from_file(info.path.c_str(), mp);
  if (r->model_ == nullptr) {
    return tl::unexpected(invalid(info.path.filename().string() + ": llama.cpp cannot load this model"));
  }
  r->vocab_ = llama_model_get_vocab(r->model_);
  const auto trained = static_cast<uint32_t>(std::max(0, llama_model_n_ctx_train(r->model_)));
  const uint32_t per_seq = trained > 0 ? std::min(options.context, trained) : options.context;
  r->options_.context = per_seq;

  llama_context_params cp = llama_context_default_params();
  cp.n_seq_max = options.slots;
  cp.n_ctx = per_seq * options.slots;
  cp.n_batch = options.batch;
  cp.n_ubatch = options.batch;
  cp.n_threads = options.threads;
  cp.n_threads_batch = options.threads;
  cp.flash_attn_type = options.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.kv_unified = false;
  cp.no_perf = true;
  r->ctx_ = llama_init_from_model(r->model_, cp);
  if (r->ctx_ == nullptr) {
    return tl::unexpected(invalid(info.path.filename().string() + ": llama.cpp cannot create a context for " +
                                  std::to_string(options.slots) + " jobs of " + std::to_string(per_seq) +
                                  " tokens"));
  }
  r->batch_ = llama_batch_init(static_cast<int32_t>(options.batch), 0, 1);
  r->slots_.resize(options.slots);
  for (uint32_t i = 0; i < options.slots; ++i)
    r->slots_[i].seq = static_cast<llama_seq_id>(i);

  ModelDescription& d = r->description_;
  d.name = info.name;
  d.sha256 = info.sha256;
  d.family = info.architecture;
  d.parameters = llama_model_n_params(r->model_);
  d.quantization = info.quantization;
  d.context_length = per_seq;
  d.capabilities = {"text-generation"};
  if (llama_model_chat_template(r->model_, nullptr) != nullptr) d.capabilities.emplace_back("chat");
  d.determinism =
      std::string("llama.cpp ") + ggml_commit() + (llama_supports_gpu_offload() ? " gpu" : " cpu") +
      "; threads=" + std::to_string(options.threads) + " ubatch=" + std::to_string(options.batch) +
      " flash_attn=" + (options.flash_attn ? "on" : "off") + "; one sequence per decode";
  r->thread_ = std::thread([p = r.get()] { p->loop(); });
  return r;
}

ModelRunner::~ModelRunner() {
  stop();
  for (Slot& s : slots_) {
    if (s.sampler != nullptr) llama_sampler_free(s.sampler);
  }
  if (batch_.token != nullptr) llama_batch_free(batch_);
  if (ctx_ != nullptr) llama_free(ctx_);
  if (model_ != nullptr) llama_model_free(model_);
}

Result<std::vector<llama_token>> ModelRunner::render_prompt(const GenerateRequest& request) const {
  std::string text = request.prompt;
  bool special = false;  // a raw prompt is text: "<|im_start|>" typed by a user stays plain text
  if (!request.messages.empty()) {
    const char* tmpl = llama_model_chat_template(model_, nullptr);
    if (tmpl == nullptr) {
      return tl::unexpected(
          invalid("messages: model " + info_.name + " has no chat template; send a raw prompt instead"));
    }
    std::vector<llama_chat_message> chat;
    size_t bytes = 0;
    for (const ChatMessage& m : request.messages) {
      chat.push_back({m.role.c_str(), m.content.c_str()});
      bytes += m.content.size();
    }
    std::vector<char> buf(2 * bytes + 1024);
    int32_t n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), true, buf.data(),
                                          static_cast<int32_t>(buf.size()));
    if (n > static_cast<int32_t>(buf.size())) {
      buf.resize(static_cast<size_t>(n));
      n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), true, buf.data(), n);
    }
    if (n < 0) {
      return tl::unexpected(
          invalid("messages: model " + info_.name +
                  "'s chat template is not one llama.cpp knows; send a raw prompt instead"));
    }
    text.assign(buf.data(), static_cast<size_t>(n));
    special = true;  // the template's own markers are special tokens
  }
  auto tokens = tokenize(text, true, special);
  if (!tokens) return tokens;
  if (tokens->empty()) return tl::unexpected(invalid("prompt: empty after tokenization"));
  // One position must stay free for the first generated token.
  if (tokens->size() >= options_.context) {
    return tl::unexpected(invalid("prompt: " + std::to_string(tokens->size()) +
                                  " tokens does not fit model " + info_.name + "'s context of " +
                                  std::to_string(options_.context) + " tokens per job"));
  }
  return tokens;
}

Result<std::vector<llama_token>> ModelRunner::tokenize(std::string_view text, bool first,
                                                       bool special) const {
  if (text.size() > static_cast<size_t>(INT32_MAX / 2)) return tl::unexpected(invalid("prompt: too long"));
  std::vector<llama_token> tokens(text.size() + 8);
  int32_t n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), first, special);
  if (n < 0) {
    tokens.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), first, special);
  }
  if (n < 0) return tl::unexpected(Error{ErrorCode::kInternal, "llama.cpp could not tokenize the prompt"});
  tokens.resize(static_cast<size_t>(n));
  return tokens;
}

Result<uint32_t> ModelRunner::count_tokens(const std::string& prompt,
                                           const std::vector<ChatMessage>& messages) const {
  GenerateRequest request;
  request.prompt = prompt;
  request.messages = messages;
  auto tokens = render_prompt(request);
  if (!tokens) return tl::unexpected(tokens.error());
  return static_cast<uint32_t>(tokens->size());
}

Status ModelRunner::submit(GenerateRequest request, GenerateCallbacks callbacks) {
  auto prompt = render_prompt(request);
  if (!prompt) return tl::unexpected(prompt.error());
  // A resumed run: the delivered text follows the prompt as if this run had generated it (plain text, no
  // start token, no special markers). With a byte-level vocabulary these are exactly the tokens the
  // earlier run sampled; with merges they may be split differently (docs/market-failover.md).
  uint32_t resumed = 0;
  if (!request.resume_text.empty()) {
    auto more = tokenize(request.resume_text, false, false);
    if (!more) return tl::unexpected(more.error());
    resumed = static_cast<uint32_t>(more->size());
    prompt->insert(prompt->end(), more->begin(), more->end());
    if (prompt->size() >= options_.context) {
      return tl::unexpected(invalid("resume_text: the prompt and the resumed output (" +
                                    std::to_string(prompt->size()) + " tokens) do not fit model " +
                                    info_.name + "'s context of " + std::to_string(options_.context) +
                                    " tokens per job"));
    }
  }
  if (callbacks.on_prompt) callbacks.on_prompt(static_cast<uint32_t>(prompt->size()));
  auto run = std::make_shared<Run>();
  run->resumed = resumed;
  run->request = std::move(request);
  run->callbacks = std::move(callbacks);
  run->prompt = std::move(*prompt);
  run->submitted = Clock::now();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return make_error(ErrorCode::kIo, "engine: stopped");
    if (running_.contains(run->request.id))
      return make_error(ErrorCode::kInvalidInput, "engine: run id " + run->request.id + " is already in use");
    if (budget_->waiting.fetch_add(1) >= budget_->capacity) {
      budget_->waiting.fetch_sub(1);
      return make_error(ErrorCode::kLimitExceeded,
                        "engine: queue full (" + std::to_string(budget_->capacity) + " runs waiting)");
    }
    running_[run->request.id] = run;
    queue_.push_back(std::move(run));
  }
  wake_.notify_one();
  return {};
}

bool ModelRunner::cancel(const std::string& id) {
  std::shared_ptr<Run> queued;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(id);
    if (it == running_.end()) return false;
    it->second->canceled = true;
    auto q = std::find(queue_.begin(), queue_.end(), it->second);
    if (q != queue_.end()) {
      queued = *q;
      queue_.erase(q);
      running_.erase(it);
      budget_->waiting.fetch_sub(1);
    }
  }
  // A running job sees its flag before its next token; a queued one ends here, on the caller's thread.
  if (queued) {
    queued->callbacks.on_done(tl::unexpected(canceled_error()));
  } else {
    wake_.notify_one();
  }
  return true;
}

void ModelRunner::stop() {
  std::deque<std::shared_ptr<Run>> queued;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    queued.swap(queue_);
    for (const auto& r : queued)
      running_.erase(r->request.id);
    budget_->waiting.fetch_sub(queued.size());
  }
  wake_.notify_all();
  for (const auto& r : queued)
    r->callbacks.on_done(tl::unexpected(canceled_error()));
  if (thread_.joinable()) thread_.join();
}

void ModelRunner::admit(Slot& slot, std::shared_ptr<Run> run) {
  llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
  if (slot.sampler != nullptr) llama_sampler_free(slot.sampler);
  slot.sampler = make_sampler(vocab_, run->request.sampling);
  // The penalty looks back over the prompt too, as llama.cpp's own tools do.
  for (llama_token t : run->prompt)
    llama_sampler_accept(slot.sampler, t);
  slot.filter.emplace(run->request.sampling.stop);
  slot.filter->resume_after(run->request.resume_text);
  slot.prompt_done = 0;
  slot.pos = 0;
  slot.next = -1;
  slot.generated = 0;
  slot.logits_at = -1;
  slot.first_token_seconds = 0;
  slot.run = std::move(run);
}

int32_t ModelRunner::add_to_batch(Slot& slot, int32_t room) {
  const Run& run = *slot.run;
  auto add = [&](llama_token token, bool logits) {
    const int32_t i = batch_.n_tokens++;
    batch_.token[i] = token;
    batch_.pos[i] = slot.pos++;
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = slot.seq;
    batch_.logits[i] = logits ? 1 : 0;
    if (logits) slot.logits_at = i;
  };
  if (slot.prompt_done < run.prompt.size()) {
    const auto n = static_cast<int32_t>(
        std::min<size_t>(static_cast<size_t>(room), run.prompt.size() - slot.prompt_done));
    for (int32_t k = 0; k < n; ++k) {
      const bool last = slot.prompt_done + 1 == run.prompt.size();
      add(run.prompt[slot.prompt_done++], last);
    }
    return n;
  }
  if (room < 1) return 0;
  add(slot.next, true);
  return 1;
}

Status ModelRunner::decode_batch() {
  if (batch_.n_tokens == 0) return {};
  const int32_t rc = llama_decode(ctx_, batch_);
  batch_.n_tokens = 0;
  if (rc != 0) return make_error(ErrorCode::kInternal, "llama_decode failed with code " + std::to_string(rc));
  return {};
}

std::string ModelRunner::piece(llama_token token) const {
  char buf[256];
  const int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof(buf), 0, false);
  if (n < 0) {
    std::string big(static_cast<size_t>(-n), '\0');
    const int32_t m = llama_token_to_piece(vocab_, token, big.data(), -n, 0, false);
    big.resize(static_cast<size_t>(std::max(0, m)));
    return big;
  }
  return std::string(buf, static_cast<size_t>(n));
}

void ModelRunner::sample(Slot& slot) {
  Run& run = *slot.run;
  const int32_t at = slot.logits_at;
  slot.logits_at = -1;
  const llama_token token = llama_sampler_sample(slot.sampler, ctx_, at);
  if (slot.generated == 0) slot.first_token_seconds = seconds_since(run.submitted);
  if (llama_vocab_is_eog(vocab_, token)) {
    const std::string tail = slot.filter->finish();
    if (!tail.empty()) run.callbacks.on_piece(tail, slot.generated);
    GenerateUsage usage;
    usage.finish_reason = FinishReason::kStop;
    finish(slot, usage);
    return;
  }
  ++slot.generated;
  const std::string text = slot.filter->push(piece(token));
  const bool stopped = slot.filter->stopped();
  // The context bounds prompt and output together (slot.pos tokens decoded, plus the one just sampled), as
  // OpenAI's API counts them.
  const bool at_limit = slot.generated + run.resumed >= run.request.max_tokens ||
                        static_cast<uint32_t>(slot.pos) + 1 >= options_.context;
  std::string shown = text;
  if (!stopped && at_limit) shown += slot.filter->finish();
  if (!shown.empty()) run.callbacks.on_piece(shown, slot.generated);
  if (stopped || at_limit) {
    GenerateUsage usage;
    usage.finish_reason = stopped ? FinishReason::kStop : FinishReason::kLength;
    finish(slot, usage);
    return;
  }
  slot.next = token;
  if (options_.test_token_delay.count() > 0) std::this_thread::sleep_for(options_.test_token_delay);
}

void ModelRunner::finish(Slot& slot, Result<GenerateUsage> outcome) {
  std::shared_ptr<Run> run = std::move(slot.run);
  slot.run.reset();
  slot.logits_at = -1;
  llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
  if (outcome) {
    outcome->input_tokens = static_cast<uint32_t>(run->prompt.size());
    outcome->output_tokens = slot.generated;
    outcome->seconds = seconds_since(run->submitted);
    outcome->first_token_seconds = slot.first_token_seconds;
  }
  {
    std::lock_guard lock(mu_);
    running_.erase(run->request.id);
  }
  run->callbacks.on_done(std::move(outcome));
}

void ModelRunner::loop() {
  const auto batch_room = static_cast<int32_t>(options_.batch);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      const auto active = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.run != nullptr; });
      };
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || active(); });
      if (stopping_) break;
      for (Slot& s : slots_) {
        if (s.run != nullptr || queue_.empty()) continue;
        std::shared_ptr<Run> run = std::move(queue_.front());
        queue_.pop_front();
        budget_->waiting.fetch_sub(1);
        admit(s, std::move(run));
      }
    }
    // A resumed run whose earlier attempts already delivered max_tokens has nothing left to generate.
    for (Slot& s : slots_) {
      if (s.run != nullptr && s.generated == 0 && s.run->resumed > 0 &&
          s.run->resumed >= s.run->request.max_tokens) {
        GenerateUsage usage;
        usage.finish_reason = FinishReason::kLength;
        finish(s, usage);
      }
    }
    for (Slot& s : slots_) {
      if (s.run != nullptr && s.run->canceled) finish(s, tl::unexpected(canceled_error()));
    }

    // Jobs that may share a batch go together: their generated tokens first (one each), then prompt chunks
    // with the room that is left. Each deterministic job is decoded alone, exactly as if it were the only
    // job, so its arithmetic and thus its text do not depend on what else runs.
    for (int pass = 0; pass < 2; ++pass) {
      for (Slot& s : slots_) {
        if (s.run == nullptr || s.run->request.deterministic) continue;
        const bool generating = s.prompt_done == s.run->prompt.size();
        if (generating == (pass == 0)) add_to_batch(s, batch_room - batch_.n_tokens);
      }
    }
    Status decoded = decode_batch();
    if (decoded) {
      for (Slot& s : slots_) {
        if (s.run != nullptr && !s.run->request.deterministic && s.logits_at >= 0) sample(s);
      }
    }
    for (Slot& s : slots_) {
      if (!decoded || s.run == nullptr || !s.run->request.deterministic) continue;
      add_to_batch(s, batch_room);
      decoded = decode_batch();
      if (decoded && s.logits_at >= 0) sample(s);
    }
    if (!decoded) {
      spdlog::error("llama engine: model {}: {}", info_.name, decoded.error().message);
      for (Slot& s : slots_) {
        if (s.run != nullptr) finish(s, tl::unexpected(decoded.error()));
      }
    }
  }
  for (Slot& s : slots_) {
    if (s.run != nullptr) finish(s, tl::unexpected(canceled_error()));
  }
}

}  // namespace infernet::engine::llama
