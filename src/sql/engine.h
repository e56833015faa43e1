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
#include "sql/evm_functions.h"
#include "sql/evm_rewrite.h"
#include "sql/incremental.h"
#include "sql/parameters.h"
#include "sql/query_cache.h"
#include "sql/query_normalize.h"
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
  /// eth_call's per-query limit (sql/evm_call.h); nodes are added by AddEthCall.
  EthCallOptions eth_call;
};

/// \brief The block range one dataset table is restricted to in a session.
struct TableRange {
  uint64_t lo = 0;
  uint64_t hi = UINT64_MAX;
};

/// \brief How a streaming query runs (Session::CheckStreaming).
struct StreamingCheck {
  IncrementalInfo info;
  /// The query that computes a microbatch's rows (sql/delta_rewrite.h) from the
  /// tables as Session::SetMicrobatch sets them; empty when the query reads one
  /// table without grouping (it then runs as written, the table restricted to the
  /// microbatch's blocks).
  std::string delta_sql;
  /// The delta's last column is the rows' block (kBlockColumn), and its rows come
  /// in block order; a client never sees that column.
  bool ordered = false;
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

  /// \brief Let eth_call in queries ask `call` (the dataset's node, sql/evm_call.h):
  /// plain `eth_call(…)` when it is the only dataset with a node, and
  /// `<dataset>.eth_call(…)` always (a macro in the dataset's schema). Call after
  /// AddDataset(dataset), before serving.
  arrow::Status AddEthCall(const std::string& dataset, EthCallFunction call);

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
  // The names a rewrite needs (sql/query_normalize.h): chain tables and views.
  Relations relations() const;
  Database db_;
  Connection admin_;  // creates schemas and views; never runs user SQL
  std::shared_ptr<EvmFunctions> evm_;  // the EVM SQL functions (sql/evm_functions.h)
  std::map<std::string, storage::BlockStore*> datasets_;
  std::set<std::string> aggregates_;
  std::map<std::string, nlohmann::json> derived_trees_;  // "schema.table" -> parse tree
  std::string catalog_;
  std::optional<std::vector<TableInfo>> tables_;  // ListTables, once computed
  bool direct_scan_ = true;
  std::shared_ptr<ScanCache> scan_cache_;  // null: off
  QueryCache queries_;  // checked queries and planned scans, by SQL (sql/query_cache.h)
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

  /// \brief A plain scan (sql/scan.h) planned once: the plan without any table
  /// range of the session, and the answer's schema as DuckDB plans it.
  using PlannedScan = sql::PlannedScan;

  /// \brief Check `sql` as Prepare does and, when it is a plain scan that a direct
  /// scan answers, plan it once for many sessions over the same datasets (the
  /// microbatches of a streaming query: flight/streaming_query.h); nullopt when
  /// DuckDB answers it (or direct scans are off).
  arrow::Result<std::optional<PlannedScan>> PlanDirectScan(const std::string& sql);

  /// \brief Run a scan planned by PlanDirectScan (on any session over the same
  /// datasets) over this session's snapshot and table range (SetTableRange),
  /// without DuckDB's parse and prepare: the same answer as Execute(sql). When a
  /// segment file cannot be scanned directly, Execute(sql) answers instead.
  arrow::Result<std::unique_ptr<ResultReader>> ExecuteDirectScan(
      const PlannedScan& planned, const std::string& sql, int64_t rows_per_batch,
      int64_t soft_batch_bytes = kDefaultBatchBytes);

  /// \brief Check a query as Prepare does, without binding its placeholders.
  /// Returns the result schema if DuckDB knows it without the parameters' types
  /// (else null) and the placeholders' schema (sql::ParameterSchema: one field per
  /// placeholder, type null where unknown).
  arrow::Result<std::pair<std::shared_ptr<arrow::Schema>, std::shared_ptr<arrow::Schema>>>
  Describe(const std::string& sql);

  /// \brief Check that a query can run as a streaming query (sql/incremental.h),
  /// describe what it reads and, unless it reads one table without grouping, write
  /// its delta query. Invalid "NonIncrementalOp: …" when it cannot stream.
  arrow::Result<StreamingCheck> CheckStreaming(const std::string& sql);

  /// \brief Restrict `<dataset>.<table>` to [range.lo, range.hi] for the next queries.
  arrow::Status SetTableRange(const std::string& dataset, const std::string& table,
                              TableRange range);

  /// \brief Set how a delta query (StreamingCheck::delta_sql) reads a dataset's
  /// tables in the views of kStreamSchema: Δ = `delta`, H = `history` (the blocks
  /// before it), N = both. Either may be empty (lo > hi): a dataset a microbatch does
  /// not advance has an empty Δ and its history up to where the stream stands.
  arrow::Status SetMicrobatch(const std::string& dataset, TableRange delta, TableRange history);

  /// \brief Stop the running query; its reader then fails with Cancelled.
  void Interrupt();

  /// \brief The datasets the last checked query (Prepare, Execute, Describe,
  /// CheckStreaming) reads: the schemas of the chain tables it names, derived
  /// tables expanded, from DuckDB's parse tree. Empty before any query, and for a
  /// query reading no chain table (`SELECT 1`).
  std::set<std::string> DatasetsRead() const;

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
  // The SQL DuckDB runs for a checked query (`tree` its parse tree), before its
  // EVM calls are renamed: `_block_num` and `block_num()` rewritten
  // (sql/block_names.h), else the query itself.
  arrow::Result<std::string> EngineSql(const std::string& sql, const nlohmann::json& tree);
  // A view of a chain table as this session binds it: `<dataset>.<table>`, or a
  // per-state view `sluice_stream.<view>` of a microbatch (SetMicrobatch), and
  // the range of the table whose files it lists.
  struct ViewSource {
    std::string dataset;
    std::string table;
    std::string schema;  // the view's: the dataset, or kStreamSchema
    std::string view;
    TableRange range;
  };
  std::vector<ViewSource> ViewSources() const;
  // The views the checked query reads (derived tables followed to their chain
  // tables; a superset when a name is ambiguous).
  std::vector<ViewSource> ViewsRead() const;
  // Point every view the checked query reads at its files. `empty_files_only`: at
  // its table's empty file alone (a schema is wanted, and segments of an object
  // store are not fetched).
  arrow::Status ApplyVariables(bool empty_files_only = false);
  // Segments in an object store: fetch the files the views the checked query
  // reads list (within their ranges, per-state views of a delta query included)
  // into the local cache, pinned for the session's life or until the range of
  // the view changes.
  arrow::Status FetchSegments();
  // Make `sql` the checked query: from the engine's QueryCache, else parsed,
  // checked by the sandbox and remembered there. Returns the remembered entry.
  arrow::Result<std::shared_ptr<const CheckedQuery>> Check(const std::string& sql);
  // The checked query's plan as a plain scan, planned on `stmt` (prepared from it)
  // and remembered in the engine's QueryCache; nullopt when DuckDB answers it.
  std::optional<PlannedScan> PlanScanOf(duckdb_prepared_statement stmt);
  // A direct scan of `planned` over this session's snapshot and table range
  // (segments of an object store fetched first), or null when a segment file
  // cannot be scanned directly.
  arrow::Result<std::unique_ptr<ResultReader>> TryDirectScan(const PlannedScan& planned,
                                                             int64_t rows_per_batch,
                                                             int64_t soft_batch_bytes);
  // `plan` restricted to the session's range of its table (a streaming microbatch).
  ScanPlan WithinRange(ScanPlan plan) const;
  // The reader of a direct scan of `plan` (already WithinRange), or null when a
  // file cannot be scanned directly.
  std::unique_ptr<ResultReader> ScanReaderFor(const ScanPlan& plan,
                                              std::shared_ptr<arrow::Schema> schema,
                                              int64_t rows_per_batch, int64_t soft_batch_bytes);

  Engine* engine_ = nullptr;
  Connection conn_;
  std::map<std::string, std::shared_ptr<const storage::Snapshot>> snapshots_;
  std::map<std::string, TableRange> ranges_;  // key: dataset.table
  struct MicrobatchRange {
    TableRange delta;
    TableRange history;
  };
  std::map<std::string, MicrobatchRange> microbatches_;  // key: dataset
  struct Fetched {
    TableRange range;
    std::shared_ptr<void> pin;  // the segment cache's
  };
  std::map<std::string, Fetched> fetched_;  // key: "schema.view" (ViewSource)
  // What ApplyVariables last set for each view ("schema.view" -> its statements).
  std::map<std::string, std::string> applied_variables_;
  std::string checked_sql_;     // the last query that passed the sandbox
  nlohmann::json checked_tree_;  // its parse tree
  std::string engine_sql_;       // it with block names rewritten (EngineSql)
  nlohmann::json engine_tree_;   // the parse tree of engine_sql_
  // What DuckDB runs: engine_sql_ with the EVM calls renamed to their typed
  // functions, and this query's eth_call budget (sql/evm_rewrite.h).
  EvmRewrite evm_query_;
  // Set by Interrupt(), cleared by Execute: stops a direct scan.
  std::shared_ptr<std::atomic<bool>> interrupted_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace sluice::sql
