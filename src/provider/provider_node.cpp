// The provider node's front: opening the record, start/stop, the dispatcher that decides on every message
// addressed to us, quote requests, and the announcement. Running accepted jobs is in job_runner.cpp.
#include <algorithm>
#include <cmath>
#include <future>
#include <utility>
#include <variant>

#include <spdlog/spdlog.h>

#include "core/encoding.hpp"
#include "provider/internal/node_core.hpp"
#include "provider/internal/pricing.hpp"
#include "provider/provider.hpp"

namespace infernet::provider {
namespace internal {
namespace {

using namespace std::chrono_literals;

constexpr size_t kInboxCapacity = 16384;
constexpr auto kMinAnnounceInterval = 1s;
constexpr int64_t kOfferLifetimeSeconds = 30;
// A first start reads a day of history addressed to us; later starts resume a minute before the newest
// message handled (relays' clocks and orderings differ), and the record keeps the replay from running twice.
constexpr int64_t kHistorySeconds = 24 * 3600;
constexpr int64_t kResumeMarginSeconds = 60;
constexpr auto kStopWait = 3s;
constexpr auto kRecoveryWait = 10s;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string job_key(const std::string& consumer_hex, const std::string& job_id, uint32_t attempt) {
  return consumer_hex + "/" + job_id + "/" + std::to_string(attempt);
}

}  // namespace

NodeCore::NodeCore(const ProviderOptions& options, relay::RelayPool& pool, engine::Engine& engine,
                   const nostr::Keypair& keys, const Clock& clock, std::unique_ptr<store::BatchWriter> writer,
                   JobRecordReader reader)
    : options_(options),
      pool_(pool),
      engine_(engine),
      keys_(keys),
      pubkey_hex_(keys.public_key().hex()),
      clock_(clock),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {}

NodeCore::~NodeCore() {
  stop();
}

Status NodeCore::start() {
  if (started_) return make_error(ErrorCode::kAlreadyExists, "provider: already started");
  if (stopped_) return make_error(ErrorCode::kIo, "provider: stopped; open a new node to start again");
  started_ = true;
  hardware_ = detect_hardware();
  const std::string engine_name = engine_.name();
  for (const auto& m : engine_.models()) {
    models_.push_back(protocol::ModelInfo{.name = m.name,
                                          .sha256 = m.sha256,
                                          .family = m.family,
                                          .parameters = m.parameters,
                                          .quantization = m.quantization,
                                          .context_length = m.context_length,
                                          .engine = engine_name,
                                          .capabilities = m.capabilities,
                                          .determinism = m.determinism});
    served_.insert(m.name);
  }
  if (models_.empty()) return make_error(ErrorCode::kInvalidInput, "provider: the engine serves no models");
  if (auto st = recover_unfinished(); !st) return st;
  auto reservations = reader_.reservations(clock_.now_unix());
  if (!reservations) return tl::unexpected(with_context(reservations.error(), "provider database"));
  {
    std::lock_guard lock(mu_);
    reservations_ = std::move(*reservations);
  }

  auto last_seen = reader_.last_seen();
  if (!last_seen) return tl::unexpected(with_context(last_seen.error(), "provider database"));
  last_seen_ = last_seen_saved_ = *last_seen;
  const int64_t now = clock_.now_unix();
  int64_t since = now - kHistorySeconds;
  if (*last_seen > 0) since = std::max(since, *last_seen - kResumeMarginSeconds);

  announce(true);
  subscribe(since);
  dispatcher_ = std::thread([this] { dispatch_loop(); });
  spdlog::info("provider: started as {} serving {} model(s) on the {} engine, {} slots, queue {}",
               pubkey_hex_, models_.size(), engine_name, options_.slots, options_.queue);
  return {};
}

void NodeCore::subscribe(int64_t since) {
  std::weak_ptr<NodeCore> weak = weak_from_this();
  auto on_event = [weak](const nostr::Event& event, const std::string&) {
    if (auto core = weak.lock()) core->enqueue(event);
  };
  nostr::Filter jobs;
  jobs.kinds = std::vector<uint32_t>{protocol::kJobRequest, protocol::kJobCancel, protocol::kJobReceipt,
                                     protocol::kReservationRequest, protocol::kTokenCountRequest};
  jobs.tags.push_back(nostr::TagCondition{"p", {pubkey_hex_}});
  jobs.since = since;
  job_subscription_ = pool_.subscribe({jobs}, relay::SubscriptionCallbacks{.on_event = on_event});
  // Quote requests are only worth answering while their offers can still be taken.
  nostr::Filter quotes;
  quotes.kinds = std::vector<uint32_t>{protocol::kQuoteRequest};
  quotes.since = clock_.now_unix() - kOfferLifetimeSeconds;
  quote_subscription_ = pool_.subscribe({quotes}, relay::SubscriptionCallbacks{.on_event = on_event});
}

void NodeCore::stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (job_subscription_) pool_.unsubscribe(*job_subscription_);
  if (quote_subscription_) pool_.unsubscribe(*quote_subscription_);
  {
    std::lock_guard lock(inbox_mu_);
    dispatcher_stop_ = true;
  }
  wake_.notify_all();
  if (dispatcher_.joinable()) dispatcher_.join();

  // Runs are canceled; on_done leaves their records queued/running for the next start (see provider.hpp).
  std::vector<std::string> running;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, job] : jobs_by_key_) {
      if (job->in_engine) running.push_back(key);
    }
  }
  for (const auto& key : running)
    engine_.cancel(key);
  {
    std::unique_lock lock(mu_);
    if (!engine_idle_.wait_for(lock, kStopWait, [&] { return in_engine_ == 0; })) {
      spdlog::warn("provider: {} engine run(s) did not finish within {} s of stop", in_engine_,
                   std::chrono::duration_cast<std::chrono::seconds>(kStopWait).count());
    }
  }
  if (last_seen_ > last_seen_saved_) {
    (void)writer_->submit([seen = last_seen_](store::Database& db) { return save_last_seen(db, seen); }, {});
  }
  writer_->stop();
  if (started_) spdlog::info("provider: stopped");
}

ProviderStats NodeCore::stats() const {
  std::lock_guard lock(mu_);
  ProviderStats s = counts_;
  const uint32_t active = active_jobs();
  s.running = std::min(active, options_.slots);
  s.queued = active - s.running;
  return s;
}

uint32_t NodeCore::active_jobs() const {
  return static_cast<uint32_t>(jobs_by_key_.size());
}

std::string NodeCore::start_by_problem(int64_t start_by, int64_t now) {
  if (start_by <= now) return "the start-by time " + std::to_string(start_by) + " has passed";
  std::lock_guard lock(mu_);
  const uint32_t active = active_jobs();
  if (active < options_.slots) return "";
  // It would queue: the jobs ahead take about their share of the slots' time.
  const uint32_t wait_ms = eta_ms(active - options_.slots + 1);
  if (now + static_cast<int64_t>(wait_ms / 1000) > start_by) {
    return "cannot start by " + std::to_string(start_by) + ": about " + std::to_string(wait_ms / 1000) +
           " s of queued work ahead";
  }
  return "";
}

uint32_t NodeCore::jobs_ahead(const ActiveJob& job) const {
  const int rank = protocol::priority_rank(job.request.priority);
  const bool reserved = !job.reservation_id.empty();
  uint32_t ahead = 0;
  for (const auto& [key, other] : jobs_by_key_) {
    if (other.get() == &job || other->in_engine) continue;
    const bool other_reserved = !other->reservation_id.empty();
    if (other_reserved || (!reserved && protocol::priority_rank(other->request.priority) <= rank)) ++ahead;
  }
  return ahead;
}

const Reservation* NodeCore::reservation_for(const std::string& consumer_hex, int64_t now) const {
  for (const auto& r : reservations_) {
    if (r.consumer != consumer_hex || !r.active_at(now)) continue;
    uint32_t holding = 0;
    for (const auto& [key, job] : jobs_by_key_) {
      if (job->reservation_id == r.id && job->consumer.hex() == consumer_hex) ++holding;
    }
    if (holding < r.slots) return &r;
  }
  return nullptr;
}

uint32_t NodeCore::eta_ms(uint32_t jobs_ahead) const {
  const double ms = average_run_ms_ * jobs_ahead / std::max<uint32_t>(1, options_.slots);
  return static_cast<uint32_t>(std::min(ms, 3.6e6));
}

// ---- The dispatcher ----

void NodeCore::enqueue(const nostr::Event& event) {
  {
    std::lock_guard lock(inbox_mu_);
    if (dispatcher_stop_) return;
    if (inbox_.size() >= kInboxCapacity) {
      // Dropped work is not lost: a consumer that hears nothing retries or reassigns the job.
      if (dropped_events_++ % 1000 == 0) {
        spdlog::warn("provider: inbox full ({} events); dropping incoming messages", kInboxCapacity);
      }
      return;
    }
    inbox_.push_back(event);
  }
  wake_.notify_one();
}

void NodeCore::request_announce() {
  {
    std::lock_guard lock(inbox_mu_);
    announce_wanted_ = true;
  }
  wake_.notify_one();
}

void NodeCore::dispatch_loop() {
  const auto heartbeat = std::chrono::duration_cast<SteadyClock::duration>(options_.heartbeat);
  std::unique_lock lock(inbox_mu_);
  while (!dispatcher_stop_) {
    std::deque<nostr::Event> batch;
    batch.swap(inbox_);
    const auto heartbeat_at = last_announce_ + heartbeat;
    const auto change_at = last_announce_ + kMinAnnounceInterval;
    const auto now = SteadyClock::now();
    const bool heartbeat_due = now >= heartbeat_at;
    const bool change_due = announce_wanted_ && now >= change_at;
    if (batch.empty() && !heartbeat_due && !change_due) {
      wake_.wait_until(lock, announce_wanted_ ? std::min(change_at, heartbeat_at) : heartbeat_at);
      continue;
    }
    if (heartbeat_due || change_due) announce_wanted_ = false;
    lock.unlock();
    for (const auto& event : batch)
      handle_event(event);
    if (heartbeat_due || change_due) announce(heartbeat_due);
    if (heartbeat_due && last_seen_ > last_seen_saved_) {
      last_seen_saved_ = last_seen_;
      (void)writer_->submit([seen = last_seen_](store::Database& db) { return save_last_seen(db, seen); },
                            {});
    }
    lock.lock();
  }
}

void NodeCore::handle_event(const nostr::Event& event) {
  if (event.kind == protocol::kQuoteRequest) {
    handle_quote(event);
    return;
  }
  // The relay pool delivers only events whose id and signature it has verified.
  auto opened = protocol::open(event, keys_, /*signature_verified=*/true);
  if (!opened) {
    spdlog::debug("provider: ignoring event {}: {}", hex_encode(event.id), opened.error().to_string());
    return;
  }
  last_seen_ = std::max(last_seen_, opened->created_at);
  std::visit(Overloaded{[&](const protocol::JobRequest& m) { handle_request(*opened, m); },
                        [&](const protocol::JobCancel& m) { handle_cancel(*opened, m); },
                        [&](const protocol::JobReceipt& m) { handle_receipt(*opened, m); },
                        [&](const protocol::ReservationRequest& m) { handle_reservation(*opened, m); },
                        [&](const protocol::TokenCountRequest& m) { handle_token_count(*opened, m); },
                        [&](const auto&) {
                          spdlog::debug("provider: ignoring a kind {} message addressed to us", event.kind);
                        }},
             opened->message);
}

void NodeCore::reject(const nostr::PublicKey& consumer, const protocol::JobRequest& request, std::string code,
                      std::string reason, uint32_t retry_after_seconds) {
  if (code == "busy") {
    spdlog::info("provider: job {} refused: {}", request.job_id, reason);
  } else {
    spdlog::warn("provider: job {} refused ({}): {}", request.job_id, code, reason);
  }
  {
    std::lock_guard lock(mu_);
    ++counts_.rejected;
  }
  protocol::JobStatus status;
  status.job_id = request.job_id;
  status.attempt = request.attempt;
  status.status = protocol::JobStatusCode::kRejected;
  status.reason_code = std::move(code);
  status.reason = std::move(reason);
  status.retry_after_seconds = retry_after_seconds;
  auto event = protocol::seal(status, keys_, consumer, clock_.now_unix());
  if (!event) {
    spdlog::error("provider: sealing a rejection of job {}: {}", request.job_id, event.error().to_string());
    return;
  }
  publish(*event, "rejection");
}

void NodeCore::handle_request(const protocol::Opened& opened, const protocol::JobRequest& request) {
  const std::string consumer_hex = opened.sender.hex();
  const std::string key = job_key(consumer_hex, request.job_id, request.attempt);
  const std::string request_id = hex_encode(opened.event_id);
  {
    std::lock_guard lock(mu_);
    if (jobs_by_key_.count(key) != 0 || jobs_by_request_.count(request_id) != 0) {
      spdlog::debug("provider: job {} is already queued or running; request {} ignored", request.job_id,
                    request_id);
      return;
    }
  }
  // A job this node finished (or a previous process took) is answered from its record, never run again.
  // Records leave memory only after their final state is committed, so the lookup cannot miss a job.
  auto record = reader_.find(request_id, consumer_hex, request.job_id, request.attempt);
  if (!record) {
    spdlog::error("provider: reading the record of job {}: {}", request.job_id, record.error().to_string());
    reject(opened.sender, request, "busy", "the provider cannot read its job record right now", 5);
    return;
  }
  if (*record) {
    const JobRecord& r = **record;
    if (!is_finished(r.state) || r.result_event.empty()) {
      spdlog::debug("provider: job {} is recorded as {}; request {} ignored", r.job_id, to_string(r.state),
                    request_id);
      return;
    }
    auto stored = nostr::parse_event(r.result_event);
    if (!stored) {
      spdlog::error("provider: the stored result of job {} does not parse: {}", r.job_id,
                    stored.error().to_string());
      return;
    }
    spdlog::info("provider: job {} seen again; re-sending its {} result", r.job_id, to_string(r.state));
    {
      std::lock_guard lock(mu_);
      ++counts_.replayed;
    }
    publish(*stored, "stored result");
    return;
  }

  const int64_t now = clock_.now_unix();
  if (served_.count(request.model) == 0) {
    reject(opened.sender, request, "unknown-model", "model '" + request.model + "' is not served here");
    return;
  }
  if (request.deadline != 0 && request.deadline <= now) {
    reject(opened.sender, request, "deadline",
           "the deadline " + std::to_string(request.deadline) + " has passed");
    return;
  }
  if (request.start_by != 0) {
    if (auto late = start_by_problem(request.start_by, now); !late.empty()) {
      reject(opened.sender, request, "deadline", late);
      return;
    }
  }
  auto job =
      std::make_shared<ActiveJob>(key, request_id, opened.sender, request, count_words(request.prompt));
  {
    std::lock_guard lock(mu_);
    if (const Reservation* r = reservation_for(consumer_hex, now)) {
      job->reservation_id = r->id;
      job->discount_percent = r->discount_percent;
    }
  }
  const uint32_t input_tokens = job->input_tokens;
  const uint64_t estimate = estimate_cost(options_.prices, request.priority, input_tokens, request.max_tokens,
                                          job->discount_percent);
  if (request.max_cost_msat != 0 && estimate > request.max_cost_msat) {
    reject(opened.sender, request, "price-too-low",
           "the estimated cost " + std::to_string(estimate) + " msat exceeds max_cost_msat " +
               std::to_string(request.max_cost_msat));
    return;
  }
  uint32_t queue_position = 0;
  uint32_t retry_after = 0;
  {
    std::lock_guard lock(mu_);
    const uint32_t active = active_jobs();
    // A reserved job is bounded by its reservation's slots (reservation_for), not by the queue.
    if (active >= options_.slots + options_.queue && job->reservation_id.empty()) {
      // About when the next place frees up: a job's engine time spread over the slots.
      retry_after = static_cast<uint32_t>(std::clamp(
          std::ceil(average_run_ms_ / std::max<uint32_t>(1, options_.slots) / 1000.0), 1.0, 300.0));
    } else {
      job->arrival = next_arrival_++;
      // Jobs accepted but not yet handed to the engine (their record still being written) take the free
      // slots first.
      const uint32_t free_slots = options_.slots - std::min(in_engine_, options_.slots);
      const uint32_t ahead = jobs_ahead(*job);
      queue_position = active < options_.slots ? 0 : 1 + (ahead > free_slots ? ahead - free_slots : 0);
      jobs_by_key_.emplace(key, job);
      jobs_by_request_.emplace(request_id, job);
      ++counts_.accepted;
    }
  }
  if (retry_after != 0) {
    reject(opened.sender, request, "busy",
           "all " + std::to_string(options_.slots) + " slots and " + std::to_string(options_.queue) +
               " queue places are taken",
           retry_after);
    return;
  }
  request_announce();
  accept(job, queue_position);
}

void NodeCore::handle_cancel(const protocol::Opened& opened, const protocol::JobCancel& cancel) {
  // The key holds the sender, so only the job's own consumer can name it.
  const std::string key = job_key(opened.sender.hex(), cancel.job_id, cancel.attempt);
  bool in_engine = false;
  std::shared_ptr<ActiveJob> waiting;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_by_key_.find(key);
    if (it == jobs_by_key_.end()) {
      spdlog::debug("provider: cancel of job {} attempt {}: no such running job of that consumer",
                    cancel.job_id, cancel.attempt);
      return;
    }
    if (it->second->cancel_requested) return;
    it->second->cancel_requested = true;
    in_engine = it->second->in_engine;
    if (auto w = std::find(waiting_.begin(), waiting_.end(), it->second); w != waiting_.end()) {
      waiting = *w;
      waiting_.erase(w);
    }
  }
  spdlog::info("provider: job {} canceled by its consumer{}", cancel.job_id,
               cancel.reason.empty() ? "" : ": " + cancel.reason);
  // Outside mu_: a queued run's on_done runs inside cancel(). A job whose record has not committed yet is
  // finished as canceled when it does (on_accept_recorded).
  if (in_engine) engine_.cancel(key);
  if (waiting) finish(waiting, canceled_result(*waiting), JobRecordState::kCanceled);
}

void NodeCore::handle_receipt(const protocol::Opened& opened, const protocol::JobReceipt& receipt) {
  auto found = std::make_shared<bool>(false);
  auto submitted = writer_->submit(
      [found, consumer = opened.sender.hex(), receipt,
       now = clock_.now_unix()](store::Database& db) -> Status {
        auto r = record_receipt(db, consumer, receipt.job_id, receipt.attempt, receipt.cost_msat, now);
        if (!r) return tl::unexpected(r.error());
        *found = *r;
        return {};
      },
      [found, receipt](const Status& st) {
        if (!st) {
          spdlog::error("provider: recording the receipt of job {}: {}", receipt.job_id,
                        st.error().to_string());
        } else if (!*found) {
          spdlog::warn("provider: receipt for unknown job {} attempt {} ignored", receipt.job_id,
                       receipt.attempt);
        } else {
          spdlog::debug("provider: job {} settled at {} msat", receipt.job_id, receipt.cost_msat);
        }
      });
  if (!submitted)
    spdlog::warn("provider: receipt of job {} not recorded: {}", receipt.job_id,
                 submitted.error().to_string());
}

void NodeCore::handle_quote(const nostr::Event& event) {
  auto quote = protocol::parse_quote_request(event);
  if (!quote) {
    spdlog::debug("provider: ignoring quote request {}: {}", hex_encode(event.id), quote.error().to_string());
    return;
  }
  const int64_t now = clock_.now_unix();
  if (served_.count(quote->model) == 0 || (quote->deadline != 0 && quote->deadline <= now)) return;
  const uint64_t price =
      estimate_cost(options_.prices, quote->priority, quote->input_tokens, quote->max_tokens);
  if (quote->max_cost_msat != 0 && price > quote->max_cost_msat) {
    spdlog::debug("provider: no offer for quote {}: {} msat is over its cap {}", quote->quote_id, price,
                  quote->max_cost_msat);
    return;
  }
  auto requester = nostr::PublicKey::from_bytes(event.pubkey);
  if (!requester) return;
  protocol::Offer offer;
  offer.quote_id = quote->quote_id;
  offer.model = quote->model;
  offer.price_msat = price;
  offer.expires_at = now + kOfferLifetimeSeconds;
  {
    std::lock_guard lock(mu_);
    const uint32_t active = active_jobs();
    if (active >= options_.slots + options_.queue) return;
    offer.queue_position = active < options_.slots ? 0 : active - options_.slots + 1;
    offer.eta_ms = eta_ms(offer.queue_position);
    ++counts_.offers;
  }
  auto sealed = protocol::seal(offer, keys_, *requester, now);
  if (!sealed) {
    spdlog::error("provider: sealing an offer: {}", sealed.error().to_string());
    return;
  }
  publish(*sealed, "offer");
}

void NodeCore::handle_reservation(const protocol::Opened& opened,
                                  const protocol::ReservationRequest& request) {
  const std::string consumer = opened.sender.hex();
  const int64_t now = clock_.now_unix();
  protocol::ReservationAnswer answer;
  bool fresh = false;
  Reservation recorded;
  {
    std::lock_guard lock(mu_);
    std::erase_if(reservations_, [now](const Reservation& r) { return r.end <= now; });
    answer = decide_reservation(options_.reservations, reservations_, consumer, request, now);
    fresh = answer.accepted && std::none_of(reservations_.begin(), reservations_.end(), [&](const auto& r) {
              return r.consumer == consumer && r.id == request.reservation_id;
            });
    if (fresh) {
      recorded = Reservation{request.reservation_id,  consumer, answer.slots, answer.start, answer.end,
                             answer.discount_percent, now};
      reservations_.push_back(recorded);
    }
    ++(answer.accepted ? counts_.reservations_accepted : counts_.reservations_refused);
  }
  spdlog::info("provider: reservation {} from {} ({} slots, {} h): {}", request.reservation_id, consumer,
               request.slots, request.hours, answer.accepted ? "accepted" : answer.reason_code);
  auto sealed = protocol::seal(answer, keys_, opened.sender, now);
  if (!sealed) {
    spdlog::error("provider: sealing a reservation answer: {}", sealed.error().to_string());
    return;
  }
  if (!fresh) {
    publish(*sealed, "reservation answer");
    return;
  }
  // Promised only once recorded: the answer goes out after the commit, and a failed write withdraws it.
  std::weak_ptr<NodeCore> weak = weak_from_this();
  auto withdraw = [weak, consumer, id = request.reservation_id] {
    if (auto core = weak.lock()) {
      std::lock_guard lock(core->mu_);
      std::erase_if(core->reservations_,
                    [&](const Reservation& r) { return r.consumer == consumer && r.id == id; });
    }
  };
  auto submitted = writer_->submit(
      [recorded](store::Database& db) { return insert_reservation(db, recorded); },
      [weak, withdraw, event = std::move(*sealed), id = request.reservation_id](const Status& st) {
        if (!st) {
          spdlog::error("provider: recording reservation {}: {}", id, st.error().to_string());
          withdraw();
          return;
        }
        if (auto core = weak.lock()) core->publish(event, "reservation answer");
      });
  if (!submitted) {
    spdlog::warn("provider: reservation {} not recorded: {}", request.reservation_id,
                 submitted.error().to_string());
    withdraw();
  }
}

// ---- The announcement ----

void NodeCore::announce(bool even_if_unchanged) {
  protocol::Capacity capacity;
  {
    std::lock_guard lock(mu_);
    const uint32_t active = active_jobs();
    capacity.slots = options_.slots;
    capacity.queue = options_.queue;
    capacity.busy = std::min(active, options_.slots);
    capacity.queued = active - capacity.busy;
  }
  if (!even_if_unchanged && capacity.busy == announced_capacity_.busy &&
      capacity.queued == announced_capacity_.queued) {
    return;  // the load went and came back between two announcements
  }
  protocol::Announcement a;
  a.name = options_.name;
  a.hardware = hardware_;
  a.engines = {engine_.name()};
  a.models = models_;
  a.prices = options_.prices;
  a.capacity = capacity;
  a.reservations = options_.reservations;
  const int64_t ttl = 3 * static_cast<int64_t>(options_.heartbeat.count());
  auto event = protocol::make_announcement(a, keys_, clock_.now_unix(), ttl);
  if (!event) {
    spdlog::error("provider: building the announcement: {}", event.error().to_string());
    return;
  }
  announced_capacity_ = capacity;
  {
    std::lock_guard lock(inbox_mu_);
    last_announce_ = SteadyClock::now();
  }
  publish(*event, "announcement");
}

// ---- Restart recovery ----

Status NodeCore::recover_unfinished() {
  auto left = reader_.unfinished();
  if (!left) return tl::unexpected(with_context(left.error(), "provider database"));
  if (left->empty()) return {};
  spdlog::warn(
      "provider: {} job(s) were left queued or running by the previous run; answering them "
      "\"provider-restarted\"",
      left->size());
  struct Pending {
    std::mutex mu;
    std::condition_variable done;
    size_t left = 0;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = left->size();
  auto one_done = [pending] {
    std::lock_guard lock(pending->mu);
    --pending->left;
    pending->done.notify_all();
  };
  const int64_t now = clock_.now_unix();
  for (const auto& record : *left) {
    protocol::JobResult result;
    result.job_id = record.job_id;
    result.attempt = record.attempt;
    result.ok = false;
    result.error_code = "provider-restarted";
    result.error = std::string("the provider restarted while the job was ") + to_string(record.state) +
                   "; it must be run again";
    std::optional<nostr::Event> event;
    if (auto consumer = nostr::PublicKey::from_hex(record.consumer)) {
      auto sealed = protocol::seal(result, keys_, *consumer, now);
      if (sealed) event = std::move(*sealed);
    }
    if (!event)
      spdlog::error("provider: cannot address a result to {} for job {}", record.consumer, record.job_id);
    const std::string json = event ? nostr::to_json(*event) : "";
    std::weak_ptr<NodeCore> weak = weak_from_this();
    auto submitted = writer_->submit(
        [request_id = record.request_id, json, now](store::Database& db) -> Status {
          auto r = finish_job_record(db, request_id, JobRecordState::kFailed, json, 0, now);
          if (!r) return tl::unexpected(r.error());
          return {};
        },
        [weak, event, one_done, job_id = record.job_id](const Status& st) {
          if (!st) {
            spdlog::error("provider: recording job {} as restarted: {}", job_id, st.error().to_string());
          } else if (auto core = weak.lock(); core && event) {
            core->publish(*event, "restart result");
          }
          one_done();
        });
    if (!submitted) return tl::unexpected(with_context(submitted.error(), "provider database"));
  }
  std::unique_lock lock(pending->mu);
  if (!pending->done.wait_for(lock, kRecoveryWait, [&] { return pending->left == 0; })) {
    return make_error(ErrorCode::kIo,
                      "provider database: recording the jobs left by the previous run timed out");
  }
  return {};
}

// ---- Shared ----

void NodeCore::publish(const nostr::Event& event, const char* what) {
  pool_.publish_retrying(
      event, [id = hex_encode(event.id), what](const std::vector<relay::PublishOutcome>& outcomes) {
        for (const auto& o : outcomes) {
          if (o.accepted) return;
        }
        spdlog::warn("provider: no relay accepted the {} {}{}", what, id,
                     outcomes.empty() ? "" : ": " + outcomes.front().message);
      });
}

}  // namespace internal

Result<std::unique_ptr<ProviderNode>> ProviderNode::open(const ProviderOptions& options,
                                                         relay::RelayPool& pool, engine::Engine& engine,
                                                         const nostr::Keypair& keys, const Clock& clock) {
  if (options.database.empty() || options.database == ":memory:") {
    return make_error(ErrorCode::kInvalidInput,
                      "database: a file path is required (the job record must outlive the process)");
  }
  if (options.slots == 0) return make_error(ErrorCode::kInvalidInput, "slots: must be at least 1");
  if (options.heartbeat.count() <= 0)
    return make_error(ErrorCode::kInvalidInput, "heartbeat: must be positive");
  if (const auto& t = options.reservations; t.max_slots > 0) {
    if (t.max_slots > options.slots)
      return make_error(ErrorCode::kInvalidInput, "reservations.max_slots: at most the provider's slots");
    if (t.discount_percent > 100)
      return make_error(ErrorCode::kInvalidInput, "reservations.discount_percent: must be from 0 to 100");
    if (t.max_hours < 1 || t.max_hours > protocol::kMaxReservationHours)
      return make_error(ErrorCode::kInvalidInput, "reservations.max_hours: must be from 1 to 8760");
  }
  auto db = store::Database::open(options.database);
  if (!db) return tl::unexpected(db.error());
  if (auto st = internal::migrate_job_records(*db); !st) return tl::unexpected(st.error());
  auto reader = internal::JobRecordReader::open(options.database);
  if (!reader) return tl::unexpected(reader.error());
  auto writer = std::make_unique<store::BatchWriter>(std::move(*db), store::BatchWriterOptions{});

  class Node final : public ProviderNode {
   public:
    explicit Node(std::shared_ptr<internal::NodeCore> core) : core_(std::move(core)) {}
    ~Node() override { core_->stop(); }
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    Status start() override { return core_->start(); }
    void stop() override { core_->stop(); }
    ProviderStats stats() const override { return core_->stats(); }

   private:
    std::shared_ptr<internal::NodeCore> core_;
  };
  auto core = std::make_shared<internal::NodeCore>(options, pool, engine, keys, clock, std::move(writer),
                                                   std::move(*reader));
  return std::unique_ptr<ProviderNode>(std::make_unique<Node>(std::move(core)));
}

}  // namespace infernet::provider
