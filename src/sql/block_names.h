// The reference's (Amp's) names for the block a row belongs to
// (../shared/spec/evm-functions.md, "Names"):
//
//   - `_block_num`: a column of every chain table and derived table, the same value
//     as `block_num`. sluice's tables do not store it twice: a reference to
//     `_block_num` of a chain table is rewritten to `block_num`; of a subquery
//     that selects a `_block_num` column, it is that column; of any other
//     subquery, it is the block its rows belong to (below). A select item that is
//     just `_block_num` keeps that name.
//   - `block_num()`: the block the row belongs to: for a chain table's row its
//     block_num; for a joined row the later (greatest) of its sides' blocks; for a
//     subquery's row the block of the row it was made from (a grouped row: the
//     latest of its group's, which is the key when the group is keyed by block);
//     for a UNION ALL's row its branch's. A select item that is just
//     `block_num()` is named `block_num()`.
//
// To see the block of a subquery's rows, the subquery carries it in a hidden last
// column `__sluice_block` (kBlockColumn), which every `*` above it excludes. A
// SELECT DISTINCT, UNION, EXCEPT or INTERSECT (without ALL) cannot carry it unless
// it selects its block: block_num() above one is Invalid.
//
// The streaming rewrite (sql/delta_rewrite.h) also asks for the block of the top
// query's rows (`top_block`), to send a microbatch's rows in block order.
#pragma once

#include <functional>
#include <string>

#include "arrow/status.h"
#include "nlohmann/json.hpp"
#include "sql/query_normalize.h"

namespace sluice::sql {

/// \brief The hidden column that carries the block of a subquery's rows.
inline constexpr const char* kBlockColumn = "__sluice_block";

/// \brief Whether a parse tree (or node) uses `_block_num` or `block_num()`.
bool UsesBlockNames(const nlohmann::json& tree);

struct BlockNameOptions {
  /// Whether a function name (lower case) is an aggregate. Required.
  std::function<bool(const std::string&)> is_aggregate;
  /// Add kBlockColumn to the top query node's select list too. When the top node
  /// cannot carry it (e.g. SELECT DISTINCT without its block), nothing is added and
  /// `*top_block_added` says so.
  bool top_block = false;
};

/// \brief Rewrite `_block_num` and `block_num()` in the normalized query node
/// `node` (sql/query_normalize.h) in place. Invalid, with the reason, when a name
/// is ambiguous or a block cannot be seen (see above).
arrow::Status RewriteBlockNames(nlohmann::json* node, const Relations& relations,
                                const BlockNameOptions& options, bool* top_block_added = nullptr);

}  // namespace sluice::sql
