// DuckDB prepared statements and results as Arrow (for sql/engine.cc): the
// schema of a prepared statement or a started result, starting a streaming
// result, and the reader that turns its chunks into record batches of the sizes
// ResultReader promises.
#pragma once

#include <memory>

#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "sql/duckdb_handles.h"
#include "sql/engine.h"

namespace sluice::sql {

/// \brief The Arrow schema of a prepared statement's result columns. Fails when
/// DuckDB does not know their types (placeholders not bound yet).
arrow::Result<std::shared_ptr<arrow::Schema>> PreparedSchema(duckdb_connection conn,
                                                             duckdb_prepared_statement stmt);

/// \brief The Arrow schema of a started query's result (placeholders' types are
/// known by then).
arrow::Result<std::shared_ptr<arrow::Schema>> ResultSchema(duckdb_connection conn,
                                                           duckdb_result* result);

/// \brief Start a prepared query (parameters bound) as a streaming result.
arrow::Status StartStreaming(duckdb_prepared_statement stmt, Result* result);

/// \brief The DuckDB answer of a query (see ResultReader): its streaming
/// result's chunks coalesced and cut into record batches.
class DuckDBReader : public ResultReader {
 public:
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override;

  std::shared_ptr<arrow::Schema> schema_;
  Result result_;
  ArrowOptions arrow_options_;
  int64_t rows_per_batch_ = 65536;
  int64_t soft_batch_bytes_ = kDefaultBatchBytes;  // <= 0: rows (and kMaxBatchBytes) only
  std::shared_ptr<arrow::RecordBatch> carry_;  // rows fetched past the last batch
  bool done_ = false;
};

}  // namespace sluice::sql
