// Direct scans: a plain read of one chain table, answered from its Parquet
// segments with Arrow's Parquet reader instead of DuckDB.
//
// A plain scan is `SELECT <* | column | expression, …> FROM <dataset>.<table>
// [WHERE <terms joined by AND>]` with nothing else (no joins, grouping, ordering,
// LIMIT, DISTINCT, CTEs or parameters), where a term is a comparison of an integer
// column with an integer constant (block_num or another), or an equality of a
// hash/address column with a BLOB constant, alone or ORed with others (`"from" = A
// OR "to" = A`); an expression is DOUBLE arithmetic the scan evaluates itself
// (sql/scan_expression.h: `CAST(value AS DOUBLE) / 1e18`).
// It is the query a user exports a table with, and in DuckDB most of its cost is
// decoding every hash into a BLOB and converting it back to Arrow
// (bench/FIXES.md). The direct scan reads the same files the session's snapshot
// pins, in the same order, and casts each column to the type DuckDB planned for it
// (fixed-size binary → binary, timestamp[ns] → timestamp[us], list field names),
// so a client cannot tell the two paths apart: same schema, same rows, same order
// (tests/python/test_direct_scan.py compares them table by table).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrow/compute/expression.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "nlohmann/json.hpp"
#include "storage/block_store.h"

namespace sluice::sql {

class ScanCache;
class ResultReader;  // sql/engine.h

/// \brief Batches of a direct scan grow to about this many bytes: without a copy
/// to make them, large messages cost less per row (bench/FIXES.md).
inline constexpr int64_t kDirectScanBatchBytes = int64_t{8} << 20;

/// \brief `column = value`: a fixed-size binary column (a hash, an address)
/// compared with a BLOB constant (`from_hex('…')`, `unhex('…')`, `'\x…'::BLOB`).
struct ScanEquality {
  std::string column;  ///< as the table names it
  std::string value;   ///< the constant's bytes
};

/// \brief `lo <= column <= hi`: comparisons of an integer column (other than
/// block_num) with integer constants, as exact integers (a NULL is never in range).
struct ScanRange {
  std::string column;  ///< as the table names it; an integer column
  __int128 lo = std::numeric_limits<int64_t>::min();
  __int128 hi = std::numeric_limits<uint64_t>::max();
};

/// \brief A plain scan of one chain table (see above).
struct ScanPlan {
  std::string dataset;  ///< as the store names it, e.g. "eth_rpc"
  std::string table;    ///< e.g. "transactions"
  /// The table's columns in output order, as the table names them (`*` expanded;
  /// a column may appear twice); "" for a computed column.
  std::vector<std::string> columns;
  /// Per answer column, the expression that computes it when `columns` has ""
  /// there (else nullopt): Arrow compute over the table's columns as stored
  /// (sql/scan_expression.h). Empty when nothing is computed.
  std::vector<std::optional<arrow::compute::Expression>> computed;
  uint64_t lo = 0;           ///< first block_num kept (inclusive)
  uint64_t hi = UINT64_MAX;  ///< last block_num kept (inclusive); lo > hi: no rows
  /// Equality filters, AND of ORs: a row is kept when, for every clause, one of its
  /// equalities holds (a NULL never equals). Row groups whose bloom filters or
  /// statistics rule out every equality of a clause are not read (a needle query).
  std::vector<std::vector<ScanEquality>> match;
  /// Integer ranges a row also lies in (AND); row groups whose statistics rule one
  /// out are not read.
  std::vector<ScanRange> ranges;
};

/// \brief A plain scan planned once: the plan (without any session's table range)
/// and the answer's schema as DuckDB plans the same query.
struct PlannedScan {
  ScanPlan plan;
  std::shared_ptr<arrow::Schema> schema;
};

/// \brief The plain scan `tree` (DuckDB's json_serialize_sql of one query) asks
/// for, or nullopt when it is anything else. `catalog` is the engine's catalog
/// name (a three-part name may use it); `snapshots` says which datasets and tables
/// exist and their columns. Names compare case-insensitively, as in DuckDB.
std::optional<ScanPlan> PlainScanOf(
    const nlohmann::json& tree, const std::string& catalog,
    const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& snapshots);

/// \brief How a direct scan cuts and sends its rows.
struct ScanOptions {
  /// Rows per record batch: a batch holds at most this many rows, and exactly this
  /// many (but the last) when `soft_batch_bytes` <= 0 (the client's fetch size).
  int64_t rows_per_batch = 65536;
  /// Batches end at about this many bytes of Arrow buffers (<= 0: rows only)...
  int64_t soft_batch_bytes = kDirectScanBatchBytes;
  /// ...but the first one at about this many, and each next one at most twice the
  /// previous: the first rows leave soon, later ones in large messages, which cost
  /// the client and the server less per row (bench/FIXES.md).
  int64_t first_batch_bytes = int64_t{512} << 10;
  /// Set from another thread to stop the scan: ReadNext then fails with Cancelled.
  std::shared_ptr<std::atomic<bool>> interrupted;
  /// Segments already converted to the answer's types (null: none).
  std::shared_ptr<ScanCache> cache;
};

/// \brief Read `plan` from `files` (a snapshot's segment files of the table, in
/// block order; `table_schema`: the table's schema as the store defines it) as
/// record batches of `schema` (the schema DuckDB planned for the same query: one
/// field per plan column). Invalid when a column cannot be converted to its planned
/// type (the caller then lets DuckDB answer).
arrow::Result<std::unique_ptr<ResultReader>> MakeScanReader(
    const ScanPlan& plan, const std::shared_ptr<arrow::Schema>& table_schema,
    std::vector<std::filesystem::path> files, std::shared_ptr<arrow::Schema> schema,
    ScanOptions options);

}  // namespace sluice::sql
