#include "api/market_routes.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/api_error.hpp"
#include "api/job_json.hpp"
#include "api/job_request.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

json::object cost_to_json(const market::Cost& c) {
  json::object o{{"total_msat", c.total_msat},     {"bounded", c.bounded},
                 {"per_job_msat", c.per_job_msat}, {"input_tokens", c.input_tokens},
                 {"input_msat", c.input_msat},     {"output_tokens", c.output_tokens},
                 {"output_msat", c.output_msat},   {"seconds", c.seconds},
                 {"time_msat", c.time_msat},       {"priority_percent", c.priority_percent}};
  // An unbounded worst case has no total: null says so rather than a saturated number.
  if (!c.bounded) o["total_msat"] = nullptr;
  return o;
}

json::array assessments_to_json(const std::vector<market::Assessment>& assessed) {
  json::array out;
  for (const auto& a : assessed) {
    out.push_back(json::object{{"provider", json_safe(a.provider)},
                               {"name", json_safe(a.name)},
                               {"verdict", market::to_string(a.verdict)},
                               {"reason", json_safe(a.reason)},
                               {"worst_case_msat", a.worst_case.bounded && a.worst_case.total_msat != 0
                                                       ? json::value(a.worst_case.total_msat)
                                                       : json::value(nullptr)},
                               {"score", a.score},
                               {"load", a.load},
                               {"slots", a.slots}});
  }
  return out;
}

net::HttpResponse respond(const json::object& body) {
  return net::json_response(200, json::serialize(body));
}

}  // namespace

net::HttpResponse estimate_job(consumer::ConsumerNode& consumer, const RouteOptions& options,
                               const net::HttpRequest& request) {
  if (request.body.size() > options.max_body_bytes) {
    return error_response(
        ApiError{413, "limit_exceeded",
                 "request body: larger than " + std::to_string(options.max_body_bytes) + " bytes", ""});
  }
  auto parsed = parse_job_request(request.body);
  if (!parsed) return error_response(parsed.error());
  if (auto st = attach_files(*parsed, options.blobs.get()); !st) return error_response(st.error());
  auto e = consumer.estimate(parsed->spec);
  if (!e) return error_response(e.error());
  json::object body{{"model", json_safe(e->model)},
                    {"strategy", e->strategy},
                    {"priority", json_safe(e->priority)},
                    {"input_tokens", e->input_tokens},
                    {"input_tokens_source", e->input_tokens_source},
                    {"input_tokens_bound", e->input_tokens_bound},
                    {"max_tokens", e->max_tokens},
                    {"eligible", e->eligible},
                    {"range", e->eligible == 0 ? json::value(nullptr)
                                               : json::value(json::object{{"min_msat", e->min_msat},
                                                                          {"max_msat", e->max_msat}})},
                    {"chosen", nullptr},
                    {"providers", assessments_to_json(e->providers)}};
  if (!e->input_tokens_counted_by.empty()) body["input_tokens_counted_by"] = e->input_tokens_counted_by;
  if (!e->input_tokens_note.empty()) body["input_tokens_note"] = json_safe(e->input_tokens_note);
  if (e->chosen) {
    body["chosen"] = json::object{{"provider", json_safe(e->chosen->provider)},
                                  {"name", json_safe(e->chosen->name)},
                                  {"score", e->chosen->score},
                                  {"worst_case", cost_to_json(e->chosen->worst_case)},
                                  {"expected", cost_to_json(e->expected)}};
  }
  return respond(body);
}

net::HttpResponse why_job(consumer::ConsumerNode& consumer, const std::string& id) {
  auto w = consumer.why(id);
  if (!w) return error_response(w.error());
  json::array suggestions;
  for (const auto& s : w->suggestions)
    suggestions.emplace_back(json_safe(s));
  return respond(json::object{{"job_id", json_safe(w->job_id)},
                              {"state", consumer::to_string(w->state)},
                              {"provider", json_safe(w->provider)},
                              {"error", json_safe(w->error)},
                              {"providers", assessments_to_json(w->providers)},
                              {"suggestions", std::move(suggestions)}});
}

}  // namespace infernet::api
