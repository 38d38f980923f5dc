// The consumer node's life cycle and public calls, and the write path every state change takes.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <iterator>

#include "consumer/internal/event_data.hpp"
#include "consumer/internal/job_spec.hpp"
#include "consumer/internal/node_core.hpp"
#include "core/encoding.hpp"
#include "core/random.hpp"

namespace infernet::consumer {
namespace internal {
namespace {

// Ids of handled events kept in memory; older ones are still refused through the database at start-up.
constexpr size_t kSeenCapacity = 200'000;
// A restarted node asks relays again for what was published this long before its oldest unfinished job
// last changed, so that messages sent while it was down, or just before, arrive.
constexpr int64_t kResubscribeMarginSeconds = 60;
// Replay-protection ids are kept this long in the database.
constexpr int64_t kSeenRetentionSeconds = 7 * 24 * 3600;
// The most notifications one notifications() call returns.
constexpr size_t kMaxNotificationPage = 1000;

// 16 bytes, as 32 hex characters: the milliseconds since 1970 in the first 6 (big-endian, so ids sort by
// creation time, as UUIDv7 does) and 80 random bits. Time-ordered ids make every table keyed by job id grow
// at its end: a batch of new jobs touches a few index pages instead of one random page per job and table,
// which measured 40 page writes per job in the job database with random ids.
std::string new_job_id() {
  std::array<uint8_t, 16> bytes{};
  fill_random(bytes);
  const auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  for (int i = 0; i < 6; ++i)
    bytes[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  return hex_encode(bytes);
}

// A note's identity for deduplication: its text with digits removed, so "silent for 31 s" and "silent for
// 32 s" count as the same note.
std::string note_key(const std::string& provider, const std::string& message) {
  std::string key = provider + "|";
  for (char c : message) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) key += c;
  }
  return key;
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- SeenIds ----

void SeenIds::insert(const std::string& id) {
  if (!ids_.insert(id).second) return;
  order_.push_back(id);
  if (order_.size() > capacity_) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
}

void SeenIds::clear() {
  ids_.clear();
  order_.clear();
}

// ---- Notifier ----

Notifier::Notifier() : thread_([this] { loop(); }) {}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Notifier::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
    ++posted_;
  }
  cv_.notify_all();
}

void Notifier::drain() {
  std::unique_lock lock(mu_);
  const uint64_t target = posted_;
  cv_.wait(lock, [&] { return done_ >= target; });
}

void Notifier::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything ran
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("consumer: notifier task threw: {}", e.what());
    }
    lock.lock();
    ++done_;
    cv_.notify_all();
  }
}

// ---- NodeCore: life cycle ----

NodeCore::NodeCore(ConsumerOptions options, relay::RelayPool& pool, const nostr::Keypair& keys,
                   const Clock& clock, std::unique_ptr<JobStore> store)
    : options_(std::move(options)),
      pool_(pool),
      keys_(keys),
      our_hex_(keys.public_key().hex()),
      clock_(clock),
      store_(std::move(store)),
      directory_(options_.heartbeat),
      budget_(options_.budget_daily_msat, options_.budget_monthly_msat),
      seen_(kSeenCapacity) {}

NodeCore::~NodeCore() {
  stop();
  store_->close();
  notifier_.drain();
}

Status NodeCore::start() {
  // With nothing unfinished there is nothing to catch up on: only what is published from now on matters.
  int64_t since = clock_.now_unix();
  {
    std::lock_guard lock(mu_);
    if (started_) return {};
    if (auto st = load(); !st) {
      forget_jobs();
      return st;
    }
    started_ = true;
    announcements_loaded_ = false;
    for (const auto& [id, job] : jobs_) {
      since = std::min(since, job.record.updated_at / 1000 - kResubscribeMarginSeconds);
    }
  }
  prune_seen_events();

  std::weak_ptr<NodeCore> weak = weak_from_this();
  nostr::Filter announcements;
  announcements.kinds = std::vector<uint32_t>{protocol::kProviderAnnouncement};
  announcements.tags.push_back({"t", {"infernet"}});
  relay::SubscriptionCallbacks on_announcement;
  on_announcement.on_event = [weak](const nostr::Event& e, const std::string&) {
    if (auto self = weak.lock()) self->on_announcement(e);
  };
  on_announcement.on_eose = [weak] {
    if (auto self = weak.lock()) self->on_announcements_loaded();
  };
  // Results in a filter of their own: a relay caps what it returns per filter, and after a restart the
  // results are what must not be crowded out by status messages.
  nostr::Filter results;
  results.kinds = std::vector<uint32_t>{protocol::kJobResult};
  results.tags.push_back({"p", {our_hex_}});
  results.since = std::max<int64_t>(0, since);
  nostr::Filter messages = results;
  messages.kinds = std::vector<uint32_t>{protocol::kJobStatus, protocol::kJobProgress, protocol::kOffer,
                                         protocol::kReservationAnswer, protocol::kTokenCountAnswer};
  relay::SubscriptionCallbacks on_message;
  on_message.on_event = [weak](const nostr::Event& e, const std::string&) {
    if (auto self = weak.lock()) self->on_job_message(e);
  };
  auto a = pool_.subscribe({announcements}, std::move(on_announcement));
  auto m = pool_.subscribe({results, messages}, std::move(on_message));
  {
    std::lock_guard lock(mu_);
    subscriptions_ = {a, m};
  }
  {
    std::lock_guard lock(timer_mu_);
    timer_stop_ = false;
  }
  timer_ = std::thread([this] { timer_loop(); });
  std::lock_guard lock(mu_);
  dispatch_waiting();
  return {};
}

void NodeCore::stop() {
  std::vector<relay::SubscriptionHandle> subscriptions;
  {
    std::lock_guard lock(mu_);
    if (!started_) return;
    started_ = false;
    subscriptions.swap(subscriptions_);
  }
  counted_.notify_all();  // estimates waiting for a token count give up
  for (auto s : subscriptions)
    pool_.unsubscribe(s);
  {
    std::lock_guard lock(timer_mu_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  // Everything decided so far reaches the database (changes commit in order: an empty one is a barrier)
  // and is published, so a start() after this reloads exactly what was decided.
  (void)store_->apply_and_wait(JobChange{});
  notifier_.drain();
  std::lock_guard lock(mu_);
  forget_jobs();
}

void NodeCore::forget_jobs() {
  jobs_.clear();
  budget_.release_all();
  by_client_id_.clear();
  in_flight_.clear();
  quotes_.clear();
  waiting_.clear();
  seen_.clear();
}

Status NodeCore::load() {
  auto providers = store_->providers();
  if (!providers) return tl::unexpected(with_context(providers.error(), "loading providers"));
  for (const auto& p : *providers) {
    auto event = nostr::parse_event(p.event_json);
    if (!event) continue;
    auto a = protocol::parse_announcement(*event);
    if (!a) {
      spdlog::warn("consumer: stored announcement of {} no longer parses: {}", p.pubkey, a.error().message);
      continue;
    }
    directory_.update(*a, 0);
  }
  if (budget_.limited()) {
    const int64_t now = clock_.now_unix();
    auto today = store_->charged_since(utc_day_start(now) * 1000);
    auto month = store_->charged_since(utc_month_start(now) * 1000);
    if (!today || !month) {
      return tl::unexpected(
          with_context(today ? month.error() : today.error(), "loading the account's charges"));
    }
    budget_.load(*today, *month, now);
  }
  if (auto st = load_reputations(); !st) return st;
  if (auto st = load_reservations(); !st) return st;
  auto unfinished = store_->unfinished();
  if (!unfinished) return tl::unexpected(with_context(unfinished.error(), "loading unfinished jobs"));
  int64_t oldest_s = clock_.now_unix();
  for (auto& record : *unfinished) {
    oldest_s = std::min(oldest_s, record.updated_at / 1000);
    auto job = load_job(std::move(record));
    if (!job) return tl::unexpected(job.error());
    const std::string id = job->record.id;
    auto [it, inserted] = jobs_.emplace(id, std::move(*job));
    ActiveJob& j = it->second;
    if (!j.record.client_request_id.empty()) by_client_id_[j.record.client_request_id] = id;
    if (budget_.limited()) {
      j.budget_reserved = j.record.spec.max_cost_msat;
      budget_.reserve(j.budget_reserved);
    }
    const JobState s = j.record.state;
    if (s == JobState::kAssigned || s == JobState::kRunning) {
      ++in_flight_[j.record.provider];
      // The provider had no deadline while we were away; it gets a fresh one.
      const auto wait = (s == JobState::kRunning || j.accepted)
                            ? stall_limit(j)
                            : SteadyClock::duration(options_.accept_timeout);
      j.timeout_at = SteadyClock::now() + wait;
    } else {
      // submitted, or matched with its round of offers lost: dispatched again once started.
      j.waiting = WaitingKey{priority_rank(j.record.spec.priority), j.record.created_at, id};
      waiting_.insert(*j.waiting);
    }
  }
  auto seen = store_->seen_since(oldest_s - 10 * kResubscribeMarginSeconds);
  if (!seen) return tl::unexpected(with_context(seen.error(), "loading handled event ids"));
  for (const auto& id : *seen)
    seen_.insert(id);
  if (!jobs_.empty()) spdlog::info("consumer: resuming {} unfinished jobs", jobs_.size());
  return {};
}

Result<ActiveJob> NodeCore::load_job(JobRecord record) {
  ActiveJob job;
  auto last = store_->last_seq(record.id);
  if (!last) return tl::unexpected(last.error());
  job.next_seq = *last + 1;
  auto attempts = store_->attempts(record.id);
  if (!attempts) return tl::unexpected(attempts.error());
  for (const auto& a : *attempts) {
    job.tried.insert(a.provider);
    if (a.attempt == record.attempt) {
      job.attempt_open = record.state == JobState::kAssigned || record.state == JobState::kRunning;
      job.attempt_started_at = a.started_at;
      job.request_event_id = a.request_event_id;
      job.resume_bytes = std::min<size_t>(a.resume_bytes, record.output.size());
      job.accepted = a.state != "assigned";
    }
  }
  if (record.state == JobState::kRunning || record.state == JobState::kAssigned) {
    auto progress = store_->last_event(record.id, "progress");
    if (!progress) return tl::unexpected(progress.error());
    uint32_t attempt = 0;
    uint64_t seq = 0;
    if (*progress && parse_progress_position((*progress)->data, attempt, seq) && attempt == record.attempt) {
      job.progress_seq = seq;
    }
  }
  auto budget = store_->budget_threshold_notified(record.id);
  if (!budget) return tl::unexpected(budget.error());
  job.budget_notified = *budget;
  job.input_words = count_words(record.spec.prompt);
  job.input_tokens = market::input_token_bound(record.spec.prompt, record.spec.messages);
  job.record = std::move(record);
  return job;
}

// ---- NodeCore: public calls ----

Result<JobRecord> NodeCore::existing_for_client_id(const std::string& client_request_id) {
  std::shared_future<Status> inserted;
  std::string id;
  {
    std::lock_guard lock(mu_);
    auto it = by_client_id_.find(client_request_id);
    if (it == by_client_id_.end()) return make_error(ErrorCode::kNotFound, "no such client_request_id");
    id = it->second;
    auto job = jobs_.find(id);
    if (job != jobs_.end()) inserted = job->second.inserted;
  }
  // The first submit of this id may still be waiting for its insert to commit.
  if (inserted.valid()) {
    if (auto st = inserted.get(); !st) return tl::unexpected(st.error());
  }
  return store_->get(id);
}

Result<JobRecord> NodeCore::submit(const JobSpec& raw) {
  auto spec = check_spec(raw, clock_.now_unix());
  if (!spec) return tl::unexpected(spec.error());
  const std::string crid = spec->client_request_id;  // a copy: the spec is moved into the job below
  if (!crid.empty()) {
    if (auto existing = existing_for_client_id(crid);
        existing || existing.error().code != ErrorCode::kNotFound) {
      return existing;
    }
    auto stored = store_->find_by_client_request_id(crid);
    if (!stored) return tl::unexpected(stored.error());
    if (*stored) return std::move(**stored);
  }
  auto promise = std::make_shared<std::promise<Status>>();
  std::shared_future<Status> inserted = promise->get_future().share();
  JobRecord snapshot;
  {
    std::unique_lock lock(mu_);
    // Checked again under the lock: a concurrent submit of the same id may have won the race.
    if (!crid.empty() && by_client_id_.count(crid) != 0) {
      lock.unlock();
      return existing_for_client_id(crid);
    }
    // Account budgets: the job's worst case must fit in what is left, and is held until its charge is known.
    // A job without a cap gets what is left as its cap, so that it cannot overrun it either.
    uint64_t reserve = 0;
    if (budget_.limited()) {
      const uint64_t left = budget_.available(clock_.now_unix());
      if (left == 0) {
        return make_error(ErrorCode::kLimitExceeded,
                          "budget: the account budget is used up (GET /api/v1/budget shows when it resets)");
      }
      if (spec->max_cost_msat > left) {
        return make_error(ErrorCode::kLimitExceeded, "budget: max_cost_msat " +
                                                         std::to_string(spec->max_cost_msat) +
                                                         " is more than the " + std::to_string(left) +
                                                         " msat left of the account budget");
      }
      if (spec->max_cost_msat == 0) {
        spec->max_cost_msat = left;
        spec->notes.push_back("max_cost_msat set to the " + std::to_string(left) +
                              " msat left of the account budget");
      }
      reserve = spec->max_cost_msat;
      budget_.reserve(reserve);
    }
    const std::string id = new_job_id();
    ActiveJob& job = jobs_[id];
    job.budget_reserved = reserve;
    JobRecord& r = job.record;
    r.id = id;
    r.client_request_id = crid;
    r.spec = std::move(*spec);
    r.state = JobState::kSubmitted;
    r.created_at = now_ms();
    r.updated_at = r.created_at;
    job.input_words = count_words(r.spec.prompt);
    job.input_tokens = market::input_token_bound(r.spec.prompt, r.spec.messages);
    job.inserted = inserted;
    if (!crid.empty()) by_client_id_[crid] = id;
    snapshot = r;
    // One transaction holds the job and its first assignment; the request is published after it commits.
    PendingWrite w;
    w.change.insert = r;
    add_event(job, w, "state", state_data(JobState::kSubmitted));
    for (const std::string& n : r.spec.notes)
      note(job, w, n);
    notify(job, w, "job.submitted", {});
    dispatch(job, w);
    commit(job, std::move(w), [promise](const Status& st) { promise->set_value(st); });
  }
  Status st = inserted.get();
  if (!st) {
    std::lock_guard lock(mu_);
    if (auto it = jobs_.find(snapshot.id); it != jobs_.end()) {
      budget_.release(it->second.budget_reserved);
      if (it->second.waiting) waiting_.erase(*it->second.waiting);
      jobs_.erase(it);
    }
    if (!crid.empty()) by_client_id_.erase(crid);
    return tl::unexpected(with_context(st.error(), "storing the job"));
  }
  return snapshot;
}

Result<JobRecord> NodeCore::get(const std::string& job_id) {
  return store_->get(job_id);
}

Result<std::vector<JobRecord>> NodeCore::list(const JobQuery& query) {
  return store_->list(query);
}

Result<JobRecord> NodeCore::cancel(const std::string& job_id) {
  auto promise = std::make_shared<std::promise<Status>>();
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return store_->get(job_id);  // final already, or unknown
    ActiveJob& job = it->second;
    PendingWrite w;
    end_attempt(job, w, "canceled", "canceled by the user", true);
    finish(job, w, JobState::kCanceled, "canceled by the user");
    commit(job, std::move(w), [promise](const Status& st) { promise->set_value(st); });
  }
  if (auto st = promise->get_future().get(); !st) return tl::unexpected(st.error());
  return store_->get(job_id);
}

Result<std::vector<JobEvent>> NodeCore::events(const std::string& job_id, uint64_t after_seq) {
  auto events = store_->events(job_id, after_seq);
  if (!events) return events;
  if (events->empty()) {
    if (auto job = store_->get(job_id); !job) return tl::unexpected(job.error());
  }
  return events;
}

Result<uint64_t> NodeCore::watch(const std::string& job_id, uint64_t after_seq,
                                 std::function<void(const JobEvent&)> cb) {
  if (auto job = store_->get(job_id); !job) return tl::unexpected(job.error());
  return hub_.watch(job_id, after_seq, std::move(cb),
                    [this](const std::string& id, uint64_t after) { return store_->events(id, after); });
}

void NodeCore::unwatch(uint64_t handle) {
  hub_.unwatch(handle);
}

Status NodeCore::load_notification_position() {
  auto last = store_->last_notification_id();
  if (!last) return tl::unexpected(with_context(last.error(), "reading the last notification id"));
  std::lock_guard lock(mu_);
  last_notification_id_ = *last;
  return {};
}

Result<std::vector<Notification>> NodeCore::notifications(uint64_t after_id, size_t limit) {
  return store_->notifications(after_id, std::min<size_t>(limit, kMaxNotificationPage));
}

Result<uint64_t> NodeCore::last_notification_id() {
  return store_->last_notification_id();
}

Result<uint64_t> NodeCore::watch_all(uint64_t after_id, std::function<void(const Notification&)> cb) {
  return notification_hub_.watch(after_id, std::move(cb), [this](uint64_t after, size_t limit) {
    return store_->notifications(after, limit);
  });
}

void NodeCore::unwatch_all(uint64_t handle) {
  notification_hub_.unwatch(handle);
}

std::vector<ProviderRecord> NodeCore::providers() {
  std::lock_guard lock(mu_);
  return directory_.records(clock_.now_unix());
}

std::vector<ModelSummary> NodeCore::models() {
  std::lock_guard lock(mu_);
  return directory_.models(clock_.now_unix());
}

std::vector<AccountBudgetStatus> NodeCore::budget() {
  std::lock_guard lock(mu_);
  return budget_.status(clock_.now_unix());
}

// ---- NodeCore: the write path ----

void NodeCore::add_event(ActiveJob& job, PendingWrite& w, std::string type, std::string data) {
  w.change.events.push_back(
      JobEvent{job.next_seq++, job.record.id, std::move(type), std::move(data), now_ms()});
}

void NodeCore::set_state(ActiveJob& job, PendingWrite& w, JobState state, const std::string& reason) {
  job.record.state = state;
  w.change.state = state;
  const bool with_provider = state == JobState::kAssigned || state == JobState::kRunning;
  add_event(job, w, "state",
            state_data(state, with_provider ? job.record.provider : "",
                       with_provider ? job.record.attempt : 0, reason));
  notify_state(job, w, state, reason);
}

void NodeCore::note(ActiveJob& job, PendingWrite& w, const std::string& message, const std::string& provider,
                    const std::string& name) {
  if (!job.noted.insert(note_key(provider, message)).second) return;
  add_event(job, w, "note", note_data(message, provider, name));
}

void NodeCore::save_attempt(ActiveJob& job, PendingWrite& w, const std::string& state,
                            const std::string& reason) {
  const int64_t now = now_ms();
  w.change.attempt_rows.push_back(AttemptRecord{job.record.id, job.record.attempt, job.record.provider,
                                                job.request_event_id, state, reason, job.resume_bytes,
                                                job.attempt_started_at, now});
}

void NodeCore::commit(ActiveJob& job, PendingWrite w, std::function<void(const Status&)> done) {
  JobChange& c = w.change;
  const bool job_fields = c.insert || c.state || c.provider || c.attempt || c.error || c.output ||
                          !c.append_output.empty() || c.usage || c.cost_msat;
  const std::string job_id = job.record.id;
  const bool finished = w.finished;
  const std::string client_id = finished ? job.record.client_request_id : "";
  if (w.finished) {
    budget_.release(job.budget_reserved);
    if (job.waiting) waiting_.erase(*job.waiting);
    if (!job.quote_id.empty()) quotes_.erase(job.quote_id);
    jobs_.erase(job_id);  // `job` is gone from here on
  }
  if (!job_fields && c.events.empty() && c.attempt_rows.empty() && c.seen.empty() && w.publish.empty() &&
      c.notifications.empty()) {
    if (done) done(Status{});
    return;
  }
  c.job_id = job_id;
  if (job_fields) {
    c.updated_at = now_ms();
    if (auto it = jobs_.find(job_id); it != jobs_.end()) it->second.record.updated_at = c.updated_at;
  }
  // Numbered here, under mu_ as every write is queued: ids grow in commit order.
  for (auto& n : c.notifications)
    n.id = ++last_notification_id_;
  std::vector<JobEvent> events = c.events;
  std::vector<Notification> notifications = c.notifications;
  // Shared: called by the writer after the commit, or here when the write cannot even be queued.
  auto on_done = std::make_shared<std::function<void(const Status&)>>(std::move(done));
  auto queued = store_->apply(std::move(w.change), [this, job_id, client_id, events = std::move(events),
                                                    notifications = std::move(notifications),
                                                    publish = std::move(w.publish),
                                                    on_done](const Status& st) mutable {
    if (!st) {
      spdlog::error("consumer: job {}: write failed, nothing published: {}", job_id, st.error().to_string());
    } else {
      publish_after_commit(std::move(publish), job_id, std::move(events), std::move(notifications));
    }
    if (!client_id.empty()) {
      std::lock_guard lock(mu_);
      // Only when no newer job took the id over (a failed insert frees it for a retry).
      if (auto it = by_client_id_.find(client_id); it != by_client_id_.end() && it->second == job_id) {
        by_client_id_.erase(it);
      }
    }
    if (*on_done) (*on_done)(st);
  });
  if (!queued) {
    spdlog::error("consumer: job {}: write not queued: {}", job_id, queued.error().to_string());
    if (*on_done) (*on_done)(queued);
  }
}

void NodeCore::publish_after_commit(std::vector<nostr::Event> events, const std::string& job_id,
                                    std::vector<JobEvent> job_events,
                                    std::vector<Notification> notifications) {
  if (events.empty() && job_events.empty() && notifications.empty()) return;
  notifier_.post([this, events = std::move(events), job_id, job_events = std::move(job_events),
                  notifications = std::move(notifications)] {
    for (const auto& e : events)
      publish(e);
    hub_.deliver(job_id, job_events);
    notification_hub_.deliver(notifications);
  });
}

void NodeCore::publish(const nostr::Event& event) {
  pool_.publish_retrying(event, [event](const std::vector<relay::PublishOutcome>& outcomes) {
    if (std::any_of(outcomes.begin(), outcomes.end(), [](const auto& o) { return o.accepted; })) return;
    spdlog::warn("consumer: no relay accepted event {} (kind {}): {}", hex_encode(event.id), event.kind,
                 outcomes.empty() ? "no relays" : outcomes.front().message);
  });
}

void NodeCore::prune_seen_events() {
  if (auto st = store_->prune_seen(clock_.now_unix() - kSeenRetentionSeconds); !st) {
    spdlog::warn("consumer: pruning handled event ids: {}", st.error().message);
  }
}

}  // namespace internal

// ---- the public class ----

namespace {

class ConsumerNodeImpl final : public ConsumerNode {
 public:
  explicit ConsumerNodeImpl(std::shared_ptr<internal::NodeCore> core) : core_(std::move(core)) {}
  ~ConsumerNodeImpl() override { core_->stop(); }

  Status start() override { return core_->start(); }
  void stop() override { core_->stop(); }
  Result<JobRecord> submit(const JobSpec& spec) override { return core_->submit(spec); }
  Result<JobRecord> get(const std::string& job_id) override { return core_->get(job_id); }
  Result<std::vector<JobRecord>> list(const JobQuery& query) override { return core_->list(query); }
  Result<JobRecord> cancel(const std::string& job_id) override { return core_->cancel(job_id); }
  Result<std::vector<JobEvent>> events(const std::string& job_id, uint64_t after_seq) override {
    return core_->events(job_id, after_seq);
  }
  Result<uint64_t> watch(const std::string& job_id, uint64_t after_seq,
                         std::function<void(const JobEvent&)> on_event) override {
    return core_->watch(job_id, after_seq, std::move(on_event));
  }
  void unwatch(uint64_t handle) override { core_->unwatch(handle); }
  Result<std::vector<Notification>> notifications(uint64_t after_id, size_t limit) override {
    return core_->notifications(after_id, limit);
  }
  Result<uint64_t> last_notification_id() override { return core_->last_notification_id(); }
  Result<uint64_t> watch_all(uint64_t after_id, std::function<void(const Notification&)> cb) override {
    return core_->watch_all(after_id, std::move(cb));
  }
  void unwatch_all(uint64_t handle) override { core_->unwatch_all(handle); }
  std::vector<ProviderRecord> providers() override { return core_->providers(); }
  std::vector<ModelSummary> models() override { return core_->models(); }
  std::vector<AccountBudgetStatus> budget() override { return core_->budget(); }
  Result<Estimate> estimate(const JobSpec& spec) override { return core_->estimate(spec); }
  Result<WhyReport> why(const std::string& job_id) override { return core_->why(job_id); }
  Result<ReservationRecord> reserve(const ReservationSpec& spec) override { return core_->reserve(spec); }
  Result<std::vector<ReservationRecord>> reservations() override { return core_->reservations(); }

 private:
  std::shared_ptr<internal::NodeCore> core_;
};

}  // namespace

Result<std::unique_ptr<ConsumerNode>> ConsumerNode::open(const ConsumerOptions& options,
                                                         relay::RelayPool& pool, const nostr::Keypair& keys,
                                                         const Clock& clock) {
  if (options.max_attempts < 1)
    return make_error(ErrorCode::kInvalidInput, "max_attempts: must be at least 1");
  if (options.accept_timeout.count() <= 0 || options.stall_timeout.count() <= 0 ||
      options.quote_window.count() <= 0 || options.heartbeat.count() <= 0) {
    return make_error(ErrorCode::kInvalidInput, "timeouts and heartbeat: must be positive");
  }
  auto store = JobStore::open(options.database);
  if (!store) return tl::unexpected(store.error());
  auto core = std::make_shared<internal::NodeCore>(options, pool, keys, clock, std::move(*store));
  if (auto st = core->load_notification_position(); !st) return tl::unexpected(st.error());
  return std::unique_ptr<ConsumerNode>(std::make_unique<ConsumerNodeImpl>(std::move(core)));
}

}  // namespace infernet::consumer
