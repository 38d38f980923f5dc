// The job database's schema, one migration step per version (append new steps; never edit old ones).
#include "consumer/job_store_schema.hpp"

#include <array>

namespace infernet::consumer::internal {

std::span<const std::string_view> job_store_schema() {
  static constexpr std::array<std::string_view, 6> kSteps = {
      // Version 1.
      // jobs: one row per job. The spec is kept whole as JSON (it is only ever read back whole); the model
      // is a column of its own because lists filter on it. client_request_id is NULL when the client gave
      // none, so the unique index only constrains real ids.
      R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  client_request_id TEXT,
  model TEXT NOT NULL,
  spec TEXT NOT NULL,
  state TEXT NOT NULL,
  provider TEXT NOT NULL DEFAULT '',
  attempt INTEGER NOT NULL DEFAULT 0,
  output TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_msat INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_client_request_id ON jobs (client_request_id) WHERE client_request_id IS NOT NULL;
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_state_created ON jobs (state, created_at);
CREATE INDEX jobs_model_created ON jobs (model, created_at);

CREATE TABLE job_events (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE attempts (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  attempt INTEGER NOT NULL,
  provider TEXT NOT NULL,
  request_event_id TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  resume_bytes INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

CREATE TABLE results (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  attempt INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  ok INTEGER NOT NULL,
  output TEXT NOT NULL,
  error_code TEXT NOT NULL,
  error TEXT NOT NULL,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cost_msat INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, attempt)
);

CREATE TABLE receipts (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  attempt INTEGER NOT NULL,
  provider TEXT NOT NULL,
  cost_msat INTEGER NOT NULL,
  result_event_id TEXT NOT NULL,
  receipt_event_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

CREATE TABLE providers (
  pubkey TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  announcement TEXT NOT NULL,
  last_seen INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE seen_events (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX seen_events_created ON seen_events (created_at);
)sql",
      // Version 2.
      // seen_events keyed by (created_at, id): rows arrive roughly in time order and are read (at restart)
      // and pruned by time, so inserts land at the end of one B-tree instead of at a random page of the id
      // key plus the end of a second index. Nothing looks rows up by id alone.
      R"sql(
CREATE TABLE seen_events_by_time (
  created_at INTEGER NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (created_at, id)
) WITHOUT ROWID;
INSERT INTO seen_events_by_time (created_at, id) SELECT created_at, id FROM seen_events;
DROP TABLE seen_events;
ALTER TABLE seen_events_by_time RENAME TO seen_events;
)sql",
      // Version 3.
      // notifications: job status changes across all jobs, in one global order (the id, given by the node in
      // commit order), written in the same transaction as the job events they come from.
      R"sql(
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  job_id TEXT NOT NULL,
  data TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX notifications_job ON notifications (job_id, type);
)sql",
      // Version 4.
      // Job lists page by the position (created_at, id), so each list index ends in both keys: a page seeks
      // straight to its cursor, with or without a state or model filter. These replace the indexes that
      // ended in created_at alone.
      R"sql(
CREATE INDEX jobs_created_id ON jobs (created_at, id);
CREATE INDEX jobs_state_created_id ON jobs (state, created_at, id);
CREATE INDEX jobs_model_created_id ON jobs (model, created_at, id);
DROP INDEX jobs_created;
DROP INDEX jobs_state_created;
DROP INDEX jobs_model_created;
)sql",
      // Version 5.
      // provider_reputation: this consumer's own record of each provider's outcomes and measured speed, per
      // model (docs/market.md, "Reputation"); the market's score reads it.
      R"sql(
CREATE TABLE provider_reputation (
  pubkey TEXT NOT NULL,
  model TEXT NOT NULL,
  completed INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  slow INTEGER NOT NULL DEFAULT 0,
  wrong INTEGER NOT NULL DEFAULT 0,
  milli_tokens_per_second INTEGER NOT NULL DEFAULT 0,
  accept_ms INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (pubkey, model)
) WITHOUT ROWID;
)sql",
      // Version 6.
      // reservations: slots reserved with providers (consumer.hpp, ReservationRecord), as requested and as
      // answered.
      R"sql(
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  slots INTEGER NOT NULL,
  hours INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  start_at INTEGER NOT NULL DEFAULT 0,
  end_at INTEGER NOT NULL DEFAULT 0,
  discount_percent INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX reservations_created ON reservations (created_at);
)sql",
  };
  return kSteps;
}

}  // namespace infernet::consumer::internal
