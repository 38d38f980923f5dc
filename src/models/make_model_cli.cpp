// Options of the model makers on the command line (see make_model_cli.hpp).
#include "models/make_model_cli.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "models/models.hpp"

namespace infernet::models {
namespace {

int report_failure(const Error& error) {
  std::fprintf(stderr, "infernet: %s\n", error.message.c_str());
  return 1;
}

void add_tiny(CLI::App& parent, int& exit_code) {
  auto options = std::make_shared<TinyModelOptions>();
  CLI::App* cmd = parent.add_subcommand(
      "tiny",
      "Train the tiny llama model on a text corpus (about a minute on one core) and write it as GGUF");
  cmd->add_option("--out", options->out_path, "Output GGUF file")->required();
  cmd->add_option("--corpus", options->corpus_path, "Training text")->capture_default_str();
  cmd->add_option("--steps", options->steps, "Optimizer steps")->capture_default_str();
  cmd->add_option("--threads", options->threads, "CPU threads (the result depends on it)")
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the initial weights and the data order")
      ->capture_default_str();
  cmd->add_option("--layers", options->layers, "Transformer blocks")->capture_default_str();
  cmd->add_option("--embedding", options->embedding, "Embedding width")->capture_default_str();
  cmd->add_option("--feed-forward", options->feed_forward, "Feed-forward width")->capture_default_str();
  cmd->add_option("--heads", options->heads, "Attention heads")->capture_default_str();
  cmd->add_option("--context", options->context_length, "Context length written to the model")
      ->capture_default_str();
  cmd->add_option("--window", options->window, "Tokens per training window")->capture_default_str();
  cmd->add_option("--batch", options->batch, "Windows per step")->capture_default_str();
  cmd->add_option("--learning-rate", options->learning_rate, "Peak AdamW learning rate")
      ->capture_default_str();
  cmd->add_flag("--tied-output", options->tied_output, "Use token_embd as the output projection");
  cmd->add_option("--name", options->name, "general.name")->capture_default_str();
  auto if_missing = std::make_shared<bool>(false);
  cmd->add_flag(
      "--if-missing", *if_missing,
      "Keep an existing --out (touching it) instead of training: for file names that carry the recipe");
  cmd->callback([options, if_missing, &exit_code] {
    std::error_code ec;
    if (*if_missing && std::filesystem::exists(options->out_path, ec)) {
      // Another build tree made it; a newer time stamp tells this tree's build tool it is up to date.
      std::filesystem::last_write_time(options->out_path, std::filesystem::file_time_type::clock::now(), ec);
      fmt::print("{}: exists, kept\n", options->out_path);
      exit_code = 0;
      return;
    }
    auto report = make_tiny_model(*options);
    if (!report) {
      exit_code = report_failure(report.error());
      return;
    }
    fmt::print("{}: {} parameters, {} steps, loss {:.3f} -> {:.3f}, {:.1f} s\n", report->path,
               report->parameters, report->steps, report->initial_loss, report->final_loss, report->seconds);
    exit_code = 0;
  });
}

void add_random(CLI::App& parent, int& exit_code) {
  auto options = std::make_shared<RandomModelOptions>();
  CLI::App* cmd = parent.add_subcommand(
      "random", "Write a llama model with random weights (realistic speed, meaningless text) as GGUF");
  cmd->add_option("--out", options->out_path, "Output GGUF file")->required();
  std::string types;
  for (auto name : random_model_quantizations())
    types += (types.empty() ? "" : ", ") + std::string(name);
  cmd->add_option("--quant", options->quantization, "Weight type: " + types)->capture_default_str();
  cmd->add_option("--layers", options->layers, "Transformer blocks")->capture_default_str();
  cmd->add_option("--embedding", options->embedding, "Embedding width")->capture_default_str();
  cmd->add_option("--feed-forward", options->feed_forward, "Feed-forward width")->capture_default_str();
  cmd->add_option("--heads", options->heads, "Attention heads")->capture_default_str();
  cmd->add_option("--vocab", options->vocab, "Vocabulary size")->capture_default_str();
  cmd->add_option("--context", options->context_length, "Context length written to the model")
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the weights")->capture_default_str();
  cmd->add_option("--threads", options->threads, "Quantizer threads (0: all cores)")->capture_default_str();
  auto separate = std::make_shared<bool>(false);
  cmd->add_flag("--separate-output", *separate, "Write output.weight instead of reusing token_embd");
  cmd->add_option("--name", options->name, "general.name")->capture_default_str();
  cmd->callback([options, separate, &exit_code] {
    options->tied_output = !*separate;
    auto report = make_random_model(*options);
    if (!report) {
      exit_code = report_failure(report.error());
      return;
    }
    fmt::print("{}: {} parameters, {}, {:.1f} MB, {:.1f} s\n", report->path, report->parameters,
               report->quantization, static_cast<double>(report->file_bytes) / 1e6, report->seconds);
    exit_code = 0;
  });
}

}  // namespace

void add_make_model_commands(CLI::App& parent, int& exit_code) {
  add_tiny(parent, exit_code);
  add_random(parent, exit_code);
}

}  // namespace infernet::models
