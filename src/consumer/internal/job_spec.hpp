// Checking what a user submits, before anything is stored.
#pragma once

#include <cstdint>
#include <string_view>

#include "consumer/consumer.hpp"
#include "core/result.hpp"

namespace infernet::consumer::internal {

// Longest client_request_id accepted.
constexpr size_t kMaxClientRequestIdBytes = 128;

// Limits on the hardware a job may ask for, and on the notes the API attaches to it.
constexpr size_t kMaxGpuTypeBytes = 64;
constexpr uint64_t kMaxGpuMemoryMb = uint64_t{1} << 24;  // 16 TiB: far above any GPU
constexpr size_t kMaxNotes = 32;
constexpr size_t kMaxNoteBytes = 1024;

// True for the gpu_type "cpu" (any case): a provider without GPUs.
bool is_cpu_only(std::string_view gpu_type);

// Validates every field of `spec` and returns it normalized (provider as lower-case hex, whatever the user
// wrote; priority "normal" as "medium"). `now` is unix seconds, for the deadline. Errors: kInvalidInput
// naming the field ("model: required", "resources.gpu_type: at most 64 bytes", "max_tokens: must
// be 1..65536", "provider: not a valid npub or hex key", ...).
Result<JobSpec> check_spec(const JobSpec& spec, int64_t now);

// The provider as lower-case hex, from hex or an npub; nullopt when it is neither or not a point on the
// curve.
std::optional<std::string> provider_hex(std::string_view text);

// Whitespace-separated words: the input-size estimate used for prices before a provider counts tokens.
uint32_t count_words(std::string_view text);

// Place in line of a job's priority: urgent 0, high 1, medium (or a stored "normal") 2, low 3.
int priority_rank(std::string_view priority);

}  // namespace infernet::consumer::internal
