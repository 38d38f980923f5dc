// The provider_reputation table of the job database (schema version 4): written through the batch writer
// like every other change, read once at start-up.
#include <cmath>

#include "consumer/job_store.hpp"
#include "store/sqlite.hpp"

namespace infernet::consumer {
namespace {

// Speeds are stored in thousandths of a token per second: the database layer binds integers only.
int64_t to_milli(double v) {
  return v <= 0 || !std::isfinite(v) ? 0 : static_cast<int64_t>(std::llround(std::min(v, 1e12) * 1000.0));
}

}  // namespace

Status JobStore::save_reputation(ReputationRecord r) {
  return writer_->submit(
      [r = std::move(r)](store::Database& db) -> Status {
        auto stmt = db.cached(
            "INSERT OR REPLACE INTO provider_reputation (pubkey, model, completed, failed, slow, wrong, "
            "milli_tokens_per_second, accept_ms, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (!stmt) return tl::unexpected(stmt.error());
        store::Statement& s = **stmt;
        const market::Reputation& rep = r.observed.reputation;
        for (auto st : {s.bind_text(1, r.pubkey), s.bind_text(2, r.model),
                        s.bind_int64(3, static_cast<int64_t>(rep.completed)),
                        s.bind_int64(4, static_cast<int64_t>(rep.failed)),
                        s.bind_int64(5, static_cast<int64_t>(rep.slow)),
                        s.bind_int64(6, static_cast<int64_t>(rep.wrong)),
                        s.bind_int64(7, to_milli(r.observed.tokens_per_second)),
                        s.bind_int64(8, std::llround(std::max(0.0, r.observed.accept_ms))),
                        s.bind_int64(9, r.updated_at)}) {
          if (!st) return st;
        }
        auto step = s.step();
        if (!step) return tl::unexpected(step.error());
        return {};
      },
      nullptr);
}

Result<std::vector<ReputationRecord>> JobStore::reputations() {
  auto db = store::Database::open(path_, {.read_only = true});
  if (!db) return tl::unexpected(db.error());
  auto stmt = db->prepare(
      "SELECT pubkey, model, completed, failed, slow, wrong, milli_tokens_per_second, accept_ms, updated_at "
      "FROM provider_reputation ORDER BY pubkey, model");
  if (!stmt) return tl::unexpected(stmt.error());
  std::vector<ReputationRecord> out;
  for (;;) {
    auto step = stmt->step();
    if (!step) return tl::unexpected(step.error());
    if (*step == store::Statement::Step::kDone) break;
    ReputationRecord r;
    r.pubkey = std::string(stmt->column_text(0));
    r.model = std::string(stmt->column_text(1));
    auto count = [&](int c) { return static_cast<uint64_t>(std::max<int64_t>(0, stmt->column_int64(c))); };
    r.observed.reputation = {count(2), count(3), count(4), count(5)};
    r.observed.tokens_per_second = static_cast<double>(stmt->column_int64(6)) / 1000.0;
    r.observed.accept_ms = static_cast<double>(stmt->column_int64(7));
    r.updated_at = stmt->column_int64(8);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace infernet::consumer
