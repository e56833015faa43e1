// Dataset metadata in PostgreSQL (storage/metadata.h), shared by extract workers
// and query servers:
// - tables `sluice_datasets` (version, next segment number, chain identity),
//   `sluice_tables` (each table's Arrow schema), `sluice_segments` and
//   `sluice_segment_files` (the published segment list), `sluice_block_headers`,
//   `sluice_replaced_blocks` (the reorg log), `sluice_commits` (one row per
//   version: what a reader must drop on catching up), `sluice_retired_objects`
//   (objects awaiting garbage collection); created and upgraded by numbered
//   migrations (MigratePostgres), recorded in `sluice_schema_migrations`;
// - a commit is one transaction, checked against the version it changes and
//   followed by `NOTIFY sluice_commits, '<dataset>:<version>'`;
// - the writer's lease is a session advisory lock
//   (`pg_try_advisory_lock(hashtext('sluice.extract'), hashtext(<dataset>))`)
//   held by the connection that commits: a writer that loses the connection
//   loses the lease and can commit nothing more;
// - readers LISTEN on a connection of their own, reconnecting with backoff and
//   catching up after each reconnection (no polling).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "storage/metadata.h"
#include "storage/pg.h"

namespace sluice::storage {

/// \brief Options of the PostgreSQL metadata of one dataset.
struct PgMetadataOptions {
  /// libpq connection URI, e.g. `postgresql://user@127.0.0.1:5432/sluice`; a
  /// password may also come from PGPASSWORD or ~/.pgpass.
  std::string url;
  std::string dataset;
  std::string network;
  std::chrono::seconds connect_timeout{5};
  /// Replaced blocks kept in the reorg log.
  size_t replaced_log_blocks = 4096;
  /// Rows kept in sluice_commits; a reader further behind reloads whole.
  uint64_t commit_log_versions = 100000;
  /// Readers' reconnection backoff.
  std::chrono::milliseconds reconnect_initial{100};
  std::chrono::milliseconds reconnect_max{2000};
  /// FOR TESTS ONLY: each commit waits this long inside its transaction, after
  /// writing and before COMMIT (and logs "commit paused"), so a test can kill the
  /// writer mid-commit.
  std::chrono::milliseconds testing_commit_pause{0};
};

/// \brief The PostgreSQL metadata backend.
class PgMetadata : public MetadataStore {
 public:
  /// \brief Connect and apply pending migrations. `writer`: the connection will
  /// hold the lease (TryAcquireLease) and is never silently replaced.
  static arrow::Result<std::shared_ptr<PgMetadata>> Connect(PgMetadataOptions options,
                                                            bool writer);
  ~PgMetadata() override;

  /// \brief Try to take the dataset's writer lease (non-blocking). True when
  /// this connection holds it (also when it already did).
  arrow::Result<bool> TryAcquireLease();
  /// \brief OK while the lease's connection is alive (and so the lease held).
  arrow::Status CheckLease();

  arrow::Result<MetadataState> Load() override;
  arrow::Status Commit(const CommitRecord& commit) override;
  arrow::Status SetIdentity(const ChainIdentity& identity) override;
  arrow::Result<std::optional<MetadataState>> Changes(uint64_t version,
                                                      std::optional<uint64_t> head,
                                                      uint64_t replaced_seen) override;
  arrow::Result<Retired> RetiredObjects(std::chrono::seconds grace) override;
  arrow::Status ForgetRetired(const std::vector<std::string>& objects) override;
  arrow::Status Watch(std::function<arrow::Status()> on_change,
                      std::function<void(const arrow::Status&)> on_state) override;
  void StopWatching() override;
  bool shared() const override { return true; }
  arrow::Status CheckTables(const std::vector<TableDef>& tables) override;
  std::string Describe() const override;

  /// \brief Statements run since Connect (all connections), for the cost of a
  /// query server (BENCHMARKS.md).
  uint64_t statements() const { return statements_.load(); }

 private:
  PgMetadata(PgMetadataOptions options, bool writer) : options_(std::move(options)), writer_(writer) {}
  // The connection for statements (caller holds mu_); readers reconnect it.
  arrow::Result<pg::Connection*> Conn();
  arrow::Result<pg::Result> Exec(pg::Connection* conn, const std::string& sql,
                                 const std::vector<pg::Param>& params = {});
  // The state above `headers_from` (all when nullopt) and replaced blocks with
  // id > replaced_seen, in the current transaction.
  arrow::Status ReadState(pg::Connection* conn, std::optional<uint64_t> headers_from,
                          uint64_t replaced_seen, MetadataState* state);
  void ListenLoop(std::function<arrow::Status()> on_change,
                  std::function<void(const arrow::Status&)> on_state);
  bool SleepUnlessStopping(std::chrono::milliseconds d);

  PgMetadataOptions options_;
  const bool writer_;
  std::mutex mu_;
  std::unique_ptr<pg::Connection> conn_;
  std::atomic<uint64_t> statements_{0};
  // The listener.
  std::thread listener_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  int wake_pipe_[2] = {-1, -1};
};

/// \brief Apply the pending migrations of sluice's PostgreSQL schema (`sluice
/// migrate`; every role also runs them at start). Serialized between processes
/// by a transaction advisory lock. Invalid when the database's schema is newer
/// than this sluice knows. Returns the schema version now in the database.
arrow::Result<int> MigratePostgres(const std::string& url, std::chrono::seconds timeout);

}  // namespace sluice::storage
