// Direct scans in a session: a plain scan of a chain table (sql/scan.h) planned
// once per SQL text (remembered in the engine's QueryCache, sql/query_cache.h) and
// read from the session's snapshot and table range without DuckDB.
#include <algorithm>

#include "common/log.h"
#include "sql/duckdb_reader.h"
#include "sql/engine.h"

namespace sluice::sql {

std::optional<PlannedScan> Session::PlanScanOf(duckdb_prepared_statement stmt) {
  if (!engine_->direct_scan_) return std::nullopt;
  auto query = engine_->queries_.Find(checked_sql_);
  if (query && query->scan) return query->scan;
  auto plan = PlainScanOf(checked_tree_, engine_->catalog_, snapshots_);
  if (!plan) return std::nullopt;
  auto schema = PreparedSchema(conn_.get(), stmt);
  if (!schema.ok()) return std::nullopt;
  PlannedScan planned{std::move(*plan), std::move(*schema)};
  // Remembered with the checked query (when it still is: else the next run plans again).
  if (query) {
    auto with_scan = std::make_shared<CheckedQuery>(*query);
    with_scan->scan = planned;
    engine_->queries_.Put(checked_sql_, std::move(with_scan));
  }
  return planned;
}

ScanPlan Session::WithinRange(ScanPlan plan) const {
  auto range = ranges_.find(plan.dataset + "." + plan.table);
  if (range != ranges_.end()) {
    plan.lo = std::max(plan.lo, range->second.lo);
    plan.hi = std::min(plan.hi, range->second.hi);
  }
  return plan;
}

std::unique_ptr<ResultReader> Session::ScanReaderFor(const ScanPlan& plan,
                                                     std::shared_ptr<arrow::Schema> schema,
                                                     int64_t rows_per_batch,
                                                     int64_t soft_batch_bytes) {
  auto snap_it = snapshots_.find(plan.dataset);
  if (snap_it == snapshots_.end()) return nullptr;
  const auto& snap = snap_it->second;
  auto def = std::find_if(snap->tables.begin(), snap->tables.end(),
                          [&](const storage::TableDef& t) { return t.name == plan.table; });
  if (def == snap->tables.end()) return nullptr;
  // The segment files only: the table's empty file (first, for DuckDB's views) holds
  // no rows.
  auto files = snap->FilesFor(plan.table, plan.lo, plan.hi);
  auto empty = snap->empty_files.find(plan.table);
  if (empty != snap->empty_files.end()) {
    files.erase(std::remove(files.begin(), files.end(), empty->second), files.end());
  }
  ScanOptions options;
  options.rows_per_batch = rows_per_batch;
  // Without a fetch size, batches grow from the usual size to kDirectScanBatchBytes.
  options.soft_batch_bytes = soft_batch_bytes > 0 ? kDirectScanBatchBytes : soft_batch_bytes;
  options.first_batch_bytes = soft_batch_bytes;
  options.interrupted = interrupted_;
  options.cache = engine_->scan_cache_;
  auto reader = MakeScanReader(plan, def->schema, std::move(files), std::move(schema),
                               std::move(options));
  if (!reader.ok()) {
    LOG_DEBUG("direct scan not possible, DuckDB answers: {}", reader.status().ToString());
    return nullptr;
  }
  return std::move(*reader);
}

arrow::Result<std::optional<Session::PlannedScan>> Session::PlanDirectScan(
    const std::string& sql) {
  if (!engine_->direct_scan_) return std::nullopt;
  ARROW_ASSIGN_OR_RAISE(auto query, Check(sql));
  if (query->scan) return query->scan;
  ARROW_ASSIGN_OR_RAISE(auto stmt, CheckedPrepare(sql, /*schema_only=*/true));
  if (duckdb_nparams(stmt.get()) != 0) return std::nullopt;
  return PlanScanOf(stmt.get());
}

arrow::Result<std::unique_ptr<ResultReader>> Session::TryDirectScan(const PlannedScan& planned,
                                                                    int64_t rows_per_batch,
                                                                    int64_t soft_batch_bytes) {
  const ScanPlan p = WithinRange(planned.plan);
  auto snap = snapshots_.find(p.dataset);
  if (snap == snapshots_.end()) return nullptr;
  // Segments in an object store: this range's files, fetched and pinned for the
  // session (as Execute's FetchSegments does for the views it reads).
  ARROW_ASSIGN_OR_RAISE(auto pin, snap->second->Fetch(p.table, p.lo, p.hi));
  fetched_[p.dataset + "." + p.table] = Fetched{{p.lo, p.hi}, std::move(pin)};
  return ScanReaderFor(p, planned.schema, rows_per_batch, soft_batch_bytes);
}

arrow::Result<std::unique_ptr<ResultReader>> Session::ExecuteDirectScan(
    const PlannedScan& planned, const std::string& sql, int64_t rows_per_batch,
    int64_t soft_batch_bytes) {
  interrupted_->store(false);
  ARROW_ASSIGN_OR_RAISE(auto reader, TryDirectScan(planned, rows_per_batch, soft_batch_bytes));
  if (reader) return reader;
  return Execute(sql, rows_per_batch, nullptr, soft_batch_bytes);
}

}  // namespace sluice::sql
