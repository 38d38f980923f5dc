// Getting jobs to providers: choosing one (directly, by matching announcements, or by open quotes), sending
// the request, ending attempts, reassigning, and the timers that notice a provider gone quiet.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>

#include "consumer/internal/event_data.hpp"
#include "consumer/internal/job_spec.hpp"
#include "consumer/internal/node_core.hpp"
#include "core/encoding.hpp"

namespace infernet::consumer::internal {
namespace {

// Waiting jobs looked at per pass, so one announcement cannot hold the lock for long.
constexpr size_t kMaxDispatchPerPass = 1000;
// A streaming attempt is stalled once it has been quiet this many times its longest gap between progress
// events so far, but never sooner than kMinStreamStall: a provider that streamed every 50 ms and then went
// silent for a second and a half has died, and waiting the whole stall timeout would hold the client's
// stream for that long.
constexpr int kStreamStallFactor = 10;
constexpr auto kMinStreamStall = std::chrono::milliseconds(1500);
constexpr auto kPruneInterval = std::chrono::minutes(10);

std::string short_key(const std::string& hex) {
  return hex.substr(0, 12);
}

}  // namespace

void NodeCore::dispatch(ActiveJob& job, PendingWrite& w) {
  const JobSpec& spec = job.record.spec;
  if (!started_) {
    wait_for_provider(job, w, "");
    return;
  }
  if (!spec.provider.empty()) {
    send_to(job, w, spec.provider, "");
    return;
  }
  // Reserved capacity comes first: it was arranged for exactly this.
  if (auto reserved = reserved_provider(job)) {
    note(job, w, "sent to reserved capacity", *reserved);
    send_to(job, w, *reserved, "");
    return;
  }
  if (spec.open_quotes) {
    if (job.next_quote_round && SteadyClock::now() < *job.next_quote_round) {
      wait_for_provider(job, w, "");
      return;
    }
    start_quote_round(job, w);
    return;
  }
  // Providers dropped mid-job are passed over like tried ones until they announce again.
  std::set<std::string> excluded;
  const std::set<std::string>* tried = &job.tried;
  // So are those resting after a "busy" answer, until its retry-after ends.
  const auto now = SteadyClock::now();
  const bool resting =
      std::any_of(resting_.begin(), resting_.end(), [&](const auto& r) { return r.second > now; });
  if (!suspects_.empty() || resting) {
    excluded = job.tried;
    excluded.insert(suspects_.begin(), suspects_.end());
    for (const auto& [provider, until] : resting_) {
      if (until > now) excluded.insert(provider);
    }
    tried = &excluded;
  }
  auto match = match_now(spec, job.input_tokens, tried);
  for (const auto& r : match.rejected) {
    const bool untried = job.tried.count(r.provider) == 0;
    auto rest = resting_.find(r.provider);
    std::string reason = r.reason;
    if (untried && suspects_.count(r.provider) != 0) {
      reason = "dropped from a job; waiting for its next heartbeat";
    } else if (untried && rest != resting_.end() && rest->second > now) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(rest->second - now).count();
      reason = "busy: asked to retry after " + std::to_string((ms + 999) / 1000) + " s";
    }
    note(job, w, "passed over: " + reason, r.provider, r.name);
  }
  if (match.provider) {
    send_to(job, w, *match.provider, "");
    return;
  }
  wait_for_provider(job, w,
                    match.rejected.empty() ? "no alive provider announces model " + spec.model
                                           : "no provider of " + spec.model + " can take it now");
}

void NodeCore::wait_for_provider(ActiveJob& job, PendingWrite& w, const std::string& why) {
  if (!job.waiting) {
    job.waiting = WaitingKey{priority_rank(job.record.spec.priority), job.record.created_at, job.record.id};
    waiting_.insert(*job.waiting);
  }
  if (job.record.state != JobState::kSubmitted) {
    set_state(job, w, JobState::kSubmitted, why.empty() ? "waiting for a provider" : "waiting: " + why);
  } else if (!why.empty()) {
    note(job, w, "waiting: " + why);
  }
}

void NodeCore::send_to(ActiveJob& job, PendingWrite& w, const std::string& provider,
                       const std::string& quote_id) {
  auto key = nostr::PublicKey::from_hex(provider);
  if (!key) {
    finish(job, w, JobState::kFailed, "provider " + provider + ": not a valid key");
    return;
  }
  const JobSpec& spec = job.record.spec;
  protocol::JobRequest request;
  request.job_id = job.record.id;
  request.attempt = job.record.attempt + 1;
  request.model = spec.model;
  request.prompt = spec.prompt;
  request.messages = spec.messages;
  request.max_tokens = spec.max_tokens;
  request.sampling = spec.sampling;
  request.deterministic = spec.deterministic;
  request.max_cost_msat = spec.max_cost_msat;
  request.priority = spec.priority;
  request.deadline = spec.deadline;
  request.start_by = spec.start_by;
  request.quote_id = quote_id;
  request.resume_text = job.record.output;
  auto event = protocol::seal(request, keys_, *key, clock_.now_unix());
  if (!event) {
    finish(job, w, JobState::kFailed, "cannot send the request: " + event.error().message);
    return;
  }
  if (job.waiting) {
    waiting_.erase(*job.waiting);
    job.waiting.reset();
  }
  job.tried.insert(provider);
  job.record.attempt = request.attempt;
  job.record.provider = provider;
  w.change.attempt = request.attempt;
  w.change.provider = provider;
  job.attempt_open = true;
  job.attempt_started_at = now_ms();
  job.request_event_id = hex_encode(event->id);
  job.resume_bytes = job.record.output.size();
  job.accepted = false;
  job.first_answer_at = 0;
  job.first_token_at = 0;
  job.queue_position = 0;
  job.progress_seq = 0;
  job.early_chunks.clear();
  job.timeout_at = SteadyClock::now() + options_.accept_timeout;
  job.last_progress_at.reset();
  job.longest_gap = {};
  job.attempt_tokens = 0;
  ++in_flight_[provider];
  set_state(job, w, JobState::kAssigned);
  save_attempt(job, w, "assigned");
  w.publish.push_back(std::move(*event));
}

void NodeCore::end_attempt(ActiveJob& job, PendingWrite& w, const std::string& attempt_state,
                           const std::string& reason, bool cancel_at_provider) {
  if (!job.attempt_open) return;
  job.attempt_open = false;
  record_outcome(job, attempt_state, job.record.usage.output_tokens);
  save_attempt(job, w, attempt_state, reason);
  const std::string& provider = job.record.provider;
  if (auto it = in_flight_.find(provider); it != in_flight_.end()) {
    if (it->second <= 1) {
      in_flight_.erase(it);
    } else {
      --it->second;
    }
  }
  capacity_freed_ = true;
  job.timeout_at.reset();
  // Its delivered tokens stay delivered: the next attempt continues after them.
  job.earlier_tokens += job.attempt_tokens;
  job.attempt_tokens = 0;
  job.accepted = false;
  job.early_chunks.clear();
  if (!cancel_at_provider) return;
  // Tell the provider to stop, so it does not spend its capacity on work nobody will take.
  auto key = nostr::PublicKey::from_hex(provider);
  if (!key) return;
  protocol::JobCancel cancel{job.record.id, job.record.attempt, reason.substr(0, protocol::kMaxTextBytes)};
  if (auto event = protocol::seal(cancel, keys_, *key, clock_.now_unix())) {
    w.publish.push_back(std::move(*event));
  } else {
    spdlog::warn("consumer: job {}: cannot seal the cancel: {}", job.record.id, event.error().message);
  }
}

void NodeCore::reassign(ActiveJob& job, PendingWrite& w, const std::string& attempt_state,
                        const std::string& reason, bool cancel_at_provider) {
  const std::string provider = job.record.provider;
  end_attempt(job, w, attempt_state, reason, cancel_at_provider);
  const auto* known = directory_.find(provider);
  note(job, w, reason, provider, known != nullptr ? known->announcement.name : "");
  if (!job.record.spec.provider.empty()) {
    finish(job, w, JobState::kFailed, "provider " + short_key(provider) + "...: " + reason);
    return;
  }
  if (job.record.attempt >= options_.max_attempts) {
    finish(job, w, JobState::kFailed,
           "gave up after " + std::to_string(job.record.attempt) + " attempts; the last: " + reason);
    return;
  }
  dispatch(job, w);
}

void NodeCore::finish(ActiveJob& job, PendingWrite& w, JobState state, const std::string& reason) {
  end_attempt(job, w, to_string(state), reason, false);
  if (!reason.empty()) {
    job.record.error = reason;
    w.change.error = reason;
  }
  set_state(job, w, state, reason);
  w.finished = true;
}

void NodeCore::start_quote_round(ActiveJob& job, PendingWrite& w) {
  const JobSpec& spec = job.record.spec;
  if (!job.quote_id.empty()) quotes_.erase(job.quote_id);
  job.quote_id = job.record.id + "-q" + std::to_string(++job.quote_rounds);
  protocol::QuoteRequest q;
  q.quote_id = job.quote_id;
  q.model = spec.model;
  q.input_tokens = job.input_words;
  q.max_tokens = spec.max_tokens;
  q.max_cost_msat = spec.max_cost_msat;
  q.priority = spec.priority;
  q.deadline = spec.deadline;
  auto event = protocol::make_quote_request(q, keys_, clock_.now_unix());
  if (!event) {
    finish(job, w, JobState::kFailed, "cannot ask for offers: " + event.error().message);
    return;
  }
  if (job.waiting) {
    waiting_.erase(*job.waiting);
    job.waiting.reset();
  }
  quotes_[job.quote_id] = job.record.id;
  job.offers.clear();
  job.quote_closes_at = SteadyClock::now() + options_.quote_window;
  set_state(job, w, JobState::kMatched, "collecting offers");
  w.publish.push_back(std::move(*event));
}

void NodeCore::close_quote_round(ActiveJob& job, PendingWrite& w) {
  quotes_.erase(job.quote_id);
  job.quote_closes_at.reset();
  const int64_t now = clock_.now_unix();
  const uint64_t cap = job.record.spec.max_cost_msat;
  std::optional<std::tuple<uint64_t, uint32_t, std::string>> best;  // (price, eta, provider)
  for (const auto& [provider, offer] : job.offers) {
    std::string problem;
    if (job.tried.count(provider) != 0) {
      problem = "already tried for this job";
    } else if (offer.expires_at != 0 && offer.expires_at <= now) {
      problem = "the offer expired";
    } else if (cap != 0 && offer.price_msat > cap) {
      problem = "offered " + std::to_string(offer.price_msat) + " msat, more than max_cost_msat " +
                std::to_string(cap);
    } else if (auto gone = directory_.liveness_problem(provider, now); !gone.empty()) {
      problem = "not alive: " + gone;
    } else if (auto unmet = market::requirement_problem(directory_.find(provider)->announcement,
                                                        needs_of(job.record.spec, job.input_tokens), nullptr);
               !unmet.empty()) {
      // An offer is the provider's estimate; what it could charge at its announced prices must fit the cap
      // too.
      problem = unmet;
    }
    if (!problem.empty()) {
      note(job, w, "offer passed over: " + problem, provider);
      continue;
    }
    auto candidate = std::make_tuple(offer.price_msat, offer.eta_ms, provider);
    if (!best || candidate < *best) best = std::move(candidate);
  }
  if (best) {
    note(job, w, "took the cheapest offer: " + std::to_string(std::get<0>(*best)) + " msat",
         std::get<2>(*best));
    send_to(job, w, std::get<2>(*best), job.quote_id);
    return;
  }
  // Try again later rather than flooding relays with quote requests nobody answers.
  job.next_quote_round = SteadyClock::now() + std::max<std::chrono::milliseconds>(options_.quote_window * 4,
                                                                                  std::chrono::seconds(1));
  wait_for_provider(job, w, job.offers.empty() ? "no offers within the quote window" : "no acceptable offer");
}

void NodeCore::dispatch_waiting() {
  capacity_freed_ = false;
  if (!started_ || waiting_.empty()) return;
  std::vector<WaitingKey> line;
  for (const auto& key : waiting_) {
    if (line.size() >= kMaxDispatchPerPass) break;
    line.push_back(key);
  }
  for (const auto& key : line) {
    auto it = jobs_.find(std::get<2>(key));
    if (it == jobs_.end()) {
      waiting_.erase(key);
      continue;
    }
    PendingWrite w;
    dispatch(it->second, w);
    commit(it->second, std::move(w));
  }
}

SteadyClock::duration NodeCore::stall_limit(const ActiveJob& job) const {
  // Never longer than two heartbeats: a stalled provider is found as soon as a silent one would be.
  SteadyClock::duration limit =
      std::min<SteadyClock::duration>(options_.stall_timeout, 2 * options_.heartbeat);
  if (job.last_progress_at && job.longest_gap > SteadyClock::duration::zero()) {
    limit = std::min(limit,
                     std::max<SteadyClock::duration>(kMinStreamStall, kStreamStallFactor * job.longest_gap));
  }
  return limit;
}

std::string NodeCore::heartbeat_problem(const std::string& provider, int64_t unix_now) const {
  if (auto problem = directory_.liveness_problem(provider, unix_now); !problem.empty()) return problem;
  // A provider heartbeats every node.heartbeat_seconds; one and a half intervals without one means it
  // missed a beat, and finding it then keeps detection within two intervals of its last sign of life.
  const auto* a = directory_.find(provider);
  if (a == nullptr) return "";
  const int64_t h = options_.heartbeat.count();
  int64_t last = a->created_at;
  if (auto heard = heard_at_.find(provider); heard != heard_at_.end()) last = std::max(last, heard->second);
  const int64_t silent = unix_now - last;
  if (silent > h + h / 2) {
    return "no heartbeat for " + std::to_string(silent) + " s (more than 1.5 heartbeats of " +
           std::to_string(h) + " s)";
  }
  return "";
}

std::chrono::milliseconds NodeCore::tick() const {
  auto shortest = std::min({options_.accept_timeout, options_.stall_timeout, options_.quote_window});
  return std::clamp<std::chrono::milliseconds>(shortest / 5, std::chrono::milliseconds(5),
                                               std::chrono::milliseconds(100));
}

void NodeCore::timer_loop() {
  auto last_prune = SteadyClock::now();
  std::unique_lock lock(timer_mu_);
  while (!timer_stop_) {
    timer_cv_.wait_for(lock, tick(), [this] { return timer_stop_; });
    if (timer_stop_) break;
    lock.unlock();
    {
      std::lock_guard node_lock(mu_);
      check_timers();
    }
    if (SteadyClock::now() - last_prune > kPruneInterval) {
      prune_seen_events();
      last_prune = SteadyClock::now();
    }
    lock.lock();
  }
}

void NodeCore::check_timers() {
  if (!started_) return;
  enum class Action { kExpire, kCloseQuotes, kTimeout, kProviderGone };
  const auto now = SteadyClock::now();
  const int64_t unix_now = clock_.now_unix();
  std::vector<std::tuple<std::string, Action, std::string>> due;
  for (auto& [id, job] : jobs_) {
    const JobState s = job.record.state;
    const bool with_provider = s == JobState::kAssigned || s == JobState::kRunning;
    const bool started = s == JobState::kRunning || (s == JobState::kAssigned && job.accepted);
    if (job.record.spec.deadline != 0 && unix_now >= job.record.spec.deadline) {
      due.emplace_back(id, Action::kExpire, "");
    } else if (job.record.spec.start_by != 0 && unix_now >= job.record.spec.start_by && !started) {
      due.emplace_back(id, Action::kExpire, "start_by");
    } else if (job.quote_closes_at && now >= *job.quote_closes_at) {
      due.emplace_back(id, Action::kCloseQuotes, "");
    } else if (with_provider && job.timeout_at && now >= *job.timeout_at) {
      due.emplace_back(id, Action::kTimeout, "");
    } else if (with_provider && announcements_loaded_ && directory_.known(job.record.provider)) {
      if (auto problem = heartbeat_problem(job.record.provider, unix_now); !problem.empty()) {
        due.emplace_back(id, Action::kProviderGone, std::move(problem));
      }
    }
  }
  for (const auto& [id, action, detail] : due) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    ActiveJob& job = it->second;
    PendingWrite w;
    switch (action) {
      case Action::kExpire: {
        if (detail == "start_by") {
          // No provider accepted it in time: it will not start by start_by, so it never waits past it.
          end_attempt(job, w, "expired", "the job's start-by time passed", true);
          finish(job, w, JobState::kExpired,
                 "start_by passed before a provider accepted the job" +
                     (job.tried.empty() ? std::string(" (no provider took it)")
                                        : " (" + std::to_string(job.tried.size()) + " tried)"));
          break;
        }
        const bool had_provider = job.attempt_open;
        end_attempt(job, w, "expired", "the job's deadline passed", true);
        finish(job, w, JobState::kExpired,
               had_provider ? "deadline passed before the job finished"
                            : "deadline passed before a provider took the job");
        break;
      }
      case Action::kCloseQuotes:
        close_quote_round(job, w);
        break;
      case Action::kTimeout: {
        const bool accepted = job.accepted || job.record.state == JobState::kRunning;
        const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
            accepted ? stall_limit(job) : SteadyClock::duration(options_.accept_timeout));
        const std::string reason = accepted
                                       ? "no progress within " + std::to_string(limit.count()) + " ms"
                                       : "did not accept within " + std::to_string(limit.count()) + " ms";
        if (accepted) suspects_.insert(job.record.provider);
        reassign(job, w, "timed-out", reason, true);
        break;
      }
      case Action::kProviderGone:
        suspects_.insert(job.record.provider);
        reassign(job, w, "dropped", "the provider stopped heartbeating: " + detail, true);
        break;
    }
    commit(job, std::move(w));
  }
  // A provider's retry-after has passed: the jobs waiting for it may go now.
  for (auto it = resting_.begin(); it != resting_.end();) {
    if (it->second <= now) {
      it = resting_.erase(it);
      capacity_freed_ = true;
    } else {
      ++it;
    }
  }
  if (capacity_freed_) dispatch_waiting();
}

}  // namespace infernet::consumer::internal
