// Bound parameters of a query (Flight SQL prepared statements, protocol.md §2):
// a record batch of one row whose column i is the value of placeholder i+1
// (`?` in order, or `$1`, `$2`, …). Values go to DuckDB as typed values through
// duckdb_bind_value, never as SQL text.
#pragma once

#include <memory>

#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "duckdb.h"

namespace sluice::sql {

/// \brief One row of parameter values; null or zero columns for none.
using Parameters = std::shared_ptr<arrow::RecordBatch>;

/// \brief Bind `params` to the placeholders of `stmt`. Invalid when the number of
/// values differs from the number of placeholders, when the batch does not have
/// exactly one row, or for a value whose Arrow type has no DuckDB counterpart here
/// (supported: null, bool, signed/unsigned integers, float, double, decimal128 up
/// to 38 digits, utf8/large_utf8/utf8_view, binary/large_binary/fixed_size_binary,
/// date32, timestamp of any unit and time zone).
arrow::Status BindParameters(duckdb_prepared_statement stmt, const Parameters& params);

/// \brief The Arrow schema of the placeholders of `stmt`: one field per placeholder
/// ("1", "2", …), of Arrow type null when DuckDB cannot tell its type before it
/// is bound (`SELECT ? AS x`). Empty for a query without placeholders.
arrow::Result<std::shared_ptr<arrow::Schema>> ParameterSchema(duckdb_connection conn,
                                                              duckdb_prepared_statement stmt);

}  // namespace sluice::sql
