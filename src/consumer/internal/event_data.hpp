// The JSON objects carried in JobEvent::data, one builder per event type. Their fields are part of the REST
// API (docs/api.md):
//   state:    {"state", "provider"?, "attempt"?, "reason"?}
//   progress: {"attempt", "seq_in_attempt", "text", "tokens"}
//   note:     {"message", "provider"?, "name"?}     a diagnostic: why a provider was skipped, what happened
//   result:   {"attempt", "provider", "ok", "cost_msat", "input_tokens", "output_tokens"}
//   error:    {"attempt", "provider", "code", "message"}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "consumer/consumer.hpp"

namespace infernet::consumer::internal {

std::string state_data(JobState state, std::string_view provider = {}, uint32_t attempt = 0,
                       std::string_view reason = {});
// from_result: the text came with the result, not the stream (the stream's last pieces were not sent or
// lost).
std::string progress_data(uint32_t attempt, uint64_t seq_in_attempt, std::string_view text, uint32_t tokens,
                          bool from_result);
std::string note_data(std::string_view message, std::string_view provider = {}, std::string_view name = {});
std::string result_data(uint32_t attempt, std::string_view provider, bool ok, uint64_t cost_msat,
                        const protocol::Usage& usage, std::string_view finish_reason);
std::string error_data(uint32_t attempt, std::string_view provider, std::string_view code,
                       std::string_view message);

// Reads back a progress event's attempt and seq_in_attempt; false when `data` is not one.
bool parse_progress_position(std::string_view data, uint32_t& attempt, uint64_t& seq_in_attempt);

}  // namespace infernet::consumer::internal
