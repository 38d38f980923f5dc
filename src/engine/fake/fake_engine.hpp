// THE FAKE ENGINE: deterministic output for fast tests and demos. It runs no model. Its output is a pure
// function of (model, prompt, max_tokens) so a test can compute the expected result, and a configurable
// delay per token makes jobs take time when a test needs to kill something mid-job.
//
// Model "fake-echo": the output is the prompt's whitespace-separated words, each followed by one space,
// repeated from the first word until max_tokens words have been produced (one word = one token). An empty
// prompt produces no tokens. Input tokens = words in the prompt.
#pragma once

#include <chrono>
#include <memory>

#include "engine/engine.hpp"

namespace infernet::engine {

struct FakeEngineOptions {
  std::vector<std::string> models = {"fake-echo"};  // every name behaves as fake-echo
  size_t slots = 2;                                 // worker threads: runs at the same time
  size_t queue_capacity = 64;                       // runs waiting for a slot
  std::chrono::milliseconds token_delay{0};
};

// The expected output of fake-echo, for tests.
std::string fake_echo_output(std::string_view prompt, uint32_t max_tokens);

std::unique_ptr<Engine> make_fake_engine(const FakeEngineOptions& options);

}  // namespace infernet::engine
