#include "api/job_stream.hpp"

#include <mutex>
#include <optional>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/job_json.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;
using consumer::ConsumerNode;
using consumer::JobEvent;
using consumer::JobRecord;
using consumer::JobState;

// Named after the consumer guide's socket.on('progress' | 'result' | 'complete'), so the JS SDK maps each
// message type to an event of the same name.
const char* final_message_type(JobState state) {
  switch (state) {
    case JobState::kCompleted:
      return "complete";
    case JobState::kFailed:
      return "error";
    case JobState::kCanceled:
      return "canceled";
    case JobState::kExpired:
      return "expired";
    default:
      return "error";
  }
}

// The state a "state" event moves the job to: its data's "state" member (docs/api.md).
std::optional<JobState> state_named_by(const JobEvent& event) {
  if (event.type != "state") return std::nullopt;
  boost::system::error_code ec;
  json::value data = json::parse(event.data, ec);
  if (ec || !data.is_object()) return std::nullopt;
  const json::value* state = data.get_object().if_contains("state");
  if (state == nullptr || !state->is_string()) return std::nullopt;
  auto parsed = consumer::parse_job_state(std::string_view(state->get_string()));
  if (!parsed) return std::nullopt;
  return *parsed;
}

std::string event_message(const JobEvent& event) {
  return json::serialize(json::object{{"type", json_safe(event.type)},
                                      {"seq", event.seq},
                                      {"job_id", json_safe(event.job_id)},
                                      {"at", event.at},
                                      {"data", event_data(event)}});
}

std::string final_message(const JobRecord& job, JobState state, uint64_t seq) {
  return json::serialize(json::object{{"type", final_message_type(state)},
                                      {"final", true},
                                      {"seq", seq},
                                      {"job_id", json_safe(job.id)},
                                      {"data", job_to_json(job)}});
}

void close_for(net::WebSocketConnection& connection, const Error& error) {
  uint16_t code = error.code == ErrorCode::kNotFound       ? kCloseNotFound
                  : error.code == ErrorCode::kInvalidInput ? kCloseInvalidInput
                                                           : 1011;
  connection.close(code, error.message);
}

// One connection following one job. Events arrive on the consumer's threads (on_event), the start and the
// end on the connection's strand, and the final message is sent from a deferred task: it reads the job from
// the database, and a watch callback must not block the consumer's thread.
class JobStream : public std::enable_shared_from_this<JobStream> {
 public:
  JobStream(ConsumerNode& consumer, Defer defer, std::shared_ptr<net::WebSocketConnection> connection,
            std::string job_id)
      : consumer_(consumer),
        defer_(std::move(defer)),
        connection_(std::move(connection)),
        job_id_(std::move(job_id)) {}

  void start(uint64_t after) {
    auto job = consumer_.get(job_id_);
    if (!job) return close_for(*connection_, job.error());
    if (consumer::is_final(job->state)) {
      // Nothing more will happen: replay what is stored and close, without a watch.
      auto events = consumer_.events(job_id_, after);
      if (!events) return close_for(*connection_, events.error());
      uint64_t last = after;
      for (const auto& event : *events) {
        connection_->send(event_message(event));
        last = event.seq;
      }
      send_final(*job, job->state, last);
      return;
    }
    auto self = shared_from_this();
    auto handle = consumer_.watch(job_id_, after, [self](const JobEvent& event) { self->on_event(event); });
    if (!handle) return close_for(*connection_, handle.error());
    std::lock_guard lock(mu_);
    watch_ = *handle;
  }

  // The connection has ended.
  void stop() {
    {
      std::lock_guard lock(mu_);
      ended_ = true;
    }
    release_watch();
  }

 private:
  void on_event(const JobEvent& event) {
    std::optional<JobState> state = state_named_by(event);
    bool final = state && consumer::is_final(*state);
    {
      std::lock_guard lock(mu_);
      if (finishing_ || ended_) return;
      connection_->send(event_message(event));
      finishing_ = final;
    }
    if (final) {
      defer_([self = shared_from_this(), final_state = *state, seq = event.seq] {
        self->finish(final_state, seq);
      });
    }
  }

  void finish(JobState state, uint64_t seq) {
    release_watch();
    auto job = consumer_.get(job_id_);
    if (!job) return close_for(*connection_, job.error());
    send_final(*job, consumer::is_final(job->state) ? job->state : state, seq);
  }

  void send_final(const JobRecord& job, JobState state, uint64_t seq) {
    connection_->send(final_message(job, state, seq));
    connection_->close(1000, std::string("job ") + consumer::to_string(state));
  }

  void release_watch() {
    uint64_t handle = 0;
    {
      std::lock_guard lock(mu_);
      std::swap(handle, watch_);
    }
    if (handle != 0) consumer_.unwatch(handle);
  }

  ConsumerNode& consumer_;
  Defer defer_;
  std::shared_ptr<net::WebSocketConnection> connection_;
  const std::string job_id_;
  std::mutex mu_;
  bool finishing_ = false;  // guarded by mu_: the final state event was sent; nothing else is
  bool ended_ = false;      // guarded by mu_: the connection has ended
  uint64_t watch_ = 0;      // guarded by mu_: the watch handle, 0 when none
};

class JobStreamHandler : public net::WebSocketHandler {
 public:
  explicit JobStreamHandler(std::shared_ptr<JobStream> stream) : stream_(std::move(stream)) {}
  void on_text(std::string_view) override {}
  void on_close() override { stream_->stop(); }

 private:
  std::shared_ptr<JobStream> stream_;
};

class RefusedStreamHandler : public net::WebSocketHandler {
 public:
  void on_text(std::string_view) override {}
  void on_close() override {}
};

}  // namespace

std::unique_ptr<net::WebSocketHandler> open_job_stream(consumer::ConsumerNode& consumer, Defer defer,
                                                       std::shared_ptr<net::WebSocketConnection> connection,
                                                       const std::string& job_id, uint64_t after) {
  auto stream = std::make_shared<JobStream>(consumer, std::move(defer), std::move(connection), job_id);
  stream->start(after);
  return std::make_unique<JobStreamHandler>(std::move(stream));
}

std::unique_ptr<net::WebSocketHandler> refuse_stream(net::WebSocketConnection& connection, uint16_t code,
                                                     std::string reason) {
  connection.close(code, std::move(reason));
  return std::make_unique<RefusedStreamHandler>();
}

}  // namespace infernet::api
