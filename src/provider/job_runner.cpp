// Running accepted jobs: the record first, then the acceptance, the engine run, the streamed progress and
// the recorded result.
#include <algorithm>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/encoding.hpp"
#include "provider/internal/node_core.hpp"
#include "provider/internal/pricing.hpp"

namespace infernet::provider::internal {
namespace {

using namespace std::chrono_literals;

// Progress batching: signing and sealing every token would cap a provider's throughput, so pieces are sent
// together, at most one event per job per kProgressInterval or per kProgressTokens tokens, whichever comes
// first, and never more than kProgressBytes of text in one event. The first event waits until
// kFirstProgressDelay after the run was handed to the engine, so a run that ends sooner streams nothing: its
// result carries the whole output, and the consumer passes on what the stream did not carry. A model whose
// first token takes longer than that (any real prompt) streams it at once. No progress follows the last
// piece either, for the same reason.
constexpr auto kProgressInterval = 50ms;
constexpr auto kFirstProgressDelay = 20ms;
constexpr uint32_t kProgressTokens = 16;
constexpr size_t kProgressBytes = 16 * 1024;
constexpr double kAverageWeight = 0.2;  // of the newest job in the moving average of engine time

double seconds_since(SteadyClock::time_point t) {
  return t == SteadyClock::time_point{} ? 0 : std::chrono::duration<double>(SteadyClock::now() - t).count();
}

}  // namespace

void NodeCore::accept(const std::shared_ptr<ActiveJob>& job, uint32_t queue_position) {
  const int64_t now = clock_.now_unix();
  protocol::JobStatus status;
  status.job_id = job->request.job_id;
  status.attempt = job->request.attempt;
  // With a slot free the job runs now: "running" is the acceptance, and saves the consumer a second event.
  if (queue_position == 0) {
    status.status = protocol::JobStatusCode::kRunning;
    std::lock_guard stream(job->stream_mu);
    job->running_sent = true;
  } else {
    status.status = protocol::JobStatusCode::kAccepted;
    status.queue_position = queue_position;
  }
  auto accepted = protocol::seal(status, keys_, job->consumer, now);
  if (!accepted) {
    spdlog::error("provider: sealing the acceptance of job {}: {}", job->request.job_id,
                  accepted.error().to_string());
    forget(job, std::nullopt, 0);
    return;
  }
  JobRecord record;
  record.request_id = job->request_id;
  record.consumer = job->consumer.hex();
  record.job_id = job->request.job_id;
  record.attempt = job->request.attempt;
  record.model = job->request.model;
  record.state = queue_position == 0 ? JobRecordState::kRunning : JobRecordState::kQueued;
  record.created_at = record.updated_at = now;
  std::weak_ptr<NodeCore> weak = weak_from_this();
  auto submitted = writer_->submit([record](store::Database& db) { return insert_job_record(db, record); },
                                   [weak, job, accepted = std::move(*accepted)](const Status& recorded) {
                                     if (auto core = weak.lock())
                                       core->on_accept_recorded(job, accepted, recorded);
                                   });
  if (!submitted) {
    spdlog::warn("provider: recording job {}: {}", job->request.job_id, submitted.error().to_string());
    forget(job, std::nullopt, 0);
    reject(job->consumer, job->request, "busy", "the provider's job record is not taking writes right now",
           5);
  }
}

void NodeCore::on_accept_recorded(const std::shared_ptr<ActiveJob>& job, const nostr::Event& accepted,
                                  const Status& recorded) {
  if (!recorded) {
    spdlog::error("provider: recording job {}: {}", job->request.job_id, recorded.error().to_string());
    forget(job, std::nullopt, 0);
    reject(job->consumer, job->request, "busy", "the provider could not record the job", 5);
    return;
  }
  // Stopping: the record stays queued and the next start answers it.
  if (stopping_) return;
  publish(accepted, "acceptance");
  spdlog::info("provider: accepted job {} attempt {} from {} ({}, {} priority, {} max tokens)",
               job->request.job_id, job->request.attempt, job->consumer.hex(), job->request.model,
               job->request.priority, job->request.max_tokens);
  bool canceled = false;
  {
    std::lock_guard lock(mu_);
    canceled = job->cancel_requested;
    if (!canceled) waiting_.push_back(job);
  }
  if (canceled) {
    finish(job, canceled_result(*job), JobRecordState::kCanceled);
    return;
  }
  start_waiting_jobs();
}

void NodeCore::start_waiting_jobs() {
  for (;;) {
    std::shared_ptr<ActiveJob> next;
    {
      std::lock_guard lock(mu_);
      // Checked under mu_, which stop() takes after setting stopping_ to collect the runs it cancels: a job
      // either is collected there or is never started.
      if (stopping_ || waiting_.empty() || in_engine_ >= options_.slots) return;
      auto first = std::min_element(waiting_.begin(), waiting_.end(), [](const auto& a, const auto& b) {
        return std::tuple(a->reservation_id.empty(), protocol::priority_rank(a->request.priority),
                          a->arrival) < std::tuple(b->reservation_id.empty(),
                                                   protocol::priority_rank(b->request.priority), b->arrival);
      });
      next = *first;
      waiting_.erase(first);
      next->in_engine = true;
      ++in_engine_;
    }
    run_on_engine(next);
  }
}

uint64_t NodeCore::charge(const ActiveJob& job, uint32_t input_tokens, uint32_t output_tokens,
                          double seconds) const {
  return actual_cost(options_.prices, job.request.priority, input_tokens, output_tokens, seconds,
                     job.request.max_cost_msat, job.discount_percent);
}

void NodeCore::run_on_engine(const std::shared_ptr<ActiveJob>& job) {
  {
    std::lock_guard stream(job->stream_mu);
    job->submitted_at = SteadyClock::now();
  }
  engine::GenerateRequest run;
  run.id = job->key;
  run.model = job->request.model;
  run.prompt = job->request.prompt;
  run.messages = job->request.messages;
  // The consumer already has this output from an earlier attempt: the engine continues after it and
  // delivers only what follows, and its usage counts only the tokens it generated (the resumed ones are
  // input), so each token is charged once.
  run.resume_text = job->request.resume_text;
  run.max_tokens = job->request.max_tokens;
  run.sampling = job->request.sampling;
  run.deterministic = job->request.deterministic;
  std::weak_ptr<NodeCore> weak = weak_from_this();
  engine::GenerateCallbacks callbacks;
  callbacks.on_prompt = [weak, job](uint32_t input_tokens) {
    auto core = weak.lock();
    if (!core) return;
    std::lock_guard stream(job->stream_mu);
    job->engine_input_tokens = input_tokens;
    // Not even one token fits: the run is stopped before it produces any (after submit, below).
    const uint64_t cap = job->request.max_cost_msat;
    if (cap != 0 && actual_cost(core->options_.prices, job->request.priority, input_tokens, 1, 0, 0,
                                job->discount_percent) > cap) {
      job->over_budget = true;
    }
  };
  callbacks.on_piece = [weak, job](std::string_view piece, uint32_t tokens) {
    if (auto core = weak.lock()) core->on_piece(*job, piece, tokens);
  };
  callbacks.on_done = [weak, job](Result<engine::GenerateUsage> outcome) {
    if (auto core = weak.lock()) core->on_done(job, std::move(outcome));
  };
  auto submitted = engine_.submit(std::move(run), std::move(callbacks));
  if (!submitted) {
    {
      std::lock_guard lock(mu_);
      job->in_engine = false;
      --in_engine_;
    }
    engine_idle_.notify_all();
    spdlog::warn("provider: the engine refused job {}: {}", job->request.job_id,
                 submitted.error().to_string());
    protocol::JobResult result = canceled_result(*job);
    result.ok = false;
    // A request the engine cannot run as asked (a prompt longer than the context, a model without a chat
    // template) fails the same way on every provider of that model; the code tells the consumer so.
    result.error_code = submitted.error().code == ErrorCode::kInvalidInput ? "invalid-input" : "engine";
    result.error = submitted.error().message;
    finish(job, std::move(result), JobRecordState::kFailed);
    start_waiting_jobs();
    return;
  }
  // A cancel (or stop) that came between the check above and the submission found nothing to cancel in the
  // engine.
  bool cancel_now = false;
  {
    std::lock_guard lock(mu_);
    cancel_now = job->cancel_requested || stopping_;
  }
  {
    std::lock_guard stream(job->stream_mu);
    cancel_now = cancel_now || job->over_budget;
  }
  if (cancel_now) engine_.cancel(job->key);
}

void NodeCore::send_status(const ActiveJob& job, protocol::JobStatusCode code) {
  protocol::JobStatus status;
  status.job_id = job.request.job_id;
  status.attempt = job.request.attempt;
  status.status = code;
  auto event = protocol::seal(status, keys_, job.consumer, clock_.now_unix());
  if (!event) {
    spdlog::error("provider: sealing a status of job {}: {}", job.request.job_id, event.error().to_string());
    return;
  }
  publish(*event, "status");
}

void NodeCore::on_piece(ActiveJob& job, std::string_view piece, uint32_t tokens) {
  std::lock_guard stream(job.stream_mu);
  if (job.truncated || job.over_budget) return;
  if (!job.started) {
    job.started = true;
    job.started_at = SteadyClock::now();
    // A job that waited in the queue starts now. "running" is informational: its record write is not
    // waited for (a restart treats queued and running alike), so the status goes out before the first
    // progress. A job that never queued was recorded and announced as running at its acceptance.
    if (!job.running_sent) {
      job.running_sent = true;
      send_status(job, protocol::JobStatusCode::kRunning);
      (void)writer_->submit([request_id = job.request_id, now = clock_.now_unix()](
                                store::Database& db) { return mark_job_running(db, request_id, now); },
                            {});
    }
  }
  job.tokens = tokens;
  // The hard cap: this piece is within it (the previous one checked), and the run ends here if one more
  // token, at the engine time spent so far, would make the charge exceed max_cost_msat. The input counts
  // as the engine tokenized it when it said, else as the estimate did.
  const uint32_t input = job.engine_input_tokens != 0 ? job.engine_input_tokens : job.input_tokens;
  if (job.request.max_cost_msat != 0 && tokens < job.request.max_tokens &&
      actual_cost(options_.prices, job.request.priority, input, tokens + 1, seconds_since(job.started_at), 0,
                  job.discount_percent) > job.request.max_cost_msat) {
    job.over_budget = true;
    engine_.cancel(job.key);
  }
  if (piece.empty()) return;
  if (job.output.size() + piece.size() > protocol::kMaxOutputBytes) {
    // The protocol's limit on one result: stop here as if max_tokens had been reached.
    job.truncated = true;
    job.tokens = tokens - 1;
    engine_.cancel(job.key);
    return;
  }
  job.output.append(piece);
  job.pending.append(piece);
  ++job.pending_tokens;
  const auto due = job.seq == 0 ? job.submitted_at + kFirstProgressDelay : job.last_flush + kProgressInterval;
  if (job.pending_tokens >= kProgressTokens || job.pending.size() >= kProgressBytes ||
      SteadyClock::now() >= due) {
    flush_progress(job);
  }
}

void NodeCore::flush_progress(ActiveJob& job) {
  if (job.pending.empty()) return;
  protocol::JobProgress progress;
  progress.job_id = job.request.job_id;
  progress.attempt = job.request.attempt;
  progress.seq = ++job.seq;
  progress.text = std::move(job.pending);
  progress.tokens = job.tokens;
  progress.fraction = job.request.max_tokens == 0
                          ? 1.0
                          : std::min(1.0, static_cast<double>(job.tokens) / job.request.max_tokens);
  job.pending.clear();
  job.pending_tokens = 0;
  job.last_flush = SteadyClock::now();
  auto event = protocol::seal(progress, keys_, job.consumer, clock_.now_unix());
  if (!event) {
    spdlog::error("provider: sealing progress of job {}: {}", job.request.job_id, event.error().to_string());
    return;
  }
  publish(*event, "progress");
}

protocol::JobResult NodeCore::canceled_result(const ActiveJob& job) const {
  protocol::JobResult result;
  result.job_id = job.request.job_id;
  result.attempt = job.request.attempt;
  result.ok = false;
  result.error_code = "canceled";
  result.error = "canceled by the consumer";
  return result;
}

void NodeCore::on_done(const std::shared_ptr<ActiveJob>& job, Result<engine::GenerateUsage> outcome) {
  bool cancel_requested = false;
  {
    std::lock_guard lock(mu_);
    cancel_requested = job->cancel_requested;
  }
  protocol::JobResult result = canceled_result(*job);
  JobRecordState state = JobRecordState::kFailed;
  bool leave_for_restart = false;
  {
    std::lock_guard stream(job->stream_mu);
    const bool canceled = !outcome && engine::is_canceled(outcome.error());
    if (canceled && stopping_ && !cancel_requested && !job->truncated && !job->over_budget) {
      leave_for_restart = true;
    } else {
      // No last progress event: the result carries the whole output.
      const uint32_t input = job->engine_input_tokens != 0 ? job->engine_input_tokens : job->input_tokens;
      result.usage.input_tokens = outcome ? outcome->input_tokens : input;
      result.usage.output_tokens = outcome ? outcome->output_tokens : job->tokens;
      result.seconds = outcome ? outcome->seconds : seconds_since(job->started_at);
      // A run stopped for the budget may still have ended on its own at that same token.
      const bool budget = job->over_budget && !(outcome && outcome->output_tokens <= job->tokens);
      if (outcome || job->truncated || job->over_budget) {
        result.ok = true;
        result.output = job->output;
        result.finish_reason = budget    ? engine::to_string(engine::FinishReason::kBudget)
                               : outcome ? engine::to_string(outcome->finish_reason)
                                         : "length";
        if (budget) result.usage.output_tokens = job->tokens;
        result.error_code.clear();
        result.error.clear();
        state = JobRecordState::kCompleted;
      } else if (canceled && cancel_requested) {
        state = JobRecordState::kCanceled;
      } else {
        result.error_code = "engine";
        result.error = canceled ? "the engine stopped the run" : outcome.error().message;
      }
      // Canceled and failed runs are charged for what was produced; the consumer saw it streamed.
      result.cost_msat = charge(*job, result.usage.input_tokens, result.usage.output_tokens, result.seconds);
    }
  }
  if (leave_for_restart) {
    forget(job, std::nullopt, 0);
  } else {
    if (state == JobRecordState::kFailed) {
      spdlog::warn("provider: job {} failed: {}", job->request.job_id, result.error);
    }
    finish(job, std::move(result), state);
  }
  // Leaves the engine only now, so stop() waits until the result's write has been queued.
  {
    std::lock_guard lock(mu_);
    job->in_engine = false;
    --in_engine_;
  }
  engine_idle_.notify_all();
  start_waiting_jobs();
}

void NodeCore::finish(const std::shared_ptr<ActiveJob>& job, protocol::JobResult result,
                      JobRecordState state) {
  const int64_t now = clock_.now_unix();
  auto event = protocol::seal(result, keys_, job->consumer, now);
  if (!event) {
    spdlog::error("provider: sealing the result of job {}: {}", job->request.job_id,
                  event.error().to_string());
    forget(job, state, result.seconds);
    return;
  }
  // Serialized before the call: the second callback moves the event, and argument order is unspecified.
  std::string json = nostr::to_json(*event);
  std::weak_ptr<NodeCore> weak = weak_from_this();
  auto submitted = writer_->submit(
      [request_id = job->request_id, state, json = std::move(json), cost = result.cost_msat,
       now](store::Database& db) -> Status {
        auto r = finish_job_record(db, request_id, state, json, cost, now);
        if (!r) return tl::unexpected(r.error());
        return {};
      },
      [weak, job, event = std::move(*event), state, tokens = result.usage.output_tokens,
       cost = result.cost_msat, seconds = result.seconds](const Status& recorded) {
        auto core = weak.lock();
        if (!core) return;
        if (recorded) {
          core->publish(event, "result");
          spdlog::info("provider: job {} attempt {} {} ({} tokens, {:.3f} s, {} msat)", job->request.job_id,
                       job->request.attempt, to_string(state), tokens, seconds, cost);
        } else {
          // Not recorded, so not sent: the record still says queued/running, and a restart answers it.
          spdlog::error("provider: recording the result of job {}: {}", job->request.job_id,
                        recorded.error().to_string());
        }
        core->forget(job, state, seconds);
      });
  if (!submitted) {
    spdlog::warn("provider: result of job {} not recorded: {}", job->request.job_id,
                 submitted.error().to_string());
    forget(job, state, result.seconds);
  }
}

void NodeCore::forget(const std::shared_ptr<ActiveJob>& job, std::optional<JobRecordState> counted,
                      double seconds) {
  {
    std::lock_guard lock(mu_);
    auto by_key = jobs_by_key_.find(job->key);
    if (by_key != jobs_by_key_.end() && by_key->second == job) jobs_by_key_.erase(by_key);
    auto by_request = jobs_by_request_.find(job->request_id);
    if (by_request != jobs_by_request_.end() && by_request->second == job) jobs_by_request_.erase(by_request);
    if (counted) {
      switch (*counted) {
        case JobRecordState::kCompleted:
          ++counts_.completed;
          average_run_ms_ = average_run_ms_ == 0
                                ? seconds * 1000
                                : (1 - kAverageWeight) * average_run_ms_ + kAverageWeight * seconds * 1000;
          break;
        case JobRecordState::kCanceled:
          ++counts_.canceled;
          break;
        default:
          ++counts_.failed;
          break;
      }
    }
  }
  request_announce();
}

}  // namespace infernet::provider::internal
