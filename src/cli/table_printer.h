// A readable, aligned text table of Arrow record batches, as psql or duckdb's
// shell print results: binary as 0x hex, NULL as NULL.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "arrow/record_batch.h"

namespace sluice::cli {

/// \brief The text of one cell: NULL, 0x-hex for binary, the value otherwise.
std::string CellToString(const arrow::Array& array, int64_t row);

/// \brief Print `batches` (all of `schema`) as an aligned table followed by a
/// "(N rows)" line. Holds the rendered cells in memory: meant for terminals.
void PrintTable(const arrow::Schema& schema,
                const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                std::ostream& out);

}  // namespace sluice::cli
