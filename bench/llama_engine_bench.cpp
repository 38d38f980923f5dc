// The llama engine called directly, measured the way llama.cpp's llama-bench measures itself, so that
// bench/run-llama.sh can print the two side by side (and bench/llama_path_bench.mjs can compare the whole
// network against it). One job at a time on a one-slot engine, greedy, deterministic = false:
//   prefill  a prompt of exactly PROMPT_TOKENS tokens (BOS included, as llama-bench's -p counts) with
//            max_tokens 1: prompt tokens / first_token_seconds (submit to the first piece: the prompt's
//            decode plus one sampling step);
//   decode   a short prompt generating GEN_TOKENS tokens: tokens after the first / (seconds -
//            first_token_seconds), the steady one-token-per-decode rate llama-bench's -n reports.
// Each is run once to warm up (llama-bench warms up too), then REPS times; medians are reported. Prints one
// JSON object on stdout, which carries the two prompts so that the network benchmark sends the same text.
// Nothing else in this process decodes: a second thread calling llama_decode would start a second OpenMP
// team, and with more OpenMP threads than cores libgomp stops spinning at barriers, which cost the engine
// about a third of its decode speed when tried (docs/benchmarks.md, "Inference").
//   llama_engine_bench MODEL.gguf [--threads N] [--reps N] [--prompt-tokens N] [--gen-tokens N]
//                      [--context N] [--batch N]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <string_view>
#include <vector>

#include <llama.h>
#include <unistd.h>
#include <boost/json.hpp>

#include "core/log.hpp"
#include "engine/llama/llama_engine.hpp"

namespace {

using namespace infernet;
namespace fs = std::filesystem;

struct Options {
  fs::path model;
  int threads = 2;
  int reps = 3;
  int prompt_tokens = 512;
  uint32_t gen_tokens = 128;
  uint32_t context = 2048;
  uint32_t batch = 512;
};

// Ordinary English: the random model does the same arithmetic for any token, but a prompt of real words keeps
// the tokenizer's work (and the run's shape) like a user's.
constexpr std::string_view kProse =
    "The relay keeps every signed note it is given and hands each one to the readers who asked for it. A "
    "provider announces the models it serves, what it charges and how many jobs it can run at once; a "
    "consumer picks one, sends the prompt sealed to that provider alone, and reads the answer as it is "
    "written. Nobody in the middle can read the work or change it, and a job that stalls moves to another "
    "machine without the user doing anything. ";
constexpr std::string_view kShortPrompt = "Once upon a time, on a network of small machines,";

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Tokens the engine will decode for `text`: BOS included, no special-token parsing (a raw prompt, as
// ModelRunner::render_prompt tokenizes it).
int count_tokens(const llama_vocab* vocab, const std::string& text) {
  const int32_t n =
      llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), nullptr, 0, true, false);
  return n < 0 ? -n : n;
}

// Prose of exactly `want` tokens: whole words while they fit, then single letters appended until the count
// is met (a letter either adds a token or merges into the last one, so the count creeps up one at a time).
Result<std::string> prompt_of_tokens(const fs::path& model, int want) {
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* m = llama_model_load_from_file(model.c_str(), mp);
  if (m == nullptr) return make_error(ErrorCode::kIo, "cannot read the vocabulary of " + model.string());
  const llama_vocab* vocab = llama_model_get_vocab(m);
  std::vector<std::string_view> words;
  for (size_t at = 0; at < kProse.size();) {
    const size_t end = std::min(kProse.find(' ', at), kProse.size());
    words.push_back(kProse.substr(at, end - at + 1));  // with its trailing space
    at = end + 1;
  }
  std::string text;
  for (size_t i = 0;; ++i) {
    std::string next = text;
    next.append(words[i % words.size()]);
    if (count_tokens(vocab, next) > want) break;
    text = std::move(next);
  }
  for (int guard = 0; count_tokens(vocab, text) < want && guard < 4 * want; ++guard) {
    std::string next = text + "s";
    if (count_tokens(vocab, next) > want) next = text + " ";
    if (count_tokens(vocab, next) > want) break;
    text = std::move(next);
  }
  const int got = count_tokens(vocab, text);
  llama_model_free(m);
  if (got != want) {
    return make_error(ErrorCode::kInternal, "could not build a prompt of " + std::to_string(want) +
                                                " tokens (got " + std::to_string(got) + ")");
  }
  return text;
}

// One job, waited for: llama-bench runs one sequence at a time too.
Result<engine::GenerateUsage> run_once(engine::Engine& engine, const std::string& model,
                                       const std::string& prompt, uint32_t max_tokens, int id) {
  engine::GenerateRequest request;
  request.id = "bench-" + std::to_string(id);
  request.model = model;
  request.prompt = prompt;
  request.max_tokens = max_tokens;
  request.sampling.temperature = 0;
  request.deterministic = false;
  std::promise<Result<engine::GenerateUsage>> done;
  auto future = done.get_future();
  engine::GenerateCallbacks callbacks;
  callbacks.on_piece = [](std::string_view, uint32_t) {};
  callbacks.on_done = [&done](Result<engine::GenerateUsage> r) { done.set_value(std::move(r)); };
  if (auto st = engine.submit(std::move(request), std::move(callbacks)); !st)
    return tl::unexpected(st.error());
  return future.get();
}

int usage(const char* why) {
  std::fprintf(stderr,
               "llama_engine_bench: %s\nusage: llama_engine_bench MODEL.gguf [--threads N] [--reps N] "
               "[--prompt-tokens N] [--gen-tokens N] [--context N] [--batch N]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2) return usage("no model");
  o.model = argv[1];
  for (int i = 2; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage(("no value after " + flag).c_str());
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (v < 1) return usage((flag + ": must be a positive number").c_str());
    if (flag == "--threads") {
      o.threads = static_cast<int>(v);
    } else if (flag == "--reps") {
      o.reps = static_cast<int>(v);
    } else if (flag == "--prompt-tokens") {
      o.prompt_tokens = static_cast<int>(v);
    } else if (flag == "--gen-tokens") {
      o.gen_tokens = static_cast<uint32_t>(v);
    } else if (flag == "--context") {
      o.context = static_cast<uint32_t>(v);
    } else if (flag == "--batch") {
      o.batch = static_cast<uint32_t>(v);
    } else {
      return usage(("unknown flag " + flag).c_str());
    }
  }

  // Logs go to stderr; stdout carries only the result.
  (void)init_logging("warn");
  // The engine serves every GGUF file in a directory: give it one holding only this model.
  const fs::path dir = fs::temp_directory_path() / ("infernet-llama-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::error_code ec;
  fs::create_symlink(fs::absolute(o.model), dir / o.model.filename(), ec);
  if (ec) {
    std::fprintf(stderr, "llama_engine_bench: linking the model: %s\n", ec.message().c_str());
    return 1;
  }
  engine::LlamaEngineOptions eo;
  eo.models_dir = dir;
  eo.slots = 1;  // one job at a time, as llama-bench runs one sequence
  eo.threads = o.threads;
  eo.context = o.context;
  eo.batch = o.batch;
  eo.flash_attn = false;
  auto made = engine::make_llama_engine(eo);
  fs::remove_all(dir);
  if (!made) {
    std::fprintf(stderr, "llama_engine_bench: %s\n", made.error().to_string().c_str());
    return 1;
  }
  engine::Engine& engine = **made;
  const std::string model = engine.models().front().name;

  auto long_prompt = prompt_of_tokens(o.model, o.prompt_tokens);
  if (!long_prompt) {
    std::fprintf(stderr, "llama_engine_bench: %s\n", long_prompt.error().to_string().c_str());
    return 1;
  }
  const std::string short_prompt(kShortPrompt);

  int id = 0;
  bool failed = false;
  std::vector<double> prefill_tps, prefill_ttft_ms, decode_tps, decode_ttft_ms;
  uint32_t prompt_tokens = 0, decode_input_tokens = 0, decode_output_tokens = 0;
  for (int rep = 0; rep <= o.reps && !failed; ++rep) {
    const bool warmup = rep == 0;
    auto p = run_once(engine, model, *long_prompt, 1, ++id);
    auto d = run_once(engine, model, short_prompt, o.gen_tokens, ++id);
    if (!p || !d) {
      std::fprintf(stderr, "llama_engine_bench: %s\n", (!p ? p.error() : d.error()).to_string().c_str());
      failed = true;
      break;
    }
    if (warmup) continue;
    prompt_tokens = p->input_tokens;
    prefill_tps.push_back(p->input_tokens / p->first_token_seconds);
    prefill_ttft_ms.push_back(1000 * p->first_token_seconds);
    decode_input_tokens = d->input_tokens;
    decode_output_tokens =
        std::min(decode_output_tokens == 0 ? d->output_tokens : decode_output_tokens, d->output_tokens);
    const double decoding = d->seconds - d->first_token_seconds;
    decode_tps.push_back(d->output_tokens > 1 && decoding > 0 ? (d->output_tokens - 1) / decoding : 0);
    decode_ttft_ms.push_back(1000 * d->first_token_seconds);
  }
  engine.stop();
  if (failed) return 1;

  auto array = [](const std::vector<double>& v) { return boost::json::array(v.begin(), v.end()); };
  boost::json::object out{
      {"engine", engine::llama_build_description()},
      {"model", model},
      {"threads", o.threads},
      {"reps", o.reps},
      {"context", o.context},
      {"batch", o.batch},
      {"prompt_tokens", prompt_tokens},
      {"prefill_tokens_per_second", median(prefill_tps)},
      {"prefill_samples", array(prefill_tps)},
      {"prefill_ttft_ms", median(prefill_ttft_ms)},
      {"prefill_ttft_samples", array(prefill_ttft_ms)},
      {"decode_input_tokens", decode_input_tokens},
      {"decode_output_tokens", decode_output_tokens},
      {"decode_tokens_per_second", median(decode_tps)},
      {"decode_samples", array(decode_tps)},
      {"decode_ttft_ms", median(decode_ttft_ms)},
      {"decode_ttft_samples", array(decode_ttft_ms)},
      {"gen_tokens", o.gen_tokens},
      {"long_prompt", *long_prompt},
      {"short_prompt", short_prompt},
  };
  std::printf("%s\n", boost::json::serialize(out).c_str());
  return 0;
}
