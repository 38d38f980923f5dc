// Matching and dispatch with 200 providers announced on a real relay. bench/run-market.sh starts the relay
// and a few `infernet node --provider` processes (the fake engine, so chosen providers really accept); this
// program announces the rest from its own keys (announcements only: they price themselves above the real
// ones, as a market's idle capacity would, so jobs go where they are answered) and runs a consumer in
// process, the same ConsumerNode `infernet node --consumer` runs. Reports, as one JSON object on stdout:
//   pure_matches_per_second      market::choose over every announcement the consumer holds;
//   consumer_matches_per_second  ConsumerNode::estimate(): validation, the lock, the directory, the market;
//   dispatch p50/p99             submit() -> the job request published (the "assigned" state, handed to
//                                watchers after the request went to the relay), one job at a time.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "consumer/consumer.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "market/market.hpp"
#include "net/io_pool.hpp"
#include "protocol/protocol.hpp"
#include "relay/relay_pool.hpp"

namespace {

using namespace infernet;
using SteadyClock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

protocol::Announcement announcement(size_t i) {
  protocol::Announcement a;
  a.name = "load-" + std::to_string(i);
  a.hardware = {"bench cpu", 8, 32768, {}};
  if (i % 3 == 0) a.hardware.gpus = {{"NVIDIA A100-SXM4-80GB", 81920}};
  a.engines = {"fake"};
  a.models = {{"fake-echo", "", "fake", 0, "", 4096, "fake", {"text-generation"}, ""}};
  // Above the real providers' defaults (1000 / 2000 per 1k), each a little different.
  a.prices.per_1k_input_msat = 5000 + i * 10;
  a.prices.per_1k_output_msat = 10000 + i * 20;
  a.prices.priority_percent = {{"low", 80}, {"normal", 100}, {"high", 150}};
  a.capacity = {8, 64, static_cast<uint32_t>(i % 8), static_cast<uint32_t>(i % 5)};
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: market_bench RELAY_URL [REAL_PROVIDERS] [TOTAL_PROVIDERS] [DISPATCHES]\n");
    return 2;
  }
  const std::string url = argv[1];
  const size_t real = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 3;
  const size_t total = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 200;
  const size_t dispatches = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 300;
  if (total < real) return 2;

  (void)init_logging("warn");
  auto dir = std::filesystem::temp_directory_path() / ("infernet-market-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  net::IoPool io(2);
  io.start();
  auto keys = nostr::Keypair::generate();
  relay::RelayPoolOptions pool_options;
  pool_options.relays = {url};
  relay::RelayPool pool(io.io_context(), pool_options, keys);
  if (!pool.start()) return 1;
  SystemClock clock;

  // The load generator: total - real announcements, each from its own key.
  std::vector<protocol::ProviderAnnouncement> announced;
  for (size_t i = 0; i < total - real; ++i) {
    auto provider = nostr::Keypair::generate();
    auto event = protocol::make_announcement(announcement(i), provider, clock.now_unix(), 600);
    if (!event) {
      std::fprintf(stderr, "market_bench: %s\n", event.error().to_string().c_str());
      return 1;
    }
    auto outcomes = pool.publish(*event).get();
    if (outcomes.empty() || !outcomes.front().accepted) {
      std::fprintf(stderr, "market_bench: the relay refused an announcement\n");
      return 1;
    }
  }

  consumer::ConsumerOptions options;
  options.database = (dir / "consumer.db").string();
  options.heartbeat = std::chrono::seconds(60);  // the load generator's announcements are not refreshed
  // Matching only: the token count an estimate asks of a provider is a network round trip (measured on its
  // own by tests), and the load generator's announced providers do not answer one.
  options.token_count_timeout = std::chrono::milliseconds(0);
  auto opened = consumer::ConsumerNode::open(options, pool, keys, clock);
  if (!opened) {
    std::fprintf(stderr, "market_bench: %s\n", opened.error().to_string().c_str());
    return 1;
  }
  auto& node = **opened;
  if (auto st = node.start(); !st) {
    std::fprintf(stderr, "market_bench: %s\n", st.error().to_string().c_str());
    return 1;
  }
  const auto wait_start = SteadyClock::now();
  std::vector<consumer::ProviderRecord> records;
  for (;;) {
    records = node.providers();
    size_t alive = std::count_if(records.begin(), records.end(), [](const auto& p) { return p.alive; });
    if (alive >= total) break;
    if (SteadyClock::now() - wait_start > std::chrono::seconds(30)) {
      std::fprintf(stderr, "market_bench: only %zu of %zu providers announced\n", alive, total);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // Pure matching: the market over every announcement, as the directory hands them to it.
  market::JobNeeds needs;
  needs.model = "fake-echo";
  needs.input_tokens = 64;
  needs.max_tokens = 64;
  needs.max_cost_msat = 1'000'000;
  std::vector<market::Candidate> candidates;
  for (const auto& r : records)
    candidates.push_back({r.pubkey, &r.announcement, r.announcement.capacity.busy, {}});
  size_t chosen = 0;
  const auto pure_start = SteadyClock::now();
  size_t pure_rounds = 0;
  while (SteadyClock::now() - pure_start < std::chrono::seconds(2)) {
    needs.strategy = static_cast<market::Strategy>(pure_rounds % 3);
    chosen += market::choose(needs, candidates).chosen ? 1 : 0;
    ++pure_rounds;
  }
  const double pure_seconds = std::chrono::duration<double>(SteadyClock::now() - pure_start).count();

  // The consumer's matching path: estimate() runs validation, the directory and the market under the lock.
  consumer::JobSpec spec;
  spec.model = "fake-echo";
  spec.prompt = "how many providers can a consumer weigh in a millisecond?";
  spec.max_tokens = 64;
  spec.max_cost_msat = 1'000'000;
  const auto node_start = SteadyClock::now();
  size_t node_rounds = 0;
  while (SteadyClock::now() - node_start < std::chrono::seconds(2)) {
    auto e = node.estimate(spec);
    if (!e || !e->chosen) {
      std::fprintf(stderr, "market_bench: estimate chose nothing\n");
      return 1;
    }
    ++node_rounds;
  }
  const double node_seconds = std::chrono::duration<double>(SteadyClock::now() - node_start).count();

  // Dispatch latency, one job at a time: submit() until the request is published.
  std::vector<double> dispatch_ms;
  std::vector<double> completed_ms;
  size_t completed = 0;
  for (size_t i = 0; i < dispatches; ++i) {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      bool assigned = false, finished = false;
      SteadyClock::time_point assigned_at, finished_at;
      std::string final_state;
    };
    auto w = std::make_shared<Wait>();
    spec.prompt = "dispatch " + std::to_string(i);
    spec.max_tokens = 4;
    const auto submitted = SteadyClock::now();
    auto job = node.submit(spec);
    if (!job) {
      std::fprintf(stderr, "market_bench: submit: %s\n", job.error().to_string().c_str());
      return 1;
    }
    auto handle = node.watch(job->id, 0, [w](const consumer::JobEvent& e) {
      if (e.type != "state") return;
      const auto now = SteadyClock::now();
      auto v = boost::json::parse(e.data);
      const std::string state(v.as_object().at("state").as_string());
      std::lock_guard lock(w->mu);
      if (state == "assigned" && !w->assigned) {
        w->assigned = true;
        w->assigned_at = now;
      }
      auto parsed = consumer::parse_job_state(state);
      if (parsed && consumer::is_final(*parsed)) {
        w->finished = true;
        w->finished_at = now;
        w->final_state = state;
      }
      w->cv.notify_all();
    });
    std::unique_lock lock(w->mu);
    w->cv.wait_for(lock, std::chrono::seconds(20), [&] { return w->finished; });
    if (handle) node.unwatch(*handle);
    if (w->assigned)
      dispatch_ms.push_back(std::chrono::duration<double, std::milli>(w->assigned_at - submitted).count());
    if (w->final_state == "completed") {
      ++completed;
      completed_ms.push_back(std::chrono::duration<double, std::milli>(w->finished_at - submitted).count());
    }
  }
  node.stop();
  pool.stop();
  io.stop();
  std::filesystem::remove_all(dir);

  const double pure_rate = static_cast<double>(pure_rounds) / pure_seconds;
  const double node_rate = static_cast<double>(node_rounds) / node_seconds;
  const double p50 = percentile(dispatch_ms, 0.5);
  boost::json::object out{{"providers", total},
                          {"real_providers", real},
                          {"pure_matches_per_second", pure_rate},
                          {"consumer_matches_per_second", node_rate},
                          {"dispatches", dispatches},
                          {"dispatched", dispatch_ms.size()},
                          {"completed", completed},
                          {"dispatch_p50_ms", p50},
                          {"dispatch_p99_ms", percentile(dispatch_ms, 0.99)},
                          {"completed_p50_ms", percentile(completed_ms, 0.5)},
                          {"goal_matches_per_second", 2000},
                          {"goal_dispatch_p50_ms", 5},
                          {"matches_vs_goal", node_rate / 2000.0},
                          {"dispatch_p50_vs_goal", p50 > 0 ? 5.0 / p50 : 0.0}};
  std::printf("%s\n", boost::json::serialize(out).c_str());
  return chosen == pure_rounds && completed > 0 ? 0 : 1;
}
