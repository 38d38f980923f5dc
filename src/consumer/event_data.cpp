#include "consumer/internal/event_data.hpp"

#include <boost/json.hpp>

namespace infernet::consumer::internal {

std::string state_data(JobState state, std::string_view provider, uint32_t attempt, std::string_view reason) {
  boost::json::object o;
  o["state"] = to_string(state);
  if (!provider.empty()) o["provider"] = provider;
  if (attempt != 0) o["attempt"] = attempt;
  if (!reason.empty()) o["reason"] = reason;
  return boost::json::serialize(o);
}

std::string progress_data(uint32_t attempt, uint64_t seq_in_attempt, std::string_view text, uint32_t tokens,
                          bool from_result) {
  boost::json::object o;
  o["attempt"] = attempt;
  o["seq_in_attempt"] = seq_in_attempt;
  o["text"] = text;
  o["tokens"] = tokens;
  if (from_result) o["from_result"] = true;
  return boost::json::serialize(o);
}

std::string note_data(std::string_view message, std::string_view provider, std::string_view name) {
  boost::json::object o;
  o["message"] = message;
  if (!provider.empty()) o["provider"] = provider;
  if (!name.empty()) o["name"] = name;
  return boost::json::serialize(o);
}

std::string result_data(uint32_t attempt, std::string_view provider, bool ok, uint64_t cost_msat,
                        const protocol::Usage& usage, std::string_view finish_reason) {
  boost::json::object o;
  o["attempt"] = attempt;
  o["provider"] = provider;
  o["ok"] = ok;
  o["cost_msat"] = cost_msat;
  o["input_tokens"] = usage.input_tokens;
  o["output_tokens"] = usage.output_tokens;
  if (!finish_reason.empty()) o["finish_reason"] = finish_reason;
  return boost::json::serialize(o);
}

std::string error_data(uint32_t attempt, std::string_view provider, std::string_view code,
                       std::string_view message) {
  boost::json::object o;
  o["attempt"] = attempt;
  o["provider"] = provider;
  o["code"] = code;
  o["message"] = message;
  return boost::json::serialize(o);
}

bool parse_progress_position(std::string_view data, uint32_t& attempt, uint64_t& seq_in_attempt) {
  boost::system::error_code ec;
  auto v = boost::json::parse(data, ec);
  if (ec || !v.is_object()) return false;
  const auto* a = v.as_object().if_contains("attempt");
  const auto* s = v.as_object().if_contains("seq_in_attempt");
  if (a == nullptr || s == nullptr) return false;
  auto av = boost::json::try_value_to<uint32_t>(*a);
  auto sv = boost::json::try_value_to<uint64_t>(*s);
  if (!av || !sv) return false;
  attempt = *av;
  seq_in_attempt = *sv;
  return true;
}

}  // namespace infernet::consumer::internal
