// The PostgreSQL schema of sluice's metadata (storage/pg_metadata.h), as
// numbered migrations recorded in `sluice_schema_migrations`.
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "storage/pg_metadata.h"

using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

// The schema, one migration per step; never edit a released step, add one.
const std::vector<std::pair<const char*, const char*>>& Migrations() {
  static const std::vector<std::pair<const char*, const char*>> steps = {
      {"datasets, segments, headers, reorg log, commits, retired objects", R"sql(
CREATE TABLE sluice_datasets (
  name         text PRIMARY KEY,
  network      text NOT NULL,
  version      bigint NOT NULL DEFAULT 0,
  next_seq     bigint NOT NULL DEFAULT 1,
  chain_id     numeric(20, 0),
  genesis_hash bytea,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sluice_tables (
  dataset      text NOT NULL REFERENCES sluice_datasets (name) ON DELETE CASCADE,
  name         text NOT NULL,
  arrow_schema text NOT NULL,
  PRIMARY KEY (dataset, name)
);
CREATE TABLE sluice_segments (
  dataset     text NOT NULL REFERENCES sluice_datasets (name) ON DELETE CASCADE,
  seq         bigint NOT NULL,
  first_block bigint NOT NULL,
  last_block  bigint NOT NULL,
  PRIMARY KEY (dataset, seq)
);
CREATE TABLE sluice_segment_files (
  dataset    text NOT NULL,
  seq        bigint NOT NULL,
  table_name text NOT NULL,
  object     text NOT NULL,
  rows       bigint NOT NULL,
  bytes      bigint NOT NULL,
  PRIMARY KEY (dataset, seq, table_name),
  FOREIGN KEY (dataset, seq) REFERENCES sluice_segments (dataset, seq) ON DELETE CASCADE
);
CREATE TABLE sluice_block_headers (
  dataset     text NOT NULL REFERENCES sluice_datasets (name) ON DELETE CASCADE,
  number      bigint NOT NULL,
  hash        bytea NOT NULL,
  parent_hash bytea NOT NULL,
  timestamp   bigint NOT NULL,
  PRIMARY KEY (dataset, number)
);
CREATE TABLE sluice_replaced_blocks (
  id          bigserial PRIMARY KEY,
  dataset     text NOT NULL REFERENCES sluice_datasets (name) ON DELETE CASCADE,
  number      bigint NOT NULL,
  hash        bytea NOT NULL,
  parent_hash bytea NOT NULL,
  timestamp   bigint NOT NULL,
  version     bigint NOT NULL
);
CREATE INDEX sluice_replaced_blocks_dataset ON sluice_replaced_blocks (dataset, id);
CREATE TABLE sluice_commits (
  dataset         text NOT NULL REFERENCES sluice_datasets (name) ON DELETE CASCADE,
  version         bigint NOT NULL,
  truncated_after bigint,
  committed_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataset, version)
);
CREATE TABLE sluice_retired_objects (
  dataset    text NOT NULL REFERENCES sluice_datasets (name) ON DELETE CASCADE,
  object     text NOT NULL,
  version    bigint NOT NULL,
  retired_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataset, object)
);
)sql"},
  };
  return steps;
}

}  // namespace

Result<int> MigratePostgres(const std::string& url, std::chrono::seconds timeout) {
  ARROW_ASSIGN_OR_RAISE(auto conn, pg::Connection::Open(url, timeout));
  ARROW_RETURN_NOT_OK(conn->Exec("BEGIN").status());
  pg::Transaction tx(conn.get());
  // One migrating process at a time (the key: 'sluice' in ASCII).
  ARROW_RETURN_NOT_OK(conn->Exec("SELECT pg_advisory_xact_lock(1936487779)").status());
  ARROW_RETURN_NOT_OK(conn->ExecScript(
      "CREATE TABLE IF NOT EXISTS sluice_schema_migrations ("
      " version int PRIMARY KEY, description text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now())"));
  ARROW_ASSIGN_OR_RAISE(auto res,
                        conn->Exec("SELECT coalesce(max(version), 0) FROM sluice_schema_migrations"));
  const int have = static_cast<int>(res.Int(0, 0));
  const int known = static_cast<int>(Migrations().size());
  if (have > known) {
    return Status::Invalid("PostgreSQL schema version ", have, " is newer than this sluice knows (",
                           known, "); upgrade sluice");
  }
  for (int v = have + 1; v <= known; ++v) {
    const auto& [description, sql] = Migrations()[v - 1];
    ARROW_RETURN_NOT_OK(conn->ExecScript(sql));
    ARROW_RETURN_NOT_OK(conn->Exec("INSERT INTO sluice_schema_migrations (version, description) "
                                   "VALUES ($1, $2)",
                                   {std::to_string(v), std::string(description)})
                            .status());
    LOG_INFO("PostgreSQL: applied migration {} ({})", v, description);
  }
  ARROW_RETURN_NOT_OK(conn->Exec("COMMIT").status());
  tx.Done();
  return known;
}

}  // namespace sluice::storage
