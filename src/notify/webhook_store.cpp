#include "notify/webhook_store.hpp"

#include <array>
#include <string_view>

namespace infernet::notify {
namespace {

constexpr std::array<std::string_view, 1> kSchema = {
    // Version 1. types: a comma-separated list ("" for all).
    R"sql(
CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  types TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  cursor INTEGER NOT NULL,
  delivered INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  failing_since INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  disabled_reason TEXT NOT NULL DEFAULT ''
);
)sql",
};

std::string join_types(const std::vector<std::string>& types) {
  std::string out;
  for (const auto& t : types)
    out += (out.empty() ? "" : ",") + t;
  return out;
}

std::vector<std::string> split_types(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return out;
}

Status step_done(store::Statement& s) {
  auto step = s.step();
  s.reset();
  if (!step) return tl::unexpected(step.error());
  return {};
}

}  // namespace

Result<std::unique_ptr<WebhookStore>> WebhookStore::open(const std::string& path) {
  auto db = store::Database::open(path);
  if (!db) return tl::unexpected(with_context(db.error(), "webhook database " + path));
  if (auto st = store::migrate(*db, kSchema); !st) {
    return tl::unexpected(with_context(st.error(), "webhook database " + path));
  }
  return std::make_unique<WebhookStore>(std::move(*db));
}

Result<Webhook> WebhookStore::add(Webhook w) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(
      "INSERT INTO webhooks (url, types, secret, created_at, cursor, next_attempt_at) VALUES (?, ?, ?, ?, ?, "
      "?)");
  if (!s) return tl::unexpected(s.error());
  Status b = s->bind_text(1, w.url);
  if (b) b = s->bind_text(2, join_types(w.types));
  if (b) b = s->bind_text(3, w.secret);
  if (b) b = s->bind_int64(4, w.created_at);
  if (b) b = s->bind_int64(5, static_cast<int64_t>(w.cursor));
  if (b) b = s->bind_int64(6, w.next_attempt_at);
  if (b) b = step_done(*s);
  if (!b) return tl::unexpected(b.error());
  w.id = static_cast<uint64_t>(db_.last_insert_rowid());
  return w;
}

Result<std::vector<Webhook>> WebhookStore::query(const std::string& where, std::optional<uint64_t> id) {
  auto s = db_.prepare(
      "SELECT id, url, types, secret, created_at, cursor, delivered, failures, failing_since, "
      "next_attempt_at, last_error, disabled_reason FROM webhooks " +
      where + " ORDER BY id");
  if (!s) return tl::unexpected(s.error());
  if (id) {
    if (auto b = s->bind_int64(1, static_cast<int64_t>(*id)); !b) return tl::unexpected(b.error());
  }
  std::vector<Webhook> out;
  for (;;) {
    auto step = s->step();
    if (!step) return tl::unexpected(step.error());
    if (*step == store::Statement::Step::kDone) return out;
    Webhook w;
    w.id = static_cast<uint64_t>(s->column_int64(0));
    w.url = std::string(s->column_text(1));
    w.types = split_types(s->column_text(2));
    w.secret = std::string(s->column_text(3));
    w.created_at = s->column_int64(4);
    w.cursor = static_cast<uint64_t>(s->column_int64(5));
    w.delivered = static_cast<uint64_t>(s->column_int64(6));
    w.failures = static_cast<uint32_t>(s->column_int64(7));
    w.failing_since = s->column_int64(8);
    w.next_attempt_at = s->column_int64(9);
    w.last_error = std::string(s->column_text(10));
    w.disabled_reason = std::string(s->column_text(11));
    out.push_back(std::move(w));
  }
}

Result<std::vector<Webhook>> WebhookStore::list() {
  std::lock_guard lock(mu_);
  return query("", std::nullopt);
}

Result<Webhook> WebhookStore::get(uint64_t id) {
  std::lock_guard lock(mu_);
  auto rows = query("WHERE id = ?", id);
  if (!rows) return tl::unexpected(rows.error());
  if (rows->empty()) return make_error(ErrorCode::kNotFound, "webhook " + std::to_string(id) + " not found");
  return std::move(rows->front());
}

Status WebhookStore::remove(uint64_t id) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare("DELETE FROM webhooks WHERE id = ?");
  if (!s) return tl::unexpected(s.error());
  Status b = s->bind_int64(1, static_cast<int64_t>(id));
  if (b) b = step_done(*s);
  if (!b) return b;
  if (db_.changes() == 0)
    return make_error(ErrorCode::kNotFound, "webhook " + std::to_string(id) + " not found");
  return {};
}

Status WebhookStore::save_outbox(const Webhook& w) {
  std::lock_guard lock(mu_);
  auto s = db_.prepare(
      "UPDATE webhooks SET cursor = ?, delivered = ?, failures = ?, failing_since = ?, next_attempt_at = ?, "
      "last_error = ?, disabled_reason = ? WHERE id = ?");
  if (!s) return tl::unexpected(s.error());
  Status b = s->bind_int64(1, static_cast<int64_t>(w.cursor));
  if (b) b = s->bind_int64(2, static_cast<int64_t>(w.delivered));
  if (b) b = s->bind_int64(3, w.failures);
  if (b) b = s->bind_int64(4, w.failing_since);
  if (b) b = s->bind_int64(5, w.next_attempt_at);
  if (b) b = s->bind_text(6, w.last_error);
  if (b) b = s->bind_text(7, w.disabled_reason);
  if (b) b = s->bind_int64(8, static_cast<int64_t>(w.id));
  if (b) b = step_done(*s);
  if (!b) return b;
  if (db_.changes() == 0) {
    return make_error(ErrorCode::kNotFound, "webhook " + std::to_string(w.id) + " not found");
  }
  return {};
}

}  // namespace infernet::notify
