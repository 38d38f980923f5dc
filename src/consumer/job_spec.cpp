#include <cmath>
#include <string>

#include "consumer/internal/job_spec.hpp"
#include "core/encoding.hpp"
#include "nostr/keys.hpp"
#include "nostr/nip19.hpp"
#include "protocol/protocol.hpp"

namespace infernet::consumer::internal {
namespace {

Error invalid(std::string message) {
  return Error{ErrorCode::kInvalidInput, std::move(message)};
}

Status check_hardware(const JobSpec& spec) {
  if (spec.gpu_type.size() > kMaxGpuTypeBytes) {
    return make_error(ErrorCode::kInvalidInput,
                      "resources.gpu_type: at most " + std::to_string(kMaxGpuTypeBytes) + " bytes");
  }
  for (char c : spec.gpu_type) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == ' ' || c == '_' || c == '-' || c == '.';
    if (!plain) {
      return make_error(ErrorCode::kInvalidInput,
                        "resources.gpu_type: only letters, digits, spaces, '_', '-' and '.'");
    }
  }
  if (spec.min_gpu_memory_mb > kMaxGpuMemoryMb) {
    return make_error(ErrorCode::kInvalidInput,
                      "resources.min_gpu_memory_mb: at most " + std::to_string(kMaxGpuMemoryMb));
  }
  if (spec.min_gpu_memory_mb != 0 && is_cpu_only(spec.gpu_type)) {
    return make_error(ErrorCode::kInvalidInput,
                      "resources.min_gpu_memory_mb: cannot be combined with gpu_type cpu");
  }
  return {};
}

}  // namespace

std::optional<std::string> provider_hex(std::string_view text) {
  if (text.starts_with("npub1")) {
    auto decoded = nostr::nip19::decode(text);
    if (!decoded) return std::nullopt;
    const auto* npub = std::get_if<nostr::nip19::Npub>(&*decoded);
    if (npub == nullptr) return std::nullopt;
    auto key = nostr::PublicKey::from_bytes(npub->key);
    if (!key) return std::nullopt;
    return key->hex();
  }
  auto key = nostr::PublicKey::from_hex(text);
  if (!key) return std::nullopt;
  return key->hex();
}

bool is_cpu_only(std::string_view gpu_type) {
  return market::is_cpu_only(gpu_type);
}

Result<JobSpec> check_spec(const JobSpec& spec, int64_t now) {
  JobSpec out = spec;
  if (spec.client_request_id.size() > kMaxClientRequestIdBytes) {
    return tl::unexpected(
        invalid("client_request_id: at most " + std::to_string(kMaxClientRequestIdBytes) + " bytes"));
  }
  if (!is_valid_utf8(spec.client_request_id))
    return tl::unexpected(invalid("client_request_id: not valid UTF-8"));
  if (spec.model.empty()) return tl::unexpected(invalid("model: required"));
  if (spec.model.size() > protocol::kMaxIdBytes) {
    return tl::unexpected(invalid("model: at most " + std::to_string(protocol::kMaxIdBytes) + " bytes"));
  }
  if (!is_valid_utf8(spec.model)) return tl::unexpected(invalid("model: not valid UTF-8"));
  if (spec.prompt.empty() && spec.messages.empty())
    return tl::unexpected(invalid("prompt: required (or messages)"));
  if (!spec.prompt.empty() && !spec.messages.empty())
    return tl::unexpected(invalid("prompt: give either a prompt or messages, not both"));
  if (spec.prompt.size() > protocol::kMaxPromptBytes) {
    return tl::unexpected(invalid("prompt: at most " + std::to_string(protocol::kMaxPromptBytes) + " bytes"));
  }
  if (!is_valid_utf8(spec.prompt)) return tl::unexpected(invalid("prompt: not valid UTF-8"));
  if (auto st = check_messages(spec.messages, protocol::kMaxPromptBytes); !st)
    return tl::unexpected(st.error());
  if (spec.max_tokens < 1 || spec.max_tokens > 65536)
    return tl::unexpected(invalid("max_tokens: must be 1..65536"));
  if (auto st = check_sampling(spec.sampling); !st) return tl::unexpected(st.error());
  // "medium" is canonical; "normal", its name before there were four levels, is read as it.
  out.priority = std::string(protocol::canonical_priority(spec.priority));
  if (out.priority.empty()) {
    return tl::unexpected(invalid("priority: must be low, medium, high or urgent (normal is medium)"));
  }
  if (auto st = check_hardware(spec); !st) return tl::unexpected(st.error());
  if (!spec.strategy.empty()) {
    if (auto st = market::parse_strategy(spec.strategy); !st) return tl::unexpected(st.error());
  }
  if (!spec.model_sha256.empty()) {
    bool hex = spec.model_sha256.size() == 64;
    for (char c : spec.model_sha256)
      hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
    if (!hex) return tl::unexpected(invalid("model_sha256: must be 64 hex digits"));
  }
  if (spec.notes.size() > kMaxNotes)
    return tl::unexpected(invalid("notes: at most " + std::to_string(kMaxNotes)));
  for (const auto& n : spec.notes) {
    if (n.size() > kMaxNoteBytes || !is_valid_utf8(n)) {
      return tl::unexpected(
          invalid("notes: each must be valid UTF-8 of at most " + std::to_string(kMaxNoteBytes) + " bytes"));
    }
  }
  if (spec.deadline < 0) return tl::unexpected(invalid("deadline: must be a unix time in seconds, or 0"));
  if (spec.deadline != 0 && spec.deadline <= now) return tl::unexpected(invalid("deadline: already passed"));
  if (spec.start_by < 0) return tl::unexpected(invalid("start_by: must be a unix time in seconds, or 0"));
  if (spec.start_by != 0 && spec.start_by <= now) return tl::unexpected(invalid("start_by: already passed"));
  if (spec.start_by != 0 && spec.deadline != 0 && spec.start_by > spec.deadline) {
    return tl::unexpected(invalid("start_by: later than the deadline (finish_by)"));
  }
  if (!spec.provider.empty()) {
    auto hex = provider_hex(spec.provider);
    if (!hex) return tl::unexpected(invalid("provider: not a valid npub or hex key"));
    out.provider = std::move(*hex);
    if (spec.open_quotes) return tl::unexpected(invalid("open_quotes: cannot be combined with provider"));
  }
  return out;
}

uint32_t count_words(std::string_view text) {
  uint32_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

int priority_rank(std::string_view priority) {
  return protocol::priority_rank(priority);
}

}  // namespace infernet::consumer::internal
