// The models marketplace and the provider directory as the REST API shows them (docs/api.md, "Models" and
// "Providers"): GET /api/v1/models, /api/v1/models/{name} and /api/v1/providers, built from the providers'
// signed announcements (protocol::Announcement) the consumer keeps.
//
// A model is offered by each alive provider that announces it, at that provider's prices and on its
// hardware. Filters apply to offers: a model is listed when at least one offer passes every filter, and its
// summary (providers, prices, engines, GPUs, ...) counts only the offers that pass.
//
// Thread-safe: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "api/query.hpp"
#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "net/http.hpp"

namespace infernet::api {

enum class ModelSort { kName, kPrice, kProviders, kParameters };

// What GET /api/v1/models filters on; absent or empty: no filter. Text filters compare without case.
struct ModelFilter {
  std::string capability;     // one of the model's capabilities ("text-generation"); `type` is a synonym
  std::string family;         // the model's family
  std::string engine;         // the engine serving it
  std::string quantization;   // e.g. "q4_0"
  std::string gpu_type;       // a GPU of the provider matches (consumer::gpu_name_matches); "cpu": none
  std::string name_contains;  // a substring of the model's name (`q`)
  std::optional<uint64_t> min_parameters;
  std::optional<uint64_t> max_parameters;
  std::optional<uint64_t> min_context;
  std::optional<uint64_t> max_price_per_1k_output_msat;
  ModelSort sort = ModelSort::kName;
  size_t limit = 1000;
};

// One alive provider's offer of one model.
struct ModelOffer {
  const consumer::ProviderRecord* provider = nullptr;  // owned by the caller's provider list
  const protocol::ModelInfo* model = nullptr;          // within provider->announcement.models
};

// A model of the marketplace with the offers that passed the filter (at least one), cheapest first.
struct MarketModel {
  std::string name;
  std::vector<ModelOffer> offers;
};

// Reads GET /api/v1/models' query parameters. Errors (kInvalidInput, naming the parameter): an unknown
// parameter, a bad number or sort, a text longer than 128 bytes, `capability` and `type` that disagree.
Result<ModelFilter> parse_model_filter(std::string_view query);

// The marketplace: every model an alive provider of `providers` announces, filtered, sorted by
// filter.sort (ties by name), at most filter.limit. The result points into `providers`.
std::vector<MarketModel> build_market(const std::vector<consumer::ProviderRecord>& providers,
                                      const ModelFilter& filter);

// {name, family, parameters, quantization, context_length, capabilities, engines, fingerprints, providers,
// provider_count, min_price_per_1k_output_msat, price, hardware}; with `with_offers`, also offers: one
// entry per provider (its model details, prices, GPUs and capacity).
boost::json::object market_model_to_json(const MarketModel& model, bool with_offers);

// What GET /api/v1/providers filters on: alive, model (exact name), gpu_type (as ModelFilter) and engine.
struct ProviderFilter {
  std::optional<bool> alive;
  std::string model;
  std::string gpu_type;
  std::string engine;
};

// Errors as parse_model_filter.
Result<ProviderFilter> parse_provider_filter(std::string_view query);
bool provider_matches(const consumer::ProviderRecord& provider, const ProviderFilter& filter);

// Answers GET /api/v1/models, /api/v1/models/{name} and /api/v1/providers (`rest` is the path after
// /api/v1/); nullopt for any other path. A model no alive provider offers is 404.
std::optional<net::HttpResponse> route_market_request(consumer::ConsumerNode& consumer,
                                                      const net::HttpRequest& request, std::string_view rest);

}  // namespace infernet::api
