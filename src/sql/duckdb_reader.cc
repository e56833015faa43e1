#include "sql/duckdb_reader.h"

#include <algorithm>
#include <vector>

#include "arrow/c/bridge.h"
#include "arrow/util/byte_size.h"

namespace sluice::sql {

namespace {

// The Arrow schema of `n` DuckDB columns.
arrow::Result<std::shared_ptr<arrow::Schema>> ColumnsSchema(duckdb_connection conn,
                                                            std::vector<LogicalType> types,
                                                            std::vector<const char*> names) {
  const idx_t n = types.size();
  std::vector<duckdb_logical_type> raw(n);
  for (idx_t i = 0; i < n; ++i) raw[i] = types[i].get();
  ArrowOptions options;
  duckdb_connection_get_arrow_options(conn, options.out());
  ArrowSchema c_schema;
  ErrorData err;
  *err.out() = duckdb_to_arrow_schema(options.get(), raw.data(), names.data(), n, &c_schema);
  ARROW_RETURN_NOT_OK(ErrorDataStatus(err.get()));
  return arrow::ImportSchema(&c_schema);
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::Schema>> PreparedSchema(duckdb_connection conn,
                                                             duckdb_prepared_statement stmt) {
  idx_t n = duckdb_prepared_statement_column_count(stmt);
  std::vector<LogicalType> types(n);
  std::vector<const char*> names(n);
  // Each name is a copy the caller frees with duckdb_free.
  struct DuckFree {
    void operator()(const char* p) const { duckdb_free(const_cast<char*>(p)); }
  };
  std::vector<std::unique_ptr<const char, DuckFree>> owned_names(n);
  for (idx_t i = 0; i < n; ++i) {
    *types[i].out() = duckdb_prepared_statement_column_logical_type(stmt, i);
    owned_names[i].reset(duckdb_prepared_statement_column_name(stmt, i));
    names[i] = owned_names[i].get();
  }
  return ColumnsSchema(conn, std::move(types), names);
}

// The schema of a started query's result (placeholders' types are known by then).
arrow::Result<std::shared_ptr<arrow::Schema>> ResultSchema(duckdb_connection conn,
                                                           duckdb_result* result) {
  idx_t n = duckdb_column_count(result);
  std::vector<LogicalType> types(n);
  std::vector<const char*> names(n);
  for (idx_t i = 0; i < n; ++i) {
    *types[i].out() = duckdb_column_logical_type(result, i);
    names[i] = duckdb_column_name(result, i);
  }
  return ColumnsSchema(conn, std::move(types), names);
}

// Start a prepared query as a streaming result.
arrow::Status StartStreaming(duckdb_prepared_statement stmt, Result* result) {
  PendingResult pending;
  if (duckdb_pending_prepared_streaming(stmt, pending.out()) != DuckDBSuccess) {
    const char* err = duckdb_pending_error(pending.get());
    return ErrorToStatus(DUCKDB_ERROR_INVALID, err ? err : "cannot start query");
  }
  if (duckdb_execute_pending(pending.get(), result->out()) != DuckDBSuccess) {
    return ResultStatus(result->out());
  }
  return arrow::Status::OK();
}

// ---- DuckDBReader -----------------------------------------------------------------

arrow::Status DuckDBReader::ReadNext(std::shared_ptr<arrow::RecordBatch>* out) {
  out->reset();
  arrow::RecordBatchVector parts;
  int64_t rows = 0;
  int64_t bytes = 0;  // of the parts, as their slices reference
  if (carry_) {
    rows = carry_->num_rows();
    ARROW_ASSIGN_OR_RAISE(bytes, arrow::util::ReferencedBufferSize(*carry_));
    parts.push_back(std::move(carry_));
    carry_.reset();
  }
  // Wide rows stop at soft_batch_bytes_ (when set): large messages cost more than
  // they save (bench/FIXES.md); narrow ones still coalesce up to rows_per_batch.
  while (!done_ && rows < rows_per_batch_ && bytes < kMaxBatchBytes &&
         (soft_batch_bytes_ <= 0 || bytes < soft_batch_bytes_)) {
    DataChunk chunk;
    *chunk.out() = duckdb_fetch_chunk(result_.get());
    if (!chunk) {
      // End of the result, or an error (interrupt, out of memory, …).
      const char* err = duckdb_result_error(result_.out());
      if (err != nullptr && *err != '\0') return ResultStatus(result_.out());
      done_ = true;
      break;
    }
    idx_t n = duckdb_data_chunk_get_size(chunk.get());
    if (n == 0) continue;
    ArrowArray c_array;
    ErrorData err;
    *err.out() = duckdb_data_chunk_to_arrow(arrow_options_.get(), chunk.get(), &c_array);
    ARROW_RETURN_NOT_OK(ErrorDataStatus(err.get()));
    ARROW_ASSIGN_OR_RAISE(auto batch, arrow::ImportRecordBatch(&c_array, schema_));
    const int64_t batch_bytes = arrow::util::TotalBufferSize(*batch);
    if (!parts.empty() && bytes + batch_bytes > kMaxBatchBytes) {
      carry_ = std::move(batch);  // wide rows: they start the next batch
      break;
    }
    rows += batch->num_rows();
    bytes += batch_bytes;
    parts.push_back(std::move(batch));
  }
  if (parts.empty()) return arrow::Status::OK();
  std::shared_ptr<arrow::RecordBatch> batch;
  if (parts.size() == 1) {
    batch = std::move(parts[0]);
  } else {
    ARROW_ASSIGN_OR_RAISE(batch, arrow::ConcatenateRecordBatches(parts));
  }
  int64_t keep = std::min(batch->num_rows(), rows_per_batch_);
  if (bytes > kMaxBatchBytes && keep > 1) {
    // About kMaxBatchBytes of rows (the average row), at least one.
    keep = std::max<int64_t>(
        1, std::min(keep, static_cast<int64_t>(static_cast<double>(batch->num_rows()) *
                                               kMaxBatchBytes / static_cast<double>(bytes))));
  }
  if (batch->num_rows() > keep) {
    // (Never with a chunk held back above: that leaves rows and bytes under the limits.)
    carry_ = batch->Slice(keep);
    batch = batch->Slice(0, keep);
  }
  *out = std::move(batch);
  return arrow::Status::OK();
}

}  // namespace sluice::sql
