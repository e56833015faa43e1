// The delta of a streaming query: one SQL query that computes exactly the rows a
// microbatch [s, e] adds to the query's answer (protocol.md §3), from the chain
// tables read in three states:
//
//   Δ  (kDelta)    the microbatch's blocks, s ≤ block_num ≤ e
//   H  (kHistory)  the blocks before it,     block_num < s
//   N  (kNew)      both,                     block_num ≤ e
//
// each a view `sluice_stream.<dataset>__<table>__<d|h|n>` over the session's
// snapshot (sql/engine.h SetMicrobatch). The query is first normalized
// (sql/query_normalize.h: every CTE and derived-table reference expanded, so a
// table read twice is two references), then rewritten node by node:
//
//   - SELECT over FROM items x1…xk joined by inner joins, with WHERE W:
//       Δ = ⋃ over every non-empty set S of the items that read chain tables of
//           SELECT … FROM (xi in S: Δxi; others: H xi) WHERE W[N]
//     (the inner-join delta rule, protocol.md §3: a joined row appears once, in
//     the microbatch of the later of its blocks). When every join equates the
//     block_num of its sides, only S = all items can match.
//   - W with EXISTS / IN / ANY (subquery) over chain tables, in positions where
//     more rows can only make it true (under AND/OR; the check refuses others):
//     rows of earlier blocks that qualify now are added by one more term,
//       SELECT … FROM (every xi: H xi) WHERE W[N] AND (W[H]) IS NOT TRUE,
//     so a row whose match arrives later is sent once, when it qualifies.
//   - UNION ALL: the union of the branches' deltas.
//   - GROUP BY / DISTINCT (ON) keyed by the rows' block (sql/incremental.h): the
//     grouping applies to the delta of its input; a join directly under it is
//     moved into a subquery first, its columns lifted by name.
//   - A subquery in FROM: its delta (Δ), or itself with every table in H or N.
//
// The result carries the rows' block (kBlockColumn, sql/block_names.h) as its
// last column and is ordered by it, so a microbatch's rows go out in block order
// and BlockComplete can follow them.
#pragma once

#include <functional>
#include <string>

#include "arrow/result.h"
#include "nlohmann/json.hpp"
#include "sql/query_normalize.h"

namespace sluice::sql {

/// \brief How a microbatch [s, e] reads a chain table.
enum class RangeState { kDelta, kHistory, kNew };

/// \brief The schema of the per-state views.
inline constexpr const char* kStreamSchema = "sluice_stream";

/// \brief The name of the view of `dataset.table` in `state`, in kStreamSchema.
std::string StateViewName(const std::string& dataset, const std::string& table,
                          RangeState state);

struct DeltaOptions {
  /// Whether a function name (lower case) is an aggregate. Required.
  std::function<bool(const std::string&)> is_aggregate;
  /// The top node carries kBlockColumn (RewriteBlockNames with top_block): order
  /// the delta by it.
  bool ordered = true;
};

/// \brief A stream over several datasets (one network each) advances each network
/// on its own (protocol.md, "Several networks"): a row may come from the tables of
/// one dataset only. Refuses, with "NonIncrementalOp: …" naming the datasets, a
/// join, an EXISTS / IN (subquery) or a grouping by block that combines rows of
/// several datasets in the normalized query node `node`; UNION ALL of them is fine.
arrow::Status CheckOneDatasetPerRow(const nlohmann::json& node, const Relations& relations,
                                   const std::function<bool(const std::string&)>& is_aggregate);

/// \brief The delta query node of the normalized, block-named, checked query node
/// `node` (see above). Invalid when the query reads no chain table or has a shape
/// the streaming check should have refused.
arrow::Result<nlohmann::json> DeltaQuery(const nlohmann::json& node, const Relations& relations,
                                         const DeltaOptions& options);

}  // namespace sluice::sql
