#include "api/market.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "api/api_error.hpp"
#include "api/job_json.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

constexpr size_t kMaxFilterTextBytes = 128;
constexpr size_t kMaxGpuTypeBytes = 64;
constexpr int64_t kMaxModelListLimit = 1000;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool same_text(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool contains_text(std::string_view haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [](char x, char y) { return lower(x) == lower(y); }) != haystack.end();
}

// The job's resources.gpu_type rule: "cpu" (any case) asks for a provider without GPUs.
bool is_cpu_only(std::string_view gpu_type) {
  return same_text(gpu_type, "cpu");
}

bool hardware_matches(const protocol::Hardware& hardware, std::string_view gpu_type) {
  if (gpu_type.empty()) return true;
  if (is_cpu_only(gpu_type)) return hardware.gpus.empty();
  return std::any_of(hardware.gpus.begin(), hardware.gpus.end(), [&](const protocol::GpuInfo& g) {
    return consumer::gpu_name_matches(gpu_type, g.name);
  });
}

Status read_text(const QueryParams& params, std::string_view name, std::string& out) {
  const std::string* value = params.get(name);
  if (value == nullptr) return {};
  if (value->size() > kMaxFilterTextBytes) {
    return make_error(ErrorCode::kInvalidInput,
                      std::string(name) + ": longer than " + std::to_string(kMaxFilterTextBytes) + " bytes");
  }
  out = *value;
  return {};
}

// The same characters and length a job's resources.gpu_type accepts, so a filter that works here works there.
Status read_gpu_type(const QueryParams& params, std::string& out) {
  const std::string* value = params.get("gpu_type");
  if (value == nullptr) return {};
  bool plain = value->size() <= kMaxGpuTypeBytes;
  for (char c : *value) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == ' ' || c == '_' || c == '-' || c == '.');
  }
  if (!plain) {
    return make_error(ErrorCode::kInvalidInput, "gpu_type: at most " + std::to_string(kMaxGpuTypeBytes) +
                                                    " letters, digits, spaces, '_', '-' and '.'");
  }
  out = *value;
  return {};
}

Status read_count(const QueryParams& params, std::string_view name, std::optional<uint64_t>& out) {
  auto value = params.get_int(name, 0, INT64_MAX);
  if (!value) return tl::unexpected(value.error());
  if (*value) out = static_cast<uint64_t>(**value);
  return {};
}

bool offer_matches(const consumer::ProviderRecord& provider, const protocol::ModelInfo& model,
                   const ModelFilter& f) {
  const protocol::Announcement& a = provider.announcement;
  if (!f.capability.empty() &&
      std::none_of(model.capabilities.begin(), model.capabilities.end(),
                   [&](const std::string& c) { return same_text(c, f.capability); })) {
    return false;
  }
  if (!f.family.empty() && !same_text(model.family, f.family)) return false;
  if (!f.engine.empty() && !same_text(model.engine, f.engine)) return false;
  if (!f.quantization.empty() && !same_text(model.quantization, f.quantization)) return false;
  if (!f.name_contains.empty() && !contains_text(model.name, f.name_contains)) return false;
  if (f.min_parameters && model.parameters < *f.min_parameters) return false;
  if (f.max_parameters && model.parameters > *f.max_parameters) return false;
  if (f.min_context && model.context_length < *f.min_context) return false;
  if (f.max_price_per_1k_output_msat && a.prices.per_1k_output_msat > *f.max_price_per_1k_output_msat) {
    return false;
  }
  return hardware_matches(a.hardware, f.gpu_type);
}

const protocol::Prices& prices_of(const ModelOffer& offer) {
  return offer.provider->announcement.prices;
}

uint64_t min_output_price(const MarketModel& m) {
  return prices_of(m.offers.front()).per_1k_output_msat;  // offers are cheapest first
}

json::object price_range(const std::vector<ModelOffer>& offers, uint64_t protocol::Prices::*price) {
  uint64_t low = UINT64_MAX;
  uint64_t high = 0;
  for (const auto& o : offers) {
    low = std::min(low, prices_of(o).*price);
    high = std::max(high, prices_of(o).*price);
  }
  return json::object{{"min", low}, {"max", high}};
}

json::array sorted_strings(const std::set<std::string>& items) {
  json::array out;
  for (const auto& s : items)
    out.emplace_back(json_safe(s));
  return out;
}

json::object offer_to_json(const ModelOffer& offer) {
  const consumer::ProviderRecord& p = *offer.provider;
  json::object out = model_info_to_json(*offer.model);
  out.erase("name");  // the model's, given once above
  out["provider"] = json_safe(p.pubkey);
  out["npub"] = npub_of(p.pubkey);
  out["provider_name"] = json_safe(p.name);
  out["prices"] = prices_to_json(p.announcement.prices);
  out["gpus"] = hardware_to_json(p.announcement.hardware)["gpus"];
  const protocol::Capacity& c = p.announcement.capacity;
  out["capacity"] =
      json::object{{"slots", c.slots}, {"queue", c.queue}, {"busy", c.busy}, {"queued", c.queued}};
  return out;
}

net::HttpResponse ok(const json::object& body) {
  return net::json_response(200, json::serialize(body));
}

net::HttpResponse method_not_allowed(const net::HttpRequest& request) {
  auto response = error_response(
      ApiError{405, "method_not_allowed", request.method + " is not allowed here; use GET", ""});
  response.headers.emplace_back("Allow", "GET");
  return response;
}

net::HttpResponse list_models(consumer::ConsumerNode& consumer, const net::HttpRequest& request) {
  auto filter = parse_model_filter(request.query());
  if (!filter) return error_response(filter.error());
  const auto providers = consumer.providers();
  json::array out;
  for (const auto& m : build_market(providers, *filter))
    out.push_back(market_model_to_json(m, false));
  return ok(json::object{{"models", std::move(out)}});
}

net::HttpResponse model_detail(consumer::ConsumerNode& consumer, const net::HttpRequest& request,
                               std::string_view encoded_name) {
  auto name = percent_decode(encoded_name);
  if (!name) return error_response(Error{ErrorCode::kInvalidInput, "name: " + name.error().message});
  if (name->empty() || name->size() > kMaxFilterTextBytes) {
    return error_response(Error{ErrorCode::kInvalidInput,
                                "name: must be 1 to " + std::to_string(kMaxFilterTextBytes) + " bytes"});
  }
  if (auto params = QueryParams::parse(request.query(), {}); !params) return error_response(params.error());
  const auto providers = consumer.providers();
  for (const auto& m : build_market(providers, ModelFilter{})) {
    if (m.name == *name) return ok(market_model_to_json(m, true));
  }
  return error_response(
      ApiError{404, "not_found", "model " + json_safe(*name) + ": no alive provider offers it", ""});
}

net::HttpResponse list_providers(consumer::ConsumerNode& consumer, const net::HttpRequest& request) {
  auto filter = parse_provider_filter(request.query());
  if (!filter) return error_response(filter.error());
  json::array out;
  for (const auto& p : consumer.providers()) {
    if (provider_matches(p, *filter)) out.push_back(provider_to_json(p));
  }
  return ok(json::object{{"providers", std::move(out)}});
}

}  // namespace

Result<ModelFilter> parse_model_filter(std::string_view query) {
  auto params = QueryParams::parse(
      query, {"capability", "type", "family", "engine", "min_parameters", "max_parameters", "quantization",
              "min_context", "max_price_per_1k_output_msat", "gpu_type", "q", "sort", "limit"});
  if (!params) return tl::unexpected(params.error());
  ModelFilter f;
  std::string type;
  Status st = read_text(*params, "capability", f.capability);
  if (st) st = read_text(*params, "type", type);
  if (st) st = read_text(*params, "family", f.family);
  if (st) st = read_text(*params, "engine", f.engine);
  if (st) st = read_text(*params, "quantization", f.quantization);
  if (st) st = read_text(*params, "q", f.name_contains);
  if (st) st = read_gpu_type(*params, f.gpu_type);
  if (st) st = read_count(*params, "min_parameters", f.min_parameters);
  if (st) st = read_count(*params, "max_parameters", f.max_parameters);
  if (st) st = read_count(*params, "min_context", f.min_context);
  if (st) st = read_count(*params, "max_price_per_1k_output_msat", f.max_price_per_1k_output_msat);
  if (!st) return tl::unexpected(st.error());
  if (!type.empty()) {
    if (!f.capability.empty() && !same_text(type, f.capability)) {
      return make_error(ErrorCode::kInvalidInput,
                        "type: a synonym of capability; give one, or both the same");
    }
    f.capability = type;
  }
  if (f.min_parameters && f.max_parameters && *f.min_parameters > *f.max_parameters) {
    return make_error(ErrorCode::kInvalidInput, "min_parameters: larger than max_parameters");
  }
  if (const std::string* sort = params->get("sort")) {
    static const std::map<std::string, ModelSort, std::less<>> kSorts = {
        {"name", ModelSort::kName},
        {"price", ModelSort::kPrice},
        {"providers", ModelSort::kProviders},
        {"parameters", ModelSort::kParameters}};
    auto it = kSorts.find(*sort);
    if (it == kSorts.end()) {
      return make_error(ErrorCode::kInvalidInput, "sort: must be name, price, providers or parameters");
    }
    f.sort = it->second;
  }
  auto limit = params->get_int("limit", 1, kMaxModelListLimit);
  if (!limit) return tl::unexpected(limit.error());
  if (*limit) f.limit = static_cast<size_t>(**limit);
  return f;
}

std::vector<MarketModel> build_market(const std::vector<consumer::ProviderRecord>& providers,
                                      const ModelFilter& filter) {
  std::map<std::string, MarketModel> by_name;
  for (const auto& p : providers) {
    if (!p.alive) continue;
    for (const auto& m : p.announcement.models) {
      if (!offer_matches(p, m, filter)) continue;
      MarketModel& entry = by_name[m.name];
      entry.name = m.name;
      entry.offers.push_back(ModelOffer{&p, &m});
    }
  }
  std::vector<MarketModel> out;
  out.reserve(by_name.size());
  for (auto& [name, model] : by_name) {
    std::sort(model.offers.begin(), model.offers.end(), [](const ModelOffer& a, const ModelOffer& b) {
      return std::forward_as_tuple(prices_of(a).per_1k_output_msat, prices_of(a).per_1k_input_msat,
                                   a.provider->pubkey) <
             std::forward_as_tuple(prices_of(b).per_1k_output_msat, prices_of(b).per_1k_input_msat,
                                   b.provider->pubkey);
    });
    out.push_back(std::move(model));
  }
  // by_name left them in name order, which a stable sort keeps for ties.
  std::stable_sort(out.begin(), out.end(), [&](const MarketModel& a, const MarketModel& b) {
    switch (filter.sort) {
      case ModelSort::kPrice:
        return min_output_price(a) < min_output_price(b);
      case ModelSort::kProviders:
        return a.offers.size() > b.offers.size();
      case ModelSort::kParameters:
        return a.offers.front().model->parameters < b.offers.front().model->parameters;
      case ModelSort::kName:
        break;
    }
    return false;
  });
  if (out.size() > filter.limit) out.resize(filter.limit);
  return out;
}

json::object market_model_to_json(const MarketModel& model, bool with_offers) {
  // Providers may announce one name with different details; the summary shows the cheapest offer's, the
  // lists gather every offer's.
  const protocol::ModelInfo& first = *model.offers.front().model;
  std::set<std::string> capabilities, engines, fingerprints, gpus, providers;
  size_t without_gpu = 0;
  for (const auto& o : model.offers) {
    capabilities.insert(o.model->capabilities.begin(), o.model->capabilities.end());
    if (!o.model->engine.empty()) engines.insert(o.model->engine);
    if (!o.model->sha256.empty()) fingerprints.insert(o.model->sha256);
    providers.insert(o.provider->pubkey);
    const auto& hw = o.provider->announcement.hardware;
    for (const auto& g : hw.gpus)
      gpus.insert(g.name);
    if (hw.gpus.empty()) ++without_gpu;
  }
  json::object out{
      {"name", json_safe(model.name)},
      {"family", json_safe(first.family)},
      {"parameters", first.parameters},
      {"quantization", json_safe(first.quantization)},
      {"context_length", first.context_length},
      {"capabilities", sorted_strings(capabilities)},
      {"engines", sorted_strings(engines)},
      {"fingerprints", sorted_strings(fingerprints)},
      {"providers", sorted_strings(providers)},
      {"provider_count", model.offers.size()},
      {"min_price_per_1k_output_msat", min_output_price(model)},
      {"price",
       json::object{
           {"per_1k_input_msat", price_range(model.offers, &protocol::Prices::per_1k_input_msat)},
           {"per_1k_output_msat", price_range(model.offers, &protocol::Prices::per_1k_output_msat)}}},
      {"hardware", json::object{{"gpus", sorted_strings(gpus)}, {"providers_without_gpu", without_gpu}}}};
  if (with_offers) {
    json::array offers;
    for (const auto& o : model.offers)
      offers.push_back(offer_to_json(o));
    out["offers"] = std::move(offers);
  }
  return out;
}

Result<ProviderFilter> parse_provider_filter(std::string_view query) {
  auto params = QueryParams::parse(query, {"alive", "model", "gpu_type", "engine"});
  if (!params) return tl::unexpected(params.error());
  ProviderFilter f;
  if (const std::string* alive = params->get("alive")) {
    if (*alive != "true" && *alive != "false") {
      return make_error(ErrorCode::kInvalidInput, "alive: must be true or false");
    }
    f.alive = *alive == "true";
  }
  Status st = read_text(*params, "model", f.model);
  if (st) st = read_text(*params, "engine", f.engine);
  if (st) st = read_gpu_type(*params, f.gpu_type);
  if (!st) return tl::unexpected(st.error());
  return f;
}

bool provider_matches(const consumer::ProviderRecord& provider, const ProviderFilter& filter) {
  const protocol::Announcement& a = provider.announcement;
  if (filter.alive && provider.alive != *filter.alive) return false;
  if (!filter.model.empty() &&
      std::none_of(a.models.begin(), a.models.end(),
                   [&](const protocol::ModelInfo& m) { return m.name == filter.model; })) {
    return false;
  }
  // A provider's engines: those it announces, and those its models name.
  if (!filter.engine.empty() &&
      std::none_of(a.engines.begin(), a.engines.end(),
                   [&](const std::string& e) { return same_text(e, filter.engine); }) &&
      std::none_of(a.models.begin(), a.models.end(),
                   [&](const protocol::ModelInfo& m) { return same_text(m.engine, filter.engine); })) {
    return false;
  }
  return hardware_matches(a.hardware, filter.gpu_type);
}

std::optional<net::HttpResponse> route_market_request(consumer::ConsumerNode& consumer,
                                                      const net::HttpRequest& request,
                                                      std::string_view rest) {
  constexpr std::string_view kModelPrefix = "models/";
  const bool detail =
      rest.size() > kModelPrefix.size() && rest.substr(0, kModelPrefix.size()) == kModelPrefix;
  if (rest != "models" && rest != "providers" && !detail) return std::nullopt;
  if (request.method != "GET") return method_not_allowed(request);
  if (rest == "models") return list_models(consumer, request);
  if (rest == "providers") return list_providers(consumer, request);
  return model_detail(consumer, request, rest.substr(kModelPrefix.size()));
}

}  // namespace infernet::api
