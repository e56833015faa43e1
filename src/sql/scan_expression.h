// What a direct scan (sql/scan.h) evaluates itself beyond reading columns: DOUBLE
// arithmetic in the select list and integer ranges in WHERE, each only in forms
// where Arrow's compute kernels give DuckDB's answer bit for bit:
//  - CAST(c AS DOUBLE) of an integer column (rounded to nearest, as both convert)
//    or of a string column (the extractor's decimal strings, correctly rounded by
//    both parsers);
//  - + - * / of DOUBLE operands, where a constant operand is a DOUBLE, an integer
//    or a DECIMAL that converts exactly (DuckDB converts a DECIMAL constant as
//    unscaled / 10^scale); unary minus of a DOUBLE. Both follow IEEE 754 (DuckDB
//    1.4: an overflow is infinite, x / 0 is ±inf or NaN, nothing is simplified);
//  - `c <op> k`, `k <op> c` (=, <, <=, >, >=) and `c BETWEEN k1 AND k2` of an
//    integer column c with integer constants, compared as exact integers.
// Anything else is not planned here, and DuckDB answers. Answers are compared
// with DuckDB's in tests/python/test_direct_scan.py.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "arrow/array.h"
#include "arrow/compute/expression.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "nlohmann/json.hpp"
#include "sql/scan.h"

namespace sluice::sql {

/// \brief Resolves a parse-tree column reference to the scanned table's column:
/// its name as the table spells it and its type as stored; nullopt when it is not
/// one of the table's columns.
using ScanColumnOf =
    std::function<std::optional<std::pair<std::string, std::shared_ptr<arrow::DataType>>>(
        const nlohmann::json& column_ref)>;

/// \brief The expression (unbound, over the table's columns as stored) a
/// select-list item (DuckDB's json_serialize_sql form) computes, or nullopt when it
/// is not one of the forms above (a bare column reference is not computed: nullopt
/// too). Its result is DOUBLE.
std::optional<arrow::compute::Expression> ComputedOf(const nlohmann::json& item,
                                                     const ScanColumnOf& column_of);

/// \brief An integer constant of the parse tree (TINYINT … UBIGINT), else nullopt.
std::optional<__int128> IntegerConstantOf(const nlohmann::json& e);

/// \brief Narrow [lo, hi] by `x <op> c` (`c <op> x` when `flipped`), where `op` is
/// a parse tree's comparison type (COMPARE_EQUAL, COMPARE_LESSTHAN, …). False for
/// another comparison (<>, IS DISTINCT FROM, …).
bool NarrowByComparison(const std::string& op, __int128 c, bool flipped, __int128* lo,
                        __int128* hi);

/// \brief The range a WHERE term restricts an integer column other than
/// block_num to, or nullopt when the term is not such a comparison.
std::optional<ScanRange> RangeOf(const nlohmann::json& term, const ScanColumnOf& column_of);

/// \brief A boolean array: whether each value of `column` (an integer array) lies in
/// [lo, hi]; null where the value is null. Invalid for a non-integer column.
arrow::Result<std::shared_ptr<arrow::Array>> RangeMask(const std::shared_ptr<arrow::Array>& column,
                                                       __int128 lo, __int128 hi);

/// \brief Evaluate `bound` (a computed expression bound to `batch`'s schema) on
/// `batch`: one value per row.
arrow::Result<std::shared_ptr<arrow::Array>> EvaluateComputed(
    const arrow::compute::Expression& bound, const arrow::RecordBatch& batch);

}  // namespace sluice::sql
