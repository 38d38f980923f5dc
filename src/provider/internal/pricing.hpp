// Internal to the provider module: what a job is expected to cost before it runs and what it cost after.
// The formulas follow the announced prices (protocol::Prices), so a consumer computing the same estimate from
// an announcement gets the same number.
#pragma once

#include <cstdint>
#include <string_view>

#include "protocol/protocol.hpp"

namespace infernet::provider::internal {

// Input tokens as the fake engine counts them: whitespace-separated words. Real engines tokenize differently;
// this is the estimate a provider can make before running anything.
uint32_t count_words(std::string_view text);

// per_job + per_1k_input * input_tokens / 1000 + per_1k_output * max_tokens / 1000, times the priority's
// percentage (100 when the priority is not listed; "normal" is "medium") and less a reservation's
// `discount_percent` (0..100), rounded down once. Saturates instead of overflowing.
uint64_t estimate_cost(const protocol::Prices& prices, std::string_view priority, uint32_t input_tokens,
                       uint32_t max_tokens, uint32_t discount_percent = 0);

// The same with the tokens actually produced, plus per_second for whole milliseconds of engine time, capped
// at `cap_msat` (0: no cap): a consumer is never charged more than it allowed.
uint64_t actual_cost(const protocol::Prices& prices, std::string_view priority, uint32_t input_tokens,
                     uint32_t output_tokens, double seconds, uint64_t cap_msat,
                     uint32_t discount_percent = 0);

}  // namespace infernet::provider::internal
