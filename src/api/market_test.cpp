// The models marketplace and provider filters, through route_request with the fake consumer.
#include "api/market.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "api/fake_consumer.hpp"
#include "api/routes.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

protocol::ModelInfo model(std::string name, std::string family, uint64_t parameters, std::string quantization,
                          uint32_t context, std::string engine, std::vector<std::string> capabilities,
                          std::string sha256 = "") {
  return protocol::ModelInfo{std::move(name),   std::move(sha256),       std::move(family),
                             parameters,        std::move(quantization), context,
                             std::move(engine), std::move(capabilities), ""};
}

consumer::ProviderRecord provider(char key, std::string name, bool alive, uint64_t in_price,
                                  uint64_t out_price, std::vector<protocol::GpuInfo> gpus,
                                  std::vector<protocol::ModelInfo> models) {
  consumer::ProviderRecord p;
  p.pubkey = std::string(64, key);
  p.name = std::move(name);
  p.alive = alive;
  p.announcement.name = p.name;
  p.announcement.hardware.gpus = std::move(gpus);
  p.announcement.engines = {"llama"};
  p.announcement.models = std::move(models);
  p.announcement.prices.per_1k_input_msat = in_price;
  p.announcement.prices.per_1k_output_msat = out_price;
  p.announcement.capacity.slots = 2;
  return p;
}

class MarketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto llama8b = model("llama-8b", "llama", 8'000'000'000, "q4_0", 8192, "llama",
                               {"text-generation", "chat"}, std::string(64, '1'));
    const auto llama8b_other_file = model("llama-8b", "llama", 8'000'000'000, "q4_0", 8192, "llama",
                                          {"text-generation", "chat"}, std::string(64, '2'));
    const auto tiny = model("tinyllama", "llama", 1'100'000'000, "q8_0", 2048, "llama", {"text-generation"});
    const auto embed = model("nomic-embed", "bert", 137'000'000, "f16", 2048, "torch", {"embeddings"});
    consumer_.add_provider(
        provider('a', "a100-box", true, 100, 3000, {{"NVIDIA A100-SXM4-80GB", 81920}}, {llama8b, embed}));
    consumer_.add_provider(
        provider('b', "t4-box", true, 50, 1000, {{"Tesla T4", 15360}}, {llama8b_other_file, tiny}));
    consumer_.add_provider(provider('c', "cpu-box", true, 10, 200, {}, {tiny}));
    consumer_.add_provider(provider('d', "gone-box", false, 1, 1, {}, {tiny, embed}));
  }

  net::HttpResponse get(const std::string& target) {
    net::HttpRequest request;
    request.method = "GET";
    request.target = target;
    return route_request(consumer_, RouteOptions{}, request);
  }

  json::value get_json(const std::string& target) {
    auto r = get(target);
    EXPECT_EQ(r.status, 200) << target << " " << r.body;
    return json::parse(r.body);
  }

  std::vector<std::string> names(const std::string& query, const char* list = "models",
                                 const char* key = "name") {
    std::vector<std::string> out;
    const json::value body = get_json(std::string("/api/v1/") + list + query);
    for (const auto& m : body.at(list).as_array())
      out.emplace_back(m.at(key).as_string());
    return out;
  }

  testing::FakeConsumerNode consumer_;
};

using Names = std::vector<std::string>;

TEST_F(MarketTest, SummarisesEachModelAcrossItsAliveProviders) {
  json::value body = get_json("/api/v1/models");
  const auto& models = body.at("models").as_array();
  ASSERT_EQ(models.size(), 3u) << "the dead provider's offers do not count";
  const auto& llama = models[0].as_object();
  EXPECT_EQ(llama.at("name"), "llama-8b");
  EXPECT_EQ(llama.at("family"), "llama");
  EXPECT_EQ(llama.at("parameters").to_number<uint64_t>(), 8'000'000'000u);
  EXPECT_EQ(llama.at("quantization"), "q4_0");
  EXPECT_EQ(llama.at("context_length").to_number<int>(), 8192);
  EXPECT_EQ(llama.at("capabilities"), (json::array{"chat", "text-generation"}));
  EXPECT_EQ(llama.at("engines"), (json::array{"llama"}));
  EXPECT_EQ(llama.at("fingerprints"), (json::array{std::string(64, '1'), std::string(64, '2')}));
  EXPECT_EQ(llama.at("providers"), (json::array{std::string(64, 'a'), std::string(64, 'b')}));
  EXPECT_EQ(llama.at("provider_count").to_number<int>(), 2);
  EXPECT_EQ(llama.at("min_price_per_1k_output_msat").to_number<int>(), 1000);
  EXPECT_EQ(llama.at("price").at("per_1k_output_msat").at("min").to_number<int>(), 1000);
  EXPECT_EQ(llama.at("price").at("per_1k_output_msat").at("max").to_number<int>(), 3000);
  EXPECT_EQ(llama.at("price").at("per_1k_input_msat").at("min").to_number<int>(), 50);
  EXPECT_EQ(llama.at("price").at("per_1k_input_msat").at("max").to_number<int>(), 100);
  EXPECT_EQ(llama.at("hardware").at("gpus"), (json::array{"NVIDIA A100-SXM4-80GB", "Tesla T4"}));
  EXPECT_EQ(llama.at("hardware").at("providers_without_gpu").to_number<int>(), 0);
  EXPECT_FALSE(llama.contains("offers"));
  EXPECT_EQ(models[2].at("name"), "tinyllama");
  EXPECT_EQ(models[2].at("hardware").at("providers_without_gpu").to_number<int>(), 1);
}

TEST_F(MarketTest, FiltersApplyToOffers) {
  EXPECT_EQ(names("?capability=embeddings"), Names{"nomic-embed"});
  EXPECT_EQ(names("?type=Text-Generation"), (Names{"llama-8b", "tinyllama"}))
      << "type is capability, any case";
  EXPECT_EQ(names("?capability=chat&type=chat"), Names{"llama-8b"});
  EXPECT_EQ(names("?family=bert"), Names{"nomic-embed"});
  EXPECT_EQ(names("?engine=torch"), Names{"nomic-embed"});
  EXPECT_EQ(names("?quantization=Q8_0"), Names{"tinyllama"});
  EXPECT_EQ(names("?min_parameters=1000000000&max_parameters=2000000000"), Names{"tinyllama"});
  EXPECT_EQ(names("?min_context=4096"), Names{"llama-8b"});
  EXPECT_EQ(names("?q=LLAMA"), (Names{"llama-8b", "tinyllama"}));
  EXPECT_EQ(names("?q=nothing"), Names{});
  EXPECT_EQ(names("?gpu_type=NVIDIA_A100"), (Names{"llama-8b", "nomic-embed"}));
  EXPECT_EQ(names("?gpu_type=cpu"), Names{"tinyllama"});
  EXPECT_EQ(names("?gpu_type=A10"), Names{}) << "whole words, as a job's gpu_type";

  // Only the offers that pass are summarised: under 2000 msat, llama-8b is the T4 box's alone.
  json::value cheap = get_json("/api/v1/models?max_price_per_1k_output_msat=2000");
  const auto& models = cheap.at("models").as_array();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].at("name"), "llama-8b");
  EXPECT_EQ(models[0].at("provider_count").to_number<int>(), 1);
  EXPECT_EQ(models[0].at("price").at("per_1k_output_msat").at("max").to_number<int>(), 1000);
  EXPECT_EQ(models[0].at("hardware").at("gpus"), (json::array{"Tesla T4"}));
}

TEST_F(MarketTest, SortsAndLimits) {
  EXPECT_EQ(names("?sort=price"), (Names{"tinyllama", "llama-8b", "nomic-embed"}));
  EXPECT_EQ(names("?sort=parameters"), (Names{"nomic-embed", "tinyllama", "llama-8b"}));
  EXPECT_EQ(names("?sort=providers"), (Names{"llama-8b", "tinyllama", "nomic-embed"}));
  EXPECT_EQ(names("?sort=name&limit=2"), (Names{"llama-8b", "nomic-embed"}));
}

TEST_F(MarketTest, BadParametersAre400NamingThem) {
  for (const auto& [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"?colour=red", "colour"},
           {"?sort=cost", "sort"},
           {"?limit=0", "limit"},
           {"?limit=1001", "limit"},
           {"?min_parameters=-1", "min_parameters"},
           {"?max_parameters=lots", "max_parameters"},
           {"?min_parameters=9&max_parameters=8", "min_parameters"},
           {"?min_context=1.5", "min_context"},
           {"?max_price_per_1k_output_msat=x", "max_price_per_1k_output_msat"},
           {"?gpu_type=A100%3B", "gpu_type"},
           {"?capability=chat&type=embeddings", "type"},
           {"?q=" + std::string(129, 'x'), "q"},
       }) {
    auto r = get("/api/v1/models" + query);
    EXPECT_EQ(r.status, 400) << query;
    auto body = json::parse(r.body);
    EXPECT_EQ(body.at("error").at("field"), field.c_str()) << query << " -> " << r.body;
  }
}

TEST_F(MarketTest, OneModelWithEachProvidersOffer) {
  json::value body = get_json("/api/v1/models/llama-8b");
  EXPECT_EQ(body.at("name"), "llama-8b");
  const auto& offers = body.at("offers").as_array();
  ASSERT_EQ(offers.size(), 2u);
  EXPECT_EQ(offers[0].at("provider"), std::string(64, 'b').c_str()) << "cheapest first";
  EXPECT_EQ(offers[0].at("provider_name"), "t4-box");
  EXPECT_EQ(offers[0].at("sha256"), std::string(64, '2').c_str());
  EXPECT_EQ(offers[0].at("prices").at("per_1k_output_msat").to_number<int>(), 1000);
  EXPECT_EQ(offers[0].at("gpus").at(0).at("name"), "Tesla T4");
  EXPECT_EQ(offers[0].at("capacity").at("slots").to_number<int>(), 2);
  EXPECT_EQ(std::string(offers[0].at("npub").as_string()).substr(0, 5), "npub1");
  EXPECT_EQ(offers[1].at("prices").at("per_1k_output_msat").to_number<int>(), 3000);

  EXPECT_EQ(get("/api/v1/models/tinyllama").status, 200);
  EXPECT_EQ(get("/api/v1/models/no-such-model").status, 404);
  EXPECT_EQ(get("/api/v1/models/%zz").status, 400);
  EXPECT_EQ(get("/api/v1/models/" + std::string(129, 'x')).status, 400);
  EXPECT_EQ(get("/api/v1/models/tinyllama?x=1").status, 400);
  net::HttpRequest post{"POST", "/api/v1/models/tinyllama", {}, "", ""};
  auto refused = route_request(consumer_, RouteOptions{}, post);
  EXPECT_EQ(refused.status, 405);
}

TEST_F(MarketTest, ProvidersFilter) {
  EXPECT_EQ(names("", "providers"), (Names{"a100-box", "t4-box", "cpu-box", "gone-box"}));
  EXPECT_EQ(names("?alive=false", "providers"), Names{"gone-box"});
  EXPECT_EQ(names("?alive=true&model=tinyllama", "providers"), (Names{"t4-box", "cpu-box"}));
  EXPECT_EQ(names("?model=nomic-embed", "providers"), (Names{"a100-box", "gone-box"}));
  EXPECT_EQ(names("?gpu_type=tesla_t4", "providers"), Names{"t4-box"});
  EXPECT_EQ(names("?gpu_type=CPU", "providers"), (Names{"cpu-box", "gone-box"}));
  EXPECT_EQ(names("?engine=torch", "providers"), (Names{"a100-box", "gone-box"}))
      << "a model's engine counts";
  EXPECT_EQ(names("?engine=llama&alive=true", "providers"), (Names{"a100-box", "t4-box", "cpu-box"}));
  for (const auto& [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"?alive=yes", "alive"}, {"?gpu_type=%2A", "gpu_type"}, {"?limit=3", "limit"}}) {
    auto r = get("/api/v1/providers" + query);
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_EQ(json::parse(r.body).at("error").at("field"), field.c_str()) << query << " -> " << r.body;
  }
}

}  // namespace
}  // namespace infernet::api
