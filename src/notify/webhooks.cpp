#include "notify/webhooks.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "net/http_client.hpp"
#include "net/listen_address.hpp"
#include "notify/signature.hpp"

namespace infernet::notify {
namespace {

// Without a retry due, the thread still looks again this often (a webhook enabled again, a missed wake).
constexpr std::chrono::seconds kIdleRecheck{30};
constexpr size_t kMaxTypes = 16;

int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status check_webhook(const WebhookSpec& spec) {
  if (spec.url.empty()) return make_error(ErrorCode::kInvalidInput, "url: required");
  if (spec.url.size() > kMaxWebhookUrlBytes) {
    return make_error(ErrorCode::kInvalidInput,
                      "url: longer than " + std::to_string(kMaxWebhookUrlBytes) + " bytes");
  }
  auto url = net::parse_http_url(spec.url);
  if (!url) return make_error(ErrorCode::kInvalidInput, "url: " + url.error().message);
  if (url->tls) {
    return make_error(ErrorCode::kInvalidInput,
                      "url: https is not supported; deliveries are plain http (use a local TLS proxy)");
  }
  if (spec.types.size() > kMaxTypes) {
    return make_error(ErrorCode::kInvalidInput, "types: at most " + std::to_string(kMaxTypes));
  }
  const auto& known = consumer::notification_types();
  for (size_t i = 0; i < spec.types.size(); ++i) {
    const std::string& t = spec.types[i];
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      return make_error(ErrorCode::kInvalidInput, "types: unknown type \"" + t.substr(0, 64) + "\"");
    }
    if (std::find(spec.types.begin(), spec.types.begin() + static_cast<std::ptrdiff_t>(i), t) !=
        spec.types.begin() + static_cast<std::ptrdiff_t>(i)) {
      return make_error(ErrorCode::kInvalidInput, "types: \"" + t + "\" given twice");
    }
  }
  if (!spec.secret.empty()) {
    const bool printable =
        std::all_of(spec.secret.begin(), spec.secret.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (!printable || spec.secret.size() < kMinSecretBytes || spec.secret.size() > kMaxSecretBytes) {
      return make_error(ErrorCode::kInvalidInput, "secret: must be " + std::to_string(kMinSecretBytes) +
                                                      " to " + std::to_string(kMaxSecretBytes) +
                                                      " printable ASCII characters without spaces");
    }
  }
  return {};
}

Sender http_sender(std::chrono::milliseconds timeout) {
  return [timeout](const Delivery& d) -> Result<int> {
    auto url = net::parse_http_url(d.url);
    if (!url) return tl::unexpected(url.error());
    net::HttpClientOptions options;
    options.timeout = timeout;
    options.user_agent = "infernet-webhook";
    for (const auto& h : d.headers) {
      if (h.first != "Content-Type") options.headers.push_back(h);
    }
    auto client = net::HttpClient::create(
        "http://" + net::url_host(url->host) + ":" + std::to_string(url->port), std::move(options));
    if (!client) return tl::unexpected(client.error());
    // Only the status matters: the body of the answer, however large, is not read.
    net::HttpStreamHandlers handlers;
    handlers.on_head = [](const net::HttpResponseHead&) { return false; };
    auto head = client->request_streaming("POST", url->target, d.body, "application/json", handlers);
    if (!head) return tl::unexpected(head.error());
    return head->status;
  };
}

Result<std::unique_ptr<Webhooks>> Webhooks::open(consumer::ConsumerNode& consumer, WebhooksOptions options) {
  auto store = WebhookStore::open(options.database);
  if (!store) return tl::unexpected(store.error());
  return std::make_unique<Webhooks>(consumer, std::move(options), std::move(*store));
}

Webhooks::Webhooks(consumer::ConsumerNode& consumer, WebhooksOptions options,
                   std::unique_ptr<WebhookStore> store)
    : consumer_(consumer),
      options_(std::move(options)),
      store_(std::move(store)),
      outbox_(
          *store_, [&consumer](uint64_t after, size_t limit) { return consumer.notifications(after, limit); },
          options_.sender ? options_.sender : http_sender(options_.delivery_timeout), options_.outbox) {}

Webhooks::~Webhooks() {
  stop();
}

Status Webhooks::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return {};
  auto latest = consumer_.last_notification_id();
  if (!latest) return tl::unexpected(latest.error());
  outbox_.note_latest(*latest);
  // Only a wake-up: the outbox reads what to send from the log itself.
  auto handle = consumer_.watch_all(*latest, [this](const consumer::Notification& n) {
    outbox_.note_latest(n.id);
    wake();
  });
  if (!handle) return tl::unexpected(handle.error());
  watch_ = *handle;
  stopping_ = false;
  woken_ = true;
  thread_ = std::thread([this] { loop(); });
  return {};
}

void Webhooks::stop() {
  uint64_t watch = 0;
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    std::swap(watch, watch_);
  }
  if (watch != 0) consumer_.unwatch_all(watch);
  cv_.notify_all();
  thread_.join();
}

void Webhooks::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Webhooks::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    woken_ = false;
    lock.unlock();
    int64_t due = 0;
    if (auto polled = outbox_.poll(); polled) {
      due = *polled;
    } else {
      spdlog::warn("webhooks: {}", polled.error().to_string());
      due = system_now_ms() + 1000;
    }
    lock.lock();
    const auto now = std::chrono::system_clock::now();
    auto until = now + kIdleRecheck;
    if (due != 0)
      until = std::min(until, std::chrono::system_clock::time_point(std::chrono::milliseconds(due)));
    cv_.wait_until(lock, until, [this] { return stopping_ || woken_; });
  }
}

Result<Webhook> Webhooks::add(const WebhookSpec& spec) {
  if (auto st = check_webhook(spec); !st) return tl::unexpected(st.error());
  auto existing = store_->list();
  if (!existing) return tl::unexpected(existing.error());
  if (existing->size() >= kMaxWebhooks) {
    return make_error(ErrorCode::kLimitExceeded, "webhooks: at most " + std::to_string(kMaxWebhooks));
  }
  auto latest = consumer_.last_notification_id();
  if (!latest) return tl::unexpected(latest.error());
  Webhook w;
  w.url = spec.url;
  w.types = spec.types;
  w.secret = spec.secret.empty() ? new_webhook_secret() : spec.secret;
  w.created_at = system_now_ms();
  w.cursor = *latest;
  auto added = store_->add(std::move(w));
  if (added) wake();
  return added;
}

Result<std::vector<Webhook>> Webhooks::list() {
  return store_->list();
}

Status Webhooks::remove(uint64_t id) {
  return store_->remove(id);
}

Result<Webhook> Webhooks::enable(uint64_t id) {
  auto w = store_->get(id);
  if (!w || w->disabled_reason.empty()) return w;
  w->disabled_reason.clear();
  w->failures = 0;
  w->failing_since = 0;
  w->next_attempt_at = 0;
  if (auto st = store_->save_outbox(*w); !st) return tl::unexpected(st.error());
  wake();
  return w;
}

}  // namespace infernet::notify
