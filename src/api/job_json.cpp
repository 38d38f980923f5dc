#include "api/job_json.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/encoding.hpp"
#include "nostr/nip19.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;
using consumer::JobSpec;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

Error field_error(std::string_view field, std::string_view problem) {
  return Error{ErrorCode::kInvalidInput, std::string(field) + ": " + std::string(problem)};
}

// The length a UTF-8 sequence announces in its first byte, or 0 for a byte that cannot start one.
size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

Status read_string(const json::value& v, std::string_view field, std::string& out) {
  if (!v.is_string()) return tl::unexpected(field_error(field, "must be a string"));
  out = std::string(v.get_string());
  return {};
}

Status read_uint64(const json::value& v, std::string_view field, uint64_t& out) {
  if (v.is_uint64()) {
    out = v.get_uint64();
  } else if (v.is_int64() && v.get_int64() >= 0) {
    out = static_cast<uint64_t>(v.get_int64());
  } else {
    return tl::unexpected(field_error(field, "must be a non-negative integer"));
  }
  return {};
}

Status read_int64(const json::value& v, std::string_view field, int64_t& out) {
  if (v.is_int64()) {
    out = v.get_int64();
  } else if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    out = static_cast<int64_t>(v.get_uint64());
  } else {
    return tl::unexpected(field_error(field, "must be an integer"));
  }
  return {};
}

Status read_uint32(const json::value& v, std::string_view field, uint32_t& out) {
  uint64_t wide = 0;
  if (!read_uint64(v, field, wide) || wide > std::numeric_limits<uint32_t>::max()) {
    return tl::unexpected(field_error(field, "must be an integer from 0 to 4294967295"));
  }
  out = static_cast<uint32_t>(wide);
  return {};
}

Status read_number(const json::value& v, std::string_view field, double& out) {
  if (!v.is_number()) return tl::unexpected(field_error(field, "must be a number"));
  out = v.to_number<double>();
  return {};
}

Status read_bool(const json::value& v, std::string_view field, bool& out) {
  if (!v.is_bool()) return tl::unexpected(field_error(field, "must be true or false"));
  out = v.get_bool();
  return {};
}

constexpr std::array<std::string_view, 23> kSpecFields = {
    "model",
    "prompt",
    "messages",
    "max_tokens",
    "temperature",
    "seed",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "stop",
    "deterministic",
    "max_cost_msat",
    "priority",
    "deadline",
    "provider",
    "open_quotes",
    "client_request_id",
    "finish_by",
    "start_by",
    "strategy",
    "model_sha256",
};

// A plain name is quoted so the client sees its typo; anything else is not echoed back.
Error unknown_field(std::string_view name) {
  bool plain = !name.empty() && name.size() <= 64;
  for (char c : name) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  }
  return plain ? field_error(name, "unknown field") : field_error("request body", "has an unknown field");
}

// "stop": one string or a list of them, as in OpenAI's API.
Status read_stop(const json::value& v, std::vector<std::string>& out) {
  if (v.is_string()) {
    out = {std::string(v.get_string())};
    return {};
  }
  if (!v.is_array()) return tl::unexpected(field_error("stop", "must be a string or a list of strings"));
  out.clear();
  for (const json::value& item : v.get_array()) {
    if (!item.is_string())
      return tl::unexpected(field_error("stop", "must be a string or a list of strings"));
    out.emplace_back(item.get_string());
  }
  return {};
}

Status read_messages(const json::value& v, std::vector<ChatMessage>& out) {
  if (!v.is_array()) return tl::unexpected(field_error("messages", "must be a list of {role, content}"));
  if (v.get_array().size() > kMaxChatMessages)
    return tl::unexpected(field_error("messages", "at most " + std::to_string(kMaxChatMessages)));
  out.clear();
  for (size_t i = 0; i < v.get_array().size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json::object* o = v.get_array()[i].if_object();
    if (o == nullptr) return tl::unexpected(field_error(at, "must be an object with role and content"));
    ChatMessage& m = out.emplace_back();
    for (const auto& member : *o) {
      Status st;
      if (member.key() == "role") {
        st = read_string(member.value(), at + ".role", m.role);
      } else if (member.key() == "content") {
        st = read_string(member.value(), at + ".content", m.content);
      } else if (member.key() != "name") {  // OpenAI's optional speaker name: accepted, not used
        st = tl::unexpected(field_error(at + "." + std::string(member.key()), "unknown field"));
      }
      if (!st) return st;
    }
    if (!o->contains("role")) return tl::unexpected(field_error(at + ".role", "required"));
    if (!o->contains("content")) return tl::unexpected(field_error(at + ".content", "required"));
  }
  return {};
}

Status read_member(std::string_view name, const json::value& v, JobSpec& spec) {
  SamplingParams& p = spec.sampling;
  if (name == "model") return read_string(v, name, spec.model);
  if (name == "prompt") return read_string(v, name, spec.prompt);
  if (name == "messages") return read_messages(v, spec.messages);
  if (name == "max_tokens") return read_uint32(v, name, spec.max_tokens);
  if (name == "temperature") return read_number(v, name, p.temperature);
  if (name == "seed") return read_uint64(v, name, p.seed);
  if (name == "top_k") return read_uint32(v, name, p.top_k);
  if (name == "top_p") return read_number(v, name, p.top_p);
  if (name == "min_p") return read_number(v, name, p.min_p);
  if (name == "repeat_penalty") return read_number(v, name, p.repeat_penalty);
  if (name == "repeat_last_n") return read_uint32(v, name, p.repeat_last_n);
  if (name == "stop") return read_stop(v, p.stop);
  if (name == "deterministic") return read_bool(v, name, spec.deterministic);
  if (name == "max_cost_msat") return read_uint64(v, name, spec.max_cost_msat);
  if (name == "priority") return read_string(v, name, spec.priority);
  if (name == "deadline" || name == "finish_by") {
    // finish_by is deadline's other name: both may be given only with the same value.
    int64_t value = 0;
    if (auto st = read_int64(v, name, value); !st) return st;
    if (spec.deadline != 0 && spec.deadline != value) {
      return make_error(
          ErrorCode::kInvalidInput,
          std::string(name) + ": differs from the other of deadline and finish_by (one field, two names)");
    }
    spec.deadline = value;
    return {};
  }
  if (name == "start_by") return read_int64(v, name, spec.start_by);
  if (name == "provider") return read_string(v, name, spec.provider);
  if (name == "open_quotes") return read_bool(v, name, spec.open_quotes);
  if (name == "client_request_id") return read_string(v, name, spec.client_request_id);
  if (name == "strategy") return read_string(v, name, spec.strategy);
  if (name == "model_sha256") return read_string(v, name, spec.model_sha256);
  return tl::unexpected(unknown_field(name));
}

json::object usage_to_json(const protocol::Usage& usage) {
  return json::object{{"input_tokens", usage.input_tokens}, {"output_tokens", usage.output_tokens}};
}

json::array strings_to_json(const std::vector<std::string>& items) {
  json::array out;
  for (const auto& s : items)
    out.emplace_back(json_safe(s));
  return out;
}

json::array messages_to_json(const std::vector<ChatMessage>& messages) {
  json::array out;
  for (const ChatMessage& m : messages)
    out.push_back(json::object{{"role", json_safe(m.role)}, {"content", json_safe(m.content)}});
  return out;
}

}  // namespace

std::string npub_of(const std::string& hex_pubkey) {
  auto key = hex_decode_array<32>(hex_pubkey);
  return key ? nostr::nip19::encode_npub(*key) : "";
}

json::object hardware_to_json(const protocol::Hardware& hardware) {
  json::array gpus;
  for (const auto& g : hardware.gpus)
    gpus.push_back(json::object{{"name", json_safe(g.name)}, {"memory_mb", g.memory_mb}});
  return json::object{{"cpu_model", json_safe(hardware.cpu_model)},
                      {"cpu_cores", hardware.cpu_cores},
                      {"memory_mb", hardware.memory_mb},
                      {"gpus", std::move(gpus)}};
}

json::object prices_to_json(const protocol::Prices& prices) {
  json::object priority;
  for (const auto& [name, percent] : prices.priority_percent)
    priority[json_safe(name)] = percent;
  return json::object{{"per_1k_input_msat", prices.per_1k_input_msat},
                      {"per_1k_output_msat", prices.per_1k_output_msat},
                      {"per_second_msat", prices.per_second_msat},
                      {"per_job_msat", prices.per_job_msat},
                      {"priority_percent", std::move(priority)}};
}

json::object model_info_to_json(const protocol::ModelInfo& m) {
  return json::object{{"name", json_safe(m.name)},
                      {"sha256", json_safe(m.sha256)},
                      {"family", json_safe(m.family)},
                      {"parameters", m.parameters},
                      {"quantization", json_safe(m.quantization)},
                      {"context_length", m.context_length},
                      {"engine", json_safe(m.engine)},
                      {"capabilities", strings_to_json(m.capabilities)}};
}

std::string json_safe(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t n = sequence_length(static_cast<unsigned char>(text[i]));
    if (n != 0 && i + n <= text.size() && is_valid_utf8(text.substr(i, n))) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
  return out;
}

Status read_job_field(std::string_view name, const json::value& value, JobSpec& spec) {
  return read_member(name, value, spec);
}

bool is_job_field(std::string_view name) {
  return std::find(kSpecFields.begin(), kSpecFields.end(), name) != kSpecFields.end();
}

Result<JobSpec> parse_job_spec(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) return make_error(ErrorCode::kInvalidInput, "request body: not valid JSON (" + ec.message() + ")");
  if (!doc.is_object()) return make_error(ErrorCode::kInvalidInput, "request body: must be a JSON object");
  JobSpec spec;
  for (const auto& member : doc.get_object()) {
    if (member.value().is_null()) {
      bool known = false;
      for (auto f : kSpecFields)
        known = known || f == member.key();
      if (!known) return tl::unexpected(unknown_field(member.key()));
      continue;
    }
    if (auto st = read_member(member.key(), member.value(), spec); !st) return tl::unexpected(st.error());
  }
  return spec;
}

json::object job_to_json(const consumer::JobRecord& job) {
  const JobSpec& spec = job.spec;
  return json::object{{"id", json_safe(job.id)},
                      {"client_request_id", json_safe(job.client_request_id)},
                      {"state", consumer::to_string(job.state)},
                      {"model", json_safe(spec.model)},
                      {"prompt", json_safe(spec.prompt)},
                      {"messages", messages_to_json(spec.messages)},
                      {"max_tokens", spec.max_tokens},
                      {"temperature", spec.sampling.temperature},
                      {"seed", spec.sampling.seed},
                      {"top_k", spec.sampling.top_k},
                      {"top_p", spec.sampling.top_p},
                      {"min_p", spec.sampling.min_p},
                      {"repeat_penalty", spec.sampling.repeat_penalty},
                      {"repeat_last_n", spec.sampling.repeat_last_n},
                      {"stop", strings_to_json(spec.sampling.stop)},
                      {"deterministic", spec.deterministic},
                      {"max_cost_msat", spec.max_cost_msat},
                      {"priority", json_safe(spec.priority)},
                      {"deadline", spec.deadline},
                      {"finish_by", spec.deadline},
                      {"start_by", spec.start_by},
                      {"provider", json_safe(job.provider.empty() ? spec.provider : job.provider)},
                      {"requested_provider", json_safe(spec.provider)},
                      {"open_quotes", spec.open_quotes},
                      {"gpu_type", json_safe(spec.gpu_type)},
                      {"min_gpu_memory_mb", spec.min_gpu_memory_mb},
                      {"model_sha256", json_safe(spec.model_sha256)},
                      {"strategy", json_safe(spec.strategy)},
                      {"attempt", job.attempt},
                      {"output", json_safe(job.output)},
                      {"error", json_safe(job.error)},
                      {"usage", usage_to_json(job.usage)},
                      {"cost_msat", job.cost_msat},
                      {"created_at", job.created_at},
                      {"updated_at", job.updated_at}};
}

json::object result_to_json(const consumer::JobRecord& job) {
  return json::object{{"id", json_safe(job.id)},         {"state", consumer::to_string(job.state)},
                      {"output", json_safe(job.output)}, {"usage", usage_to_json(job.usage)},
                      {"cost_msat", job.cost_msat},      {"error", json_safe(job.error)}};
}

json::value event_data(const consumer::JobEvent& event) {
  boost::system::error_code ec;
  json::value data = json::parse(event.data, ec);
  if (ec) return json::string(json_safe(event.data));
  return data;
}

json::object event_to_json(const consumer::JobEvent& event) {
  return json::object{{"seq", event.seq},
                      {"job_id", json_safe(event.job_id)},
                      {"type", json_safe(event.type)},
                      {"data", event_data(event)},
                      {"at", event.at}};
}

json::object provider_to_json(const consumer::ProviderRecord& provider) {
  const protocol::Announcement& a = provider.announcement;
  json::array models;
  for (const auto& m : a.models)
    models.push_back(model_info_to_json(m));
  return json::object{{"pubkey", json_safe(provider.pubkey)},
                      {"npub", npub_of(provider.pubkey)},
                      {"name", json_safe(provider.name)},
                      {"alive", provider.alive},
                      {"last_seen", provider.last_seen},
                      {"expires_at", provider.expires_at},
                      {"hardware", hardware_to_json(a.hardware)},
                      {"engines", strings_to_json(a.engines)},
                      {"models", std::move(models)},
                      {"prices", prices_to_json(a.prices)},
                      {"capacity", json::object{{"slots", a.capacity.slots},
                                                {"queue", a.capacity.queue},
                                                {"busy", a.capacity.busy},
                                                {"queued", a.capacity.queued}}},
                      {"reputation", json::object{{"completed", provider.reputation.completed},
                                                  {"failed", provider.reputation.failed},
                                                  {"slow", provider.reputation.slow},
                                                  {"wrong", provider.reputation.wrong},
                                                  {"reliability", provider.reputation.reliability()}}},
                      {"reservations", json::object{{"discount_percent", a.reservations.discount_percent},
                                                    {"max_slots", a.reservations.max_slots},
                                                    {"max_hours", a.reservations.max_hours}}}};
}

json::object model_to_json(const consumer::ModelSummary& model) {
  return json::object{{"name", json_safe(model.name)},
                      {"providers", strings_to_json(model.providers)},
                      {"min_price_per_1k_output_msat", model.min_price_per_1k_output_msat}};
}

}  // namespace infernet::api
