// What the consumer does with what relays bring: provider announcements, and job messages addressed to it.
//
// A job message is acted on only after protocol::open() verified, decrypted and validated it, and after the
// checks against the job: not seen before (replay), a job we are following, sent by that job's current
// provider for its current attempt (else misaddressed or stale), and a transition the job's state allows.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <variant>

#include "consumer/internal/event_data.hpp"
#include "consumer/internal/node_core.hpp"
#include "core/encoding.hpp"

namespace infernet::consumer::internal {
namespace {

// Progress chunks held while an earlier one is missing (relays may reorder the ephemeral stream).
constexpr size_t kMaxEarlyChunks = 256;
// Offers kept per round of quotes.
constexpr size_t kMaxOffers = 64;
// An accepted job waiting in a provider's queue gets this many stall timeouts per job ahead of it, at most.
constexpr uint32_t kMaxQueueAllowance = 100;
// The longest a "busy" provider's retry-after keeps jobs from it (a provider's own bound is 300 s).
constexpr uint32_t kMaxRetryAfter = 600;

// The final output. A resumed attempt was sent the output delivered so far as resume_text, and its provider
// continues after it: its progress and its result's output are the continuation only.
std::string complete_output(std::string_view delivered_before, std::string_view result) {
  std::string out;
  out.reserve(delivered_before.size() + result.size());
  out.append(delivered_before);
  out.append(result);
  return out;
}

}  // namespace

void NodeCore::on_announcement(const nostr::Event& event) {
  auto a = protocol::parse_announcement(event);
  if (!a) {
    spdlog::debug("consumer: ignored announcement {}: {}", hex_encode(event.id), a.error().message);
    return;
  }
  const std::string key = a->provider.hex();
  std::lock_guard lock(mu_);
  if (!started_) return;
  auto flying = in_flight_.find(key);
  if (!directory_.update(*a, flying == in_flight_.end() ? 0 : flying->second)) return;
  heard_at_[key] = clock_.now_unix();
  suspects_.erase(key);
  if (auto st = store_->save_provider(
          {key, a->announcement.name, nostr::to_json(event), a->created_at, a->expires_at});
      !st) {
    spdlog::warn("consumer: announcement of {} not stored: {}", key, st.error().message);
  }
  dispatch_waiting();
}

void NodeCore::on_announcements_loaded() {
  std::lock_guard lock(mu_);
  if (!started_) return;
  announcements_loaded_ = true;
  dispatch_waiting();
}

void NodeCore::on_job_message(const nostr::Event& event) {
  const std::string id = hex_encode(event.id);
  {
    std::lock_guard lock(mu_);
    if (!started_) return;
    if (seen_.contains(id)) {
      spdlog::debug("consumer: event {} was handled before; replay ignored", id);
      return;
    }
  }
  // The relay pool delivers only events whose id and signature it has verified.
  auto opened = protocol::open(event, keys_, /*signature_verified=*/true);
  if (!opened) {
    spdlog::info("consumer: dropped event {} from {}: {}", id, hex_encode(event.pubkey),
                 opened.error().message);
    return;
  }
  std::lock_guard lock(mu_);
  if (!started_) return;
  if (seen_.contains(id)) {
    spdlog::debug("consumer: event {} was handled before; replay ignored", id);
    return;
  }
  seen_.insert(id);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, protocol::JobStatus> || std::is_same_v<T, protocol::JobProgress> ||
                      std::is_same_v<T, protocol::JobResult> || std::is_same_v<T, protocol::Offer> ||
                      std::is_same_v<T, protocol::ReservationAnswer> ||
                      std::is_same_v<T, protocol::TokenCountAnswer>) {
          handle(*opened, m, id);
        } else {
          spdlog::info("consumer: event {} from {} is a kind a consumer does not take; ignored", id,
                       opened->sender.hex());
        }
      },
      opened->message);
  if (capacity_freed_) dispatch_waiting();
}

ActiveJob* NodeCore::addressed_job(const protocol::Opened& o, const std::string& job_id, uint32_t attempt,
                                   const char* what) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    spdlog::debug("consumer: {} for unknown or finished job {}; ignored", what, job_id);
    return nullptr;
  }
  ActiveJob& job = it->second;
  const std::string sender = o.sender.hex();
  const JobState s = job.record.state;
  if (sender != job.record.provider || attempt != job.record.attempt ||
      (s != JobState::kAssigned && s != JobState::kRunning)) {
    spdlog::info(
        "consumer: misaddressed or stale {} for job {} from {} (attempt {}); the job is {} with {} (attempt "
        "{}); "
        "ignored",
        what, job_id, sender, attempt, to_string(s), job.record.provider, job.record.attempt);
    return nullptr;
  }
  return &job;
}

void NodeCore::handle(const protocol::Opened& o, const protocol::JobStatus& m, const std::string& event_id) {
  ActiveJob* job = addressed_job(o, m.job_id, m.attempt, "status");
  if (job == nullptr) return;
  PendingWrite w;
  w.change.seen.emplace_back(event_id, o.created_at);
  switch (m.status) {
    case protocol::JobStatusCode::kAccepted: {
      if (job->record.state != JobState::kAssigned || job->accepted) return;
      job->accepted = true;
      if (job->first_answer_at == 0) job->first_answer_at = now_ms();
      job->queue_position = m.queue_position;
      const uint32_t ahead = std::min(m.queue_position, kMaxQueueAllowance);
      job->timeout_at = SteadyClock::now() + options_.stall_timeout * (1 + ahead);
      save_attempt(*job, w, "accepted");
      note(*job, w,
           m.queue_position == 0
               ? "accepted"
               : "accepted, " + std::to_string(m.queue_position) + " jobs ahead in its queue",
           job->record.provider);
      break;
    }
    case protocol::JobStatusCode::kRunning:
      job->timeout_at = SteadyClock::now() + stall_limit(*job);
      if (job->record.state != JobState::kAssigned) return;  // running already: the deadline moved, no more
      job->accepted = true;
      set_state(*job, w, JobState::kRunning);
      save_attempt(*job, w, "running");
      break;
    case protocol::JobStatusCode::kRejected: {
      if (m.reason_code == "busy" && m.retry_after_seconds > 0) {
        // Respect the provider's retry-after for every job, not only this one (at most an hour).
        directory_.set_busy_until(job->record.provider,
                                  clock_.now_unix() + std::min<uint32_t>(m.retry_after_seconds, 3600));
      }
      std::string reason = "rejected by the provider: " + m.reason_code;
      if (!m.reason.empty()) reason += ": " + m.reason;
      if (m.reason_code == "busy") {
        // Busy is for now, not for this job: the provider may take it once its retry-after has passed
        // (at least a second, at most kMaxRetryAfter, whatever it said), and no job goes to it before.
        const auto rest =
            std::chrono::seconds(std::clamp<uint32_t>(m.retry_after_seconds, 1, kMaxRetryAfter));
        resting_[job->record.provider] = SteadyClock::now() + rest;
        job->tried.erase(job->record.provider);
        reason += " (retry after " + std::to_string(rest.count()) + " s)";
      }
      reassign(*job, w, "rejected", reason, false);
      break;
    }
  }
  commit(*job, std::move(w));
}

void NodeCore::apply_chunk(ActiveJob& job, PendingWrite& w, const protocol::JobProgress& chunk) {
  job.progress_seq = chunk.seq;
  std::string_view text = chunk.text;
  if (job.record.output.size() + text.size() > protocol::kMaxOutputBytes) {
    spdlog::warn("consumer: job {}: output past {} bytes; the stream's text is dropped, the result will tell",
                 job.record.id, protocol::kMaxOutputBytes);
    text = {};
  }
  job.record.output += text;
  w.change.append_output += text;
  job.attempt_tokens = std::max(job.attempt_tokens, chunk.tokens);
  add_event(job, w, "progress", progress_data(job.record.attempt, chunk.seq, text, chunk.tokens, false));
  estimate_spending(job, w, chunk.tokens);
}

void NodeCore::handle(const protocol::Opened& o, const protocol::JobProgress& m,
                      const std::string& /*event_id*/) {
  ActiveJob* job = addressed_job(o, m.job_id, m.attempt, "progress");
  if (job == nullptr) return;
  if (m.seq <= job->progress_seq || job->early_chunks.count(m.seq) != 0) {
    spdlog::debug("consumer: job {}: progress chunk {} again; ignored", m.job_id, m.seq);
    return;
  }
  // Any chunk, even one that must wait for an earlier one, shows the provider is working; the gaps between
  // chunks set how long a silence means a dead provider.
  const auto now = SteadyClock::now();
  if (job->last_progress_at) job->longest_gap = std::max(job->longest_gap, now - *job->last_progress_at);
  job->last_progress_at = now;
  job->timeout_at = now + stall_limit(*job);
  if (m.seq > job->progress_seq + 1) {
    if (job->early_chunks.size() < kMaxEarlyChunks) job->early_chunks.emplace(m.seq, m);
    return;
  }
  // Progress ids are not written to seen_events: relays do not store the ephemeral stream, so there is
  // nothing to replay after a restart, and the sequence check drops copies.
  PendingWrite w;
  if (job->first_token_at == 0) job->first_token_at = now_ms();
  if (job->first_answer_at == 0) job->first_answer_at = job->first_token_at;
  if (job->record.state == JobState::kAssigned) {
    job->accepted = true;
    set_state(*job, w, JobState::kRunning);
    save_attempt(*job, w, "running");
  }
  apply_chunk(*job, w, m);
  for (auto it = job->early_chunks.find(job->progress_seq + 1); it != job->early_chunks.end();
       it = job->early_chunks.find(job->progress_seq + 1)) {
    apply_chunk(*job, w, it->second);
    job->early_chunks.erase(it);
  }
  commit(*job, std::move(w));
}

void NodeCore::handle(const protocol::Opened& o, const protocol::JobResult& m, const std::string& event_id) {
  ActiveJob* job = addressed_job(o, m.job_id, m.attempt, "result");
  if (job == nullptr) return;
  PendingWrite w;
  w.change.seen.emplace_back(event_id, o.created_at);
  const std::string provider = job->record.provider;
  const uint32_t attempt = job->record.attempt;
  w.change.result = ResultRecord{job->record.id, attempt, event_id, provider,    m.ok,    m.output,
                                 m.error_code,   m.error, m.usage,  m.cost_msat, now_ms()};
  const uint64_t cap = job->record.spec.max_cost_msat;
  if (!m.ok) {
    provider_error(*job, w, attempt, provider, m.error_code, m.error);
    std::string reason = "the provider reported an error: " + m.error_code;
    if (!m.error.empty()) reason += ": " + m.error;
    if (m.error_code == "invalid-input") {
      // The request itself cannot run on this model (a prompt longer than its context, say): every provider
      // of the model would refuse it the same way, so the job fails now instead of touring them.
      end_attempt(*job, w, "failed", reason, false);
      finish(*job, w, JobState::kFailed, reason);
    } else {
      reassign(*job, w, "failed", reason, false);
    }
  } else if (cap != 0 && m.cost_msat > cap) {
    // The budget is a hard cap: no receipt, and the job fails rather than accept the charge.
    const std::string reason = "provider charged over budget: " + std::to_string(m.cost_msat) +
                               " msat, more than max_cost_msat " + std::to_string(cap);
    provider_error(*job, w, attempt, provider, "over-budget", reason);
    check_budget(*job, w, m.cost_msat, false);
    end_attempt(*job, w, "over-budget", reason, false);
    finish(*job, w, JobState::kFailed, reason);
  } else {
    JobRecord& r = job->record;
    std::string output = complete_output(std::string_view(r.output).substr(0, job->resume_bytes), m.output);
    // Progress is ephemeral and batched: a provider sends none for a run that ends before its first flush,
    // and a relay may drop some. Whatever the stream did not carry is sent on as one last progress event, so
    // a client that appends progress text ends with the whole output, each piece once.
    if (output.size() > r.output.size() && std::string_view(output).starts_with(r.output)) {
      add_event(*job, w, "progress",
                progress_data(attempt, job->progress_seq + 1,
                              std::string_view(output).substr(r.output.size()), m.usage.output_tokens, true));
    }
    r.output = std::move(output);
    // A resumed attempt counted the delivered tokens as its input; for the job they are output, each
    // counted once (the earlier attempts' progress counts), and the prompt stays the prompt.
    protocol::Usage usage = m.usage;
    if (job->earlier_tokens > 0) {
      usage.input_tokens -= std::min(usage.input_tokens, job->earlier_tokens);
      usage.output_tokens += job->earlier_tokens;
    }
    r.usage = usage;
    r.cost_msat = m.cost_msat;
    w.change.output = r.output;
    w.change.usage = usage;
    w.change.cost_msat = m.cost_msat;
    add_event(*job, w, "result", result_data(attempt, provider, true, m.cost_msat, usage, m.finish_reason));
    check_budget(*job, w, m.cost_msat, false);
    charge_account(*job, w, m.cost_msat);
    protocol::JobReceipt receipt{r.id, attempt, m.cost_msat, event_id};
    if (auto sealed = protocol::seal(receipt, keys_, o.sender, clock_.now_unix())) {
      w.change.receipt =
          ReceiptRecord{r.id, attempt, provider, m.cost_msat, event_id, hex_encode(sealed->id), now_ms()};
      w.publish.push_back(std::move(*sealed));
    } else {
      spdlog::warn("consumer: job {}: cannot seal the receipt: {}", r.id, sealed.error().message);
    }
    end_attempt(*job, w, "completed", "", false);
    finish(*job, w, JobState::kCompleted, "");
  }
  commit(*job, std::move(w));
}

void NodeCore::handle(const protocol::Opened& o, const protocol::Offer& m, const std::string& event_id) {
  auto quote = quotes_.find(m.quote_id);
  if (quote == quotes_.end()) {
    spdlog::debug("consumer: offer for unknown or closed quote {}; ignored", m.quote_id);
    return;
  }
  auto it = jobs_.find(quote->second);
  if (it == jobs_.end() || it->second.record.state != JobState::kMatched || it->second.quote_id != m.quote_id)
    return;
  ActiveJob& job = it->second;
  const std::string sender = o.sender.hex();
  if (m.model != job.record.spec.model) {
    spdlog::info("consumer: offer from {} for model {} answers a quote for {}; ignored", sender, m.model,
                 job.record.spec.model);
    return;
  }
  for (const auto& [from, offer] : job.offers) {
    if (from == sender) return;  // one offer per provider and round
  }
  if (job.offers.size() >= kMaxOffers) return;
  job.offers.emplace_back(sender, m);
  PendingWrite w;
  w.change.seen.emplace_back(event_id, o.created_at);
  note(job, w,
       "offer: " + std::to_string(m.price_msat) + " msat, could start in about " + std::to_string(m.eta_ms) +
           " ms",
       sender);
  commit(job, std::move(w));
}

}  // namespace infernet::consumer::internal
