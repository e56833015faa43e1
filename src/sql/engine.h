// The SQL engine: an embedded DuckDB database, read-only and sandboxed, whose
// chain tables (`<dataset>.<table>`, e.g. `eth_rpc.blocks`) are views over the
// block store's Parquet segments.
//
// Each view reads `read_parquet(getvariable('sluice_files_<dataset>_<table>'))`
// filtered to `block_num BETWEEN getvariable(lo) AND getvariable(hi)`. DuckDB
// variables belong to a connection, so every Session sets them to the files of
// the snapshot it pinned: a query sees one consistent version of every dataset
// (never a half-applied append or reorg), and a streaming microbatch restricts a
// table to a block range by setting lo/hi.
//
// The sandbox: only SELECT (and EXPLAIN) statements, one per query; no table
// functions outside an allow-list (no reading files, no network); DuckDB's
// external access is disabled except for the data directory, extension loading
// is off and the configuration is locked. See sql/sandbox.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "arrow/status.h"
#include "sql/duckdb_handles.h"
#include "sql/incremental.h"
#include "sql/parameters.h"
#include "sql/scan.h"
#include "sql/scan_cache.h"
#include "storage/block_store.h"

namespace sluice::sql {

/// \brief Options of the engine, validated by Engine::Make.
struct EngineOptions {
  std::filesystem::path data_dir;  ///< the only directory the engine may read
  int64_t threads = 0;             ///< 0: one per core
  int64_t max_memory_mb = 0;       ///< 0: DuckDB's default (80% of RAM)
  /// Answer plain scans of chain tables from the segments, without DuckDB (sql/scan.h).
  bool direct_scan = true;
  /// Disk for segments kept in the answer's Arrow form (sql/scan_cache.h), in MiB,
  /// under data_dir/.scan_cache; 0: no cache.
  int64_t scan_cache_max_mb = 8192;
};

/// \brief The block range one dataset table is restricted to in a session.
struct TableRange {
  uint64_t lo = 0;
  uint64_t hi = UINT64_MAX;
};

class Session;

/// \brief A table a client can query, as Flight SQL's GetTables lists it.
struct TableInfo {
  std::string schema;  ///< dataset or derived-table schema, e.g. "eth_rpc"
  std::string name;    ///< e.g. "blocks"
  std::string type;    ///< "TABLE" (extracted chain table) or "VIEW" (derived table)
  std::shared_ptr<arrow::Schema> arrow_schema;  ///< the columns of `SELECT *`
};

/// \brief The embedded engine. Thread-safe; create sessions per query.
class Engine {
 public:
  static arrow::Result<std::unique_ptr<Engine>> Make(const EngineOptions& options);
  ~Engine();

  /// \brief Expose a dataset's tables as views `<dataset>.<table>`. Call before
  /// serving; the store must outlive the engine.
  arrow::Status AddDataset(storage::BlockStore* store);

  /// \brief Define `<schema>.<table>` as a view of `sql` (one SELECT over the chain
  /// tables, checked by the sandbox). Call after AddDataset, before serving.
  /// Invalid for a malformed name, refused SQL or a binding error.
  arrow::Status AddDerivedTable(const std::string& name, const std::string& sql);

  /// \brief A new session pinned to the current snapshot of every dataset, or to
  /// the snapshot given in `pinned` for the datasets it names. IOError when a
  /// dataset's store is not available (a query server that lost PostgreSQL:
  /// storage::BlockStore::Available).
  arrow::Result<std::unique_ptr<Session>> OpenSession(
      const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& pinned = {});

  /// \brief The registered stores, by dataset name.
  const std::map<std::string, storage::BlockStore*>& datasets() const { return datasets_; }

  /// \brief The name of the engine's one catalog (DuckDB's database name).
  const std::string& catalog() const { return catalog_; }
  /// \brief Every table a query can read: the chain tables of each dataset and the
  /// derived tables, sorted by schema and name. Computed once, when first asked.
  arrow::Result<std::vector<TableInfo>> ListTables();
  /// \brief Whether `name` (lower case, as the parse tree spells it) is an
  /// aggregate function of this engine.
  bool IsAggregate(const std::string& name) const { return aggregates_.count(name) > 0; }

 private:
  friend class Session;
  Engine() = default;
  arrow::Status LockDown();
  Database db_;
  Connection admin_;  // creates schemas and views; never runs user SQL
  std::map<std::string, storage::BlockStore*> datasets_;
  std::set<std::string> aggregates_;
  std::map<std::string, nlohmann::json> derived_trees_;  // "schema.table" -> parse tree
  std::string catalog_;
  std::optional<std::vector<TableInfo>> tables_;  // ListTables, once computed
  bool direct_scan_ = true;
  std::shared_ptr<ScanCache> scan_cache_;  // null: off
  bool locked_ = false;
  std::mutex mu_;
};

/// \brief At most about this many bytes per record batch (docs/security.md):
/// batches of wide rows are cut before `rows_per_batch` rows, so that one
/// message stays far below gRPC's 2 GiB and a stream holds little memory.
inline constexpr int64_t kMaxBatchBytes = int64_t{64} << 20;

/// \brief Batches of wide rows end at about this many bytes unless the client set
/// a fetch size: large messages cost more than they save (bench/FIXES.md).
inline constexpr int64_t kDefaultBatchBytes = int64_t{512} << 10;

/// \brief The result of a query, read as Arrow record batches of at most
/// `rows_per_batch` rows, exactly that many (but the last) when the client asked
/// for a fetch size. Without one, a batch ends early once it holds about
/// `soft_batch_bytes` of Arrow buffers (kDefaultBatchBytes), and never grows past
/// kMaxBatchBytes (a row larger than that is a batch of its own). Streams: memory
/// stays at about one batch. ReadNext returns a null batch at the end, Cancelled
/// once the session is interrupted.
///
/// DuckDB answers most queries (its streaming result, 2048-row chunks coalesced and
/// cut); a plain scan of a chain table is read directly from the segments
/// (sql/scan.h) with the same schema, rows and order.
class ResultReader : public arrow::RecordBatchReader {};

/// \brief A connection pinned to one snapshot per dataset. One query at a time;
/// Interrupt() may be called from another thread.
class Session {
 public:
  ~Session();

  /// \brief Check a query against the sandbox and plan it: Invalid (with DuckDB's
  /// message, or naming what the sandbox refuses) when it cannot run here.
  /// Returns the Arrow schema of its result. With `params` (sql/parameters.h) they
  /// are bound first; the schema then comes from starting the query, as DuckDB
  /// types placeholders only once bound.
  arrow::Result<std::shared_ptr<arrow::Schema>> Prepare(const std::string& sql,
                                                        const Parameters& params = nullptr);

  /// \brief Run a query (checked as in Prepare) with `params` bound and stream its
  /// result. Invalid when the parameters do not match the placeholders.
  arrow::Result<std::unique_ptr<ResultReader>> Execute(const std::string& sql,
                                                       int64_t rows_per_batch,
                                                       const Parameters& params = nullptr,
                                                       int64_t soft_batch_bytes = kDefaultBatchBytes);

  /// \brief Check a query as Prepare does, without binding its placeholders.
  /// Returns the result schema if DuckDB knows it without the parameters' types
  /// (else null) and the placeholders' schema (null when their types are unknown).
  arrow::Result<std::pair<std::shared_ptr<arrow::Schema>, std::shared_ptr<arrow::Schema>>>
  Describe(const std::string& sql);

  /// \brief Check that a query can run as a streaming query (sql/incremental.h)
  /// and describe what it reads. Invalid "NonIncrementalOp: …" when it cannot.
  arrow::Result<IncrementalInfo> CheckStreaming(const std::string& sql);

  /// \brief Restrict `<dataset>.<table>` to [range.lo, range.hi] for the next queries.
  arrow::Status SetTableRange(const std::string& dataset, const std::string& table,
                              TableRange range);

  /// \brief Stop the running query; its reader then fails with Cancelled.
  void Interrupt();

  /// \brief The snapshots this session reads, by dataset name.
  const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& snapshots() const {
    return snapshots_;
  }

 private:
  friend class Engine;
  Session() = default;
  // `schema_only`: only the result's schema is wanted (see the .cc).
  arrow::Result<PreparedStatement> CheckedPrepare(const std::string& sql,
                                                  bool schema_only = false);
  // `empty_files_only`: point every view at its table's empty file alone.
  arrow::Status ApplyVariables(bool empty_files_only = false);
  // Segments in an object store: fetch the files of the tables the checked query
  // reads (within the session's ranges) into the local cache, pinned for the
  // session's life or until the table's range changes.
  arrow::Status FetchSegments();
  // A direct scan (sql/scan.h) of the checked query, or null when DuckDB answers.
  std::unique_ptr<ResultReader> DirectScan(duckdb_prepared_statement stmt, int64_t rows_per_batch,
                                           int64_t soft_batch_bytes);

  Engine* engine_ = nullptr;
  Connection conn_;
  std::map<std::string, std::shared_ptr<const storage::Snapshot>> snapshots_;
  std::map<std::string, TableRange> ranges_;  // key: dataset.table
  std::map<std::string, std::shared_ptr<void>> fetched_;  // key: dataset.table; cache pins
  bool variables_dirty_ = true;
  bool empty_files_only_ = false;  // what ApplyVariables last set
  std::string checked_sql_;     // the last query that passed the sandbox
  nlohmann::json checked_tree_;  // its parse tree
  // Set by Interrupt(), cleared by Execute: stops a direct scan.
  std::shared_ptr<std::atomic<bool>> interrupted_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace sluice::sql
