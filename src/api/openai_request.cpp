#include "api/openai_request.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "api/job_json.hpp"
#include "core/generation.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

tl::unexpected<Error> field_error(std::string_view field, std::string_view problem) {
  return tl::unexpected(Error{ErrorCode::kInvalidInput, std::string(field) + ": " + std::string(problem)});
}

// Fields OpenAI's clients may send that change nothing here: accepted and ignored.
constexpr std::array<std::string_view, 7> kIgnored = {"user",
                                                      "metadata",
                                                      "store",
                                                      "parallel_tool_calls",
                                                      "service_tier",
                                                      "prompt_cache_key",
                                                      "safety_identifier"};
// Fields for what the network does not do. Refused, so a client never believes it got them.
constexpr std::array<std::string_view, 7> kUnsupported = {
    "tools", "tool_choice", "functions", "function_call", "audio", "modalities", "prediction"};

// A message's content: a string, or a list of {"type": "text", "text": "..."} parts joined together.
Status read_content(const json::value& v, const std::string& at, std::string& out) {
  if (v.is_string()) {
    out = std::string(v.get_string());
    return {};
  }
  if (!v.is_array()) return field_error(at, "must be a string or a list of text parts");
  out.clear();
  for (size_t i = 0; i < v.get_array().size(); ++i) {
    const std::string part_at = at + "[" + std::to_string(i) + "]";
    const json::object* part = v.get_array()[i].if_object();
    if (part == nullptr) return field_error(part_at, "must be an object {type, text}");
    const json::value* type = part->if_contains("type");
    if (type == nullptr || !type->is_string()) return field_error(part_at + ".type", "must be a string");
    if (type->get_string() != "text") {
      return field_error(part_at + ".type", "only \"text\" parts are supported, got \"" +
                                                json_safe(std::string(type->get_string()).substr(0, 32)) +
                                                "\"");
    }
    const json::value* text = part->if_contains("text");
    if (text == nullptr || !text->is_string()) return field_error(part_at + ".text", "must be a string");
    out += text->get_string();
  }
  return {};
}

Status read_messages(const json::value& v, std::vector<ChatMessage>& out) {
  if (!v.is_array()) return field_error("messages", "must be a list of {role, content}");
  if (v.get_array().size() > kMaxChatMessages)
    return field_error("messages", "at most " + std::to_string(kMaxChatMessages));
  out.clear();
  for (size_t i = 0; i < v.get_array().size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json::object* o = v.get_array()[i].if_object();
    if (o == nullptr) return field_error(at, "must be an object with role and content");
    ChatMessage& m = out.emplace_back();
    const json::value* role = o->if_contains("role");
    if (role == nullptr || !role->is_string()) return field_error(at + ".role", "must be a string");
    m.role = std::string(role->get_string());
    if (m.role == "developer") m.role = "system";  // OpenAI's newer name for the system role
    if (m.role == "tool" || m.role == "function")
      return field_error(at + ".role", "tool messages are not supported");
    for (const auto& member : *o) {
      if (member.key() == "role" || member.value().is_null()) continue;
      if (member.key() == "content") {
        if (auto st = read_content(member.value(), at + ".content", m.content); !st) return st;
      } else if (member.key() != "name") {  // the speaker's name: accepted, not used
        return field_error(at + "." + json_safe(std::string(member.key()).substr(0, 64)), "not supported");
      }
    }
    if (!o->contains("content") || o->at("content").is_null())
      return field_error(at + ".content", "required");
  }
  return {};
}

Status read_prompt(const json::value& v, std::string& out) {
  if (v.is_string()) {
    out = std::string(v.get_string());
    return {};
  }
  if (v.is_array() && v.get_array().size() == 1 && v.get_array()[0].is_string()) {
    out = std::string(v.get_array()[0].get_string());
    return {};
  }
  return field_error("prompt",
                     "must be a string (or a list of exactly one string: one completion per request)");
}

Status read_max_tokens(std::string_view name, const json::value& v, bool& seen, consumer::JobSpec& spec) {
  if (seen) return field_error(name, "give max_tokens or max_completion_tokens, not both");
  seen = true;
  if (!v.is_int64() && !v.is_uint64()) return field_error(name, "must be an integer");
  if (v.is_int64() && v.get_int64() < 1) return field_error(name, "must be at least 1");
  const uint64_t n = v.is_uint64() ? v.get_uint64() : static_cast<uint64_t>(v.get_int64());
  // Anything over 32 bits is out of range either way; the consumer's check names the limit.
  spec.max_tokens = n > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(n);
  return {};
}

// A field whose only accepted value is OpenAI's default: present so clients that always send it work.
Status require_default(std::string_view name, const json::value& v) {
  auto bad = [&](std::string_view want) {
    return field_error(name, std::string("only ") + std::string(want) + " is supported");
  };
  if (name == "n" || name == "best_of")
    return v.is_number() && v.to_number<double>() == 1 ? Status{} : bad("1");
  if (name == "presence_penalty" || name == "frequency_penalty") {
    if (v.is_number() && v.to_number<double>() == 0) return {};
    return field_error(name, "only 0 is supported; repeat_penalty is the network's penalty");
  }
  if (name == "logprobs" || name == "echo") return v.is_bool() && !v.get_bool() ? Status{} : bad("false");
  if (name == "logit_bias")
    return v.is_object() && v.get_object().empty() ? Status{} : bad("an empty object");
  if (name == "suffix") return v.is_string() && v.get_string().empty() ? Status{} : bad("an empty suffix");
  if (name == "response_format") {
    const json::object* o = v.if_object();
    const json::value* type = o ? o->if_contains("type") : nullptr;
    return type && type->is_string() && type->get_string() == "text" ? Status{} : bad("{\"type\": \"text\"}");
  }
  return field_error(name, "unknown field");
}

bool takes_default_only(std::string_view name) {
  for (std::string_view n : {"n", "best_of", "presence_penalty", "frequency_penalty", "logprobs", "echo",
                             "logit_bias", "suffix", "response_format"}) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace

Result<CompletionRequest> parse_completion_request(CompletionKind kind, std::string_view body) {
  boost::system::error_code ec;
  json::value root = json::parse(body, ec);
  if (ec) return field_error("request body", "not valid JSON: " + ec.message());
  const json::object* o = root.if_object();
  if (o == nullptr) return field_error("request body", "must be a JSON object");

  CompletionRequest out;
  consumer::JobSpec& spec = out.spec;
  spec.max_tokens = kOpenAiDefaultMaxTokens;
  bool saw_max_tokens = false;
  const bool chat = kind == CompletionKind::kChat;
  for (const auto& member : *o) {
    const std::string_view name = member.key();
    const json::value& v = member.value();
    if (v.is_null()) continue;  // null is absent, as in OpenAI's API
    Status st;
    if (name == "messages" && chat) {
      st = read_messages(v, spec.messages);
    } else if (name == "prompt" && !chat) {
      st = read_prompt(v, spec.prompt);
    } else if (name == "max_tokens" || (name == "max_completion_tokens" && chat)) {
      st = read_max_tokens(name, v, saw_max_tokens, spec);
    } else if (name == "stream") {
      if (!v.is_bool()) return field_error(name, "must be true or false");
      out.stream = v.get_bool();
    } else if (name == "stream_options") {
      const json::object* so = v.if_object();
      if (so == nullptr) return field_error(name, "must be an object");
      for (const auto& option : *so) {
        if (option.key() != "include_usage")
          return field_error("stream_options." + json_safe(std::string(option.key()).substr(0, 64)),
                             "unknown field");
        if (!option.value().is_bool())
          return field_error("stream_options.include_usage", "must be true or false");
        out.include_usage = option.value().get_bool();
      }
    } else if (std::find(kIgnored.begin(), kIgnored.end(), name) != kIgnored.end()) {
      continue;
    } else if (std::find(kUnsupported.begin(), kUnsupported.end(), name) != kUnsupported.end()) {
      return field_error(name, "not supported: the network generates text only");
    } else if (takes_default_only(name)) {
      st = require_default(name, v);
    } else if (name != "messages" && name != "prompt" && is_job_field(name)) {
      st = read_job_field(name, v, spec);  // model and Infernet's own knobs, as in /api/v1/jobs
    } else {
      return field_error(json_safe(std::string(name).substr(0, 64)), "unknown field");
    }
    if (!st) return tl::unexpected(st.error());
  }
  if (spec.model.empty()) return field_error("model", "required");
  if (chat && spec.messages.empty()) return field_error("messages", "required: at least one message");
  if (!chat && !o->contains("prompt")) return field_error("prompt", "required");
  if (!out.stream && out.include_usage) return field_error("stream_options", "only with stream: true");
  return out;
}

}  // namespace infernet::api
