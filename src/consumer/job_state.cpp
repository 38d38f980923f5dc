#include <array>
#include <string>
#include <utility>

#include "consumer/consumer.hpp"

namespace infernet::consumer {
namespace {

constexpr std::array<std::pair<JobState, const char*>, 8> kNames = {{
    {JobState::kSubmitted, "submitted"},
    {JobState::kMatched, "matched"},
    {JobState::kAssigned, "assigned"},
    {JobState::kRunning, "running"},
    {JobState::kCompleted, "completed"},
    {JobState::kFailed, "failed"},
    {JobState::kCanceled, "canceled"},
    {JobState::kExpired, "expired"},
}};

}  // namespace

const char* to_string(JobState s) {
  for (const auto& [state, name] : kNames) {
    if (state == s) return name;
  }
  return "unknown";
}

Result<JobState> parse_job_state(std::string_view s) {
  for (const auto& [state, name] : kNames) {
    if (s == name) return state;
  }
  return make_error(ErrorCode::kInvalidInput,
                    "state: '" + std::string(s.substr(0, 64)) +
                        "' is not one of submitted, matched, assigned, running, completed, failed, canceled, "
                        "expired");
}

bool is_final(JobState s) {
  return s == JobState::kCompleted || s == JobState::kFailed || s == JobState::kCanceled ||
         s == JobState::kExpired;
}

}  // namespace infernet::consumer
