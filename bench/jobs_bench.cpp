// Jobs end to end: a consumer (in this process, the same ConsumerNode `infernet node --consumer` runs)
// submits jobs for the fake engine to providers running as separate `infernet node --provider` processes,
// through one relay process (bench/run-jobs.sh starts them). Reports, as one JSON object on stdout:
//   jobs_per_second    completed jobs / (last completion - first submit), `window` jobs in flight at most;
//   dispatch p50/p99   from submit() to the job's "running" state (the provider has started it), measured
//                      one job at a time so that queueing behind other jobs is not counted;
//   total p50/p99      from submit() to "completed", the same way.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "consumer/consumer.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "net/io_pool.hpp"
#include "relay/relay_pool.hpp"

namespace {

using namespace infernet;
using SteadyClock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

std::string state_of(const consumer::JobEvent& e) {
  if (e.type != "state") return "";
  boost::system::error_code ec;
  auto v = boost::json::parse(e.data, ec);
  if (ec || !v.is_object()) return "";
  const auto* s = v.as_object().if_contains("state");
  return s != nullptr && s->is_string() ? std::string(s->as_string()) : "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: jobs_bench RELAY_URL [JOBS] [WINDOW] [PROVIDERS]\n");
    return 2;
  }
  const std::string url = argv[1];
  const size_t jobs = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2000;
  const size_t window = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 200;
  const size_t expected_providers = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 10;
  constexpr size_t kSubmitters = 4;

  // Logs go to stderr; stdout carries only the result.
  (void)init_logging("warn");
  auto dir = std::filesystem::temp_directory_path() / ("infernet-jobs-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  net::IoPool io(2);
  io.start();
  auto keys = nostr::Keypair::generate();
  relay::RelayPoolOptions pool_options;
  pool_options.relays = {url};
  relay::RelayPool pool(io.io_context(), pool_options, keys);
  if (!pool.start()) return 1;
  SystemClock clock;
  consumer::ConsumerOptions options;
  options.database = (dir / "consumer.db").string();
  options.heartbeat = std::chrono::seconds(1);
  auto opened = consumer::ConsumerNode::open(options, pool, keys, clock);
  if (!opened) {
    std::fprintf(stderr, "jobs_bench: %s\n", opened.error().to_string().c_str());
    return 1;
  }
  auto& node = **opened;
  if (auto st = node.start(); !st) {
    std::fprintf(stderr, "jobs_bench: %s\n", st.error().to_string().c_str());
    return 1;
  }
  auto wait_start = SteadyClock::now();
  for (;;) {
    auto providers = node.providers();
    size_t alive = std::count_if(providers.begin(), providers.end(), [](const auto& p) { return p.alive; });
    if (alive >= expected_providers) break;
    if (SteadyClock::now() - wait_start > std::chrono::seconds(30)) {
      std::fprintf(stderr, "jobs_bench: only %zu of %zu providers announced\n", alive, expected_providers);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  struct Phase {
    size_t completed = 0, failed = 0;
    double seconds = 0;
    std::vector<double> dispatch_ms, total_ms;
  };
  // Submits `count` jobs from `submitters` threads, as concurrent API clients would (submit() returns once
  // the job is stored; on two cores one thread measured no differently, the CPU being the limit), keeping at
  // most `window` unfinished, and waits for all of them.
  auto run_phase = [&node](size_t count, size_t window, size_t submitters, const std::string& tag) -> Phase {
    // Shared with the watch callbacks, which may outlive this call by a moment.
    struct Shared {
      std::mutex mu;
      std::condition_variable cv;
      size_t in_flight = 0, finished = 0;
      Phase phase;
      SteadyClock::time_point last_done;
    };
    auto sh = std::make_shared<Shared>();
    std::mutex handles_mu;
    std::vector<uint64_t> handles;
    std::atomic<size_t> next{0};
    const auto start = SteadyClock::now();
    auto submit_loop = [&] {
      for (size_t i = next++; i < count; i = next++) {
        {
          std::unique_lock lock(sh->mu);
          sh->cv.wait(lock, [&] { return sh->in_flight < window; });
          ++sh->in_flight;
        }
        consumer::JobSpec spec;
        spec.model = "fake-echo";
        spec.prompt = tag + " job " + std::to_string(i);
        spec.max_tokens = 4;
        const auto submitted = SteadyClock::now();
        auto job = node.submit(spec);
        if (!job) {
          std::fprintf(stderr, "jobs_bench: submit: %s\n", job.error().to_string().c_str());
          std::exit(1);
        }
        auto ran = std::make_shared<bool>(false);
        auto watched = node.watch(job->id, 0, [sh, submitted, ran](const consumer::JobEvent& e) {
          std::string state = state_of(e);
          if (state.empty()) return;
          auto now = SteadyClock::now();
          std::lock_guard lock(sh->mu);
          if (state == "running" && !*ran) {
            *ran = true;
            sh->phase.dispatch_ms.push_back(
                std::chrono::duration<double, std::milli>(now - submitted).count());
          }
          auto parsed = consumer::parse_job_state(state);
          if (!parsed || !consumer::is_final(*parsed)) return;
          if (*parsed == consumer::JobState::kCompleted) {
            sh->phase.total_ms.push_back(std::chrono::duration<double, std::milli>(now - submitted).count());
            ++sh->phase.completed;
          } else {
            ++sh->phase.failed;
          }
          ++sh->finished;
          --sh->in_flight;
          sh->last_done = now;
          sh->cv.notify_all();
        });
        if (watched) {
          std::lock_guard lock(handles_mu);
          handles.push_back(*watched);
        }
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 0; t < submitters; ++t)
      threads.emplace_back(submit_loop);
    for (auto& t : threads)
      t.join();
    {
      std::unique_lock lock(sh->mu);
      sh->cv.wait_for(lock, std::chrono::seconds(300), [&] { return sh->finished == count; });
    }
    for (auto h : handles)
      node.unwatch(h);
    std::lock_guard lock(sh->mu);
    sh->phase.seconds = std::chrono::duration<double>(sh->last_done - start).count();
    return sh->phase;
  };

  // Latency first, one job at a time, so queueing behind other jobs does not count; then throughput.
  Phase latency = run_phase(std::min<size_t>(jobs, 200), 1, 1, "latency");
  Phase load = run_phase(jobs, window, kSubmitters, "load");
  node.stop();
  pool.stop();
  io.stop();
  std::filesystem::remove_all(dir);

  boost::json::object out{
      {"jobs", jobs},
      {"completed", load.completed},
      {"failed", load.failed + latency.failed},
      {"window", window},
      {"providers", expected_providers},
      {"jobs_per_second", load.seconds > 0 ? static_cast<double>(load.completed) / load.seconds : 0.0},
      {"load_total_p50_ms", percentile(load.total_ms, 0.5)},
      {"load_total_p99_ms", percentile(load.total_ms, 0.99)},
      {"dispatch_p50_ms", percentile(latency.dispatch_ms, 0.5)},
      {"dispatch_p99_ms", percentile(latency.dispatch_ms, 0.99)},
      {"total_p50_ms", percentile(latency.total_ms, 0.5)},
      {"total_p99_ms", percentile(latency.total_ms, 0.99)},
  };
  std::printf("%s\n", boost::json::serialize(out).c_str());
  return load.completed == jobs && load.failed == 0 && latency.failed == 0 ? 0 : 1;
}
