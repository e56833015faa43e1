// Row groups a direct scan (sql/scan.h) need not read, by their statistics and
// bloom filters, and the rows it keeps of those it reads: equality clauses (a
// needle query) and integer ranges. Columns are named by their index among the
// scan's "wide" fields, which the raw batches of the Parquet reader share.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "arrow/type_fwd.h"
#include "parquet/file_reader.h"
#include "parquet/metadata.h"
#include "sql/scan.h"

namespace sluice::sql {

/// \brief ScanPlan::match with each column as its wide field: AND of ORs of
/// (field, constant bytes).
using ScanFieldMatch = std::vector<std::vector<std::pair<int, std::string>>>;
/// \brief ScanPlan::ranges with each column as its wide field.
using ScanFieldRanges = std::vector<std::pair<int, ScanRange>>;

/// \brief Whether row group `g` of `file` (`rg` its metadata) surely holds no row
/// of some equality clause: for each of the clause's equalities the column's
/// min/max statistics or its bloom filter exclude the value. `wide_leaf`: per wide
/// field, its Parquet leaf column (-1: not a leaf). An unreadable bloom filter
/// excludes nothing.
bool EqualitiesRuleOut(parquet::ParquetFileReader& file, int g, parquet::RowGroupMetaData& rg,
                       const std::vector<int>& wide_leaf, const ScanFieldMatch& match);

/// \brief Whether some range rules row group `rg` out by its column's min/max
/// statistics (`wide_schema` says whether the column is unsigned).
bool RangesRuleOut(parquet::RowGroupMetaData& rg, const std::vector<int>& wide_leaf,
                   const arrow::Schema& wide_schema, const ScanFieldRanges& ranges);

/// \brief The rows of `raw` (the table's types) that pass every equality clause (a
/// NULL never equals). Invalid when a compared column is not fixed-size binary.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> KeepMatching(
    std::shared_ptr<arrow::RecordBatch> raw, const ScanFieldMatch& match);

/// \brief The rows of `raw` within every range (a NULL is in none).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> KeepInRanges(
    std::shared_ptr<arrow::RecordBatch> raw, const ScanFieldRanges& ranges);

}  // namespace sluice::sql
