// The text form of `infernet estimate` and `infernet why` (the commands themselves are in cmd_jobs.cpp,
// with submit, whose flags estimate shares).
#include <cstdio>
#include <string>

#include <boost/json.hpp>

namespace infernet::cli {
namespace {

namespace json = boost::json;

std::string text(const json::value& v, std::string_view key) {
  const json::object* o = v.if_object();
  const json::value* f = o != nullptr ? o->if_contains(key) : nullptr;
  if (f == nullptr || f->is_null()) return "";
  if (f->is_string()) return std::string(f->get_string());
  if (f->is_double()) {  // Boost.JSON writes 0 as 0E0; people read %g
    char out[32];
    std::snprintf(out, sizeof out, "%g", f->get_double());
    return out;
  }
  return json::serialize(*f);
}

const json::value& at(const json::value& v, std::string_view key) {
  static const json::value kNull;
  const json::object* o = v.if_object();
  const json::value* f = o != nullptr ? o->if_contains(key) : nullptr;
  return f != nullptr ? *f : kNull;
}

std::string provider_label(const json::value& p) {
  std::string name = text(p, "name");
  std::string key = text(p, "provider").substr(0, 12);
  return name.empty() ? key : name + " (" + key + ")";
}

void print_providers(const json::value& providers) {
  const json::array* list = providers.if_array();
  if (list == nullptr || list->empty()) {
    std::printf("  (no provider of this model is known)\n");
    return;
  }
  for (const auto& p : *list) {
    std::string verdict = text(p, "verdict");
    std::string line =
        "  " + verdict + std::string(verdict.size() < 9 ? 9 - verdict.size() : 0, ' ') + provider_label(p);
    if (std::string price = text(p, "worst_case_msat"); !price.empty()) line += "  up to " + price + " msat";
    if (std::string reason = text(p, "reason"); !reason.empty()) line += ": " + reason;
    std::printf("%s\n", line.c_str());
  }
}

void print_cost(const char* title, const json::value& c) {
  std::printf(
      "%s %s msat = (per job %s + input %s tokens: %s + output %s tokens: %s + time %s s: %s) x %s%%\n",
      title, text(c, "total_msat").empty() ? "unbounded" : text(c, "total_msat").c_str(),
      text(c, "per_job_msat").c_str(), text(c, "input_tokens").c_str(), text(c, "input_msat").c_str(),
      text(c, "output_tokens").c_str(), text(c, "output_msat").c_str(), text(c, "seconds").c_str(),
      text(c, "time_msat").c_str(), text(c, "priority_percent").c_str());
}

}  // namespace

void print_estimate(const json::value& e) {
  std::string input = text(e, "input_tokens") + " tokens";
  if (text(e, "input_tokens_source") == "tokenizer") {
    input += " (counted by the model's tokenizer at " + text(e, "input_tokens_counted_by").substr(0, 12) +
             "; prices agreed on the bound of " + text(e, "input_tokens_bound") + ")";
  } else {
    input = "at most " + input + " (bound: " + text(e, "input_tokens_note") + ")";
  }
  std::printf("model %s, priority %s, strategy %s, input %s, output at most %s tokens\n",
              text(e, "model").c_str(), text(e, "priority").c_str(), text(e, "strategy").c_str(),
              input.c_str(), text(e, "max_tokens").c_str());
  const json::value& chosen = at(e, "chosen");
  if (chosen.is_object()) {
    std::printf("would go to %s\n", provider_label(chosen).c_str());
    print_cost("  at most ", at(chosen, "worst_case"));
    print_cost("  expected", at(chosen, "expected"));
  } else {
    std::printf("no provider would take it now (see the reasons below)\n");
  }
  const json::value& range = at(e, "range");
  std::printf("%s eligible provider(s)", text(e, "eligible").c_str());
  if (range.is_object()) {
    std::printf(", worst cases from %s to %s msat", text(range, "min_msat").c_str(),
                text(range, "max_msat").c_str());
  }
  std::printf("\n");
  print_providers(at(e, "providers"));
}

void print_why(const json::value& w) {
  std::string line = "job " + text(w, "job_id") + " is " + text(w, "state");
  if (std::string error = text(w, "error"); !error.empty()) line += ": " + error;
  std::printf("%s\n", line.c_str());
  print_providers(at(w, "providers"));
  const json::array* suggestions = at(w, "suggestions").if_array();
  if (suggestions != nullptr && !suggestions->empty()) {
    std::printf("suggestions:\n");
    for (const auto& s : *suggestions) {
      if (s.is_string()) std::printf("  - %s\n", std::string(s.get_string()).c_str());
    }
  }
}

}  // namespace infernet::cli
