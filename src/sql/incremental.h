// Whether a query can run as a streaming query: computed microbatch by microbatch
// (each microbatch a block range), without state carried across microbatches
// (protocol.md §3, seed "Limitations").
//
// Decided from DuckDB's own parse tree (the JSON of json_serialize_sql, see
// sql/sandbox.h ParseTree), never from the SQL text. Rejected anywhere in the query
// — in subqueries (in FROM or in expressions), CTEs and views too — with
// Status::Invalid whose message begins "NonIncrementalOp: " and names the operation:
//
//   aggregate functions  "Aggregate function COUNT requires maintaining state across batches"
//   window functions     "Window function ROW_NUMBER requires state and sorting across batches"
//   DISTINCT             "DISTINCT requires global deduplication state"
//   DISTINCT ON          "DISTINCT ON requires global deduplication state unless one of
//                         its keys is block_num"
//   GROUP BY             "GROUP BY requires maintaining group state across batches unless
//                         one of its keys is block_num"
//   LIMIT / OFFSET       "LIMIT requires counting rows across batches" ("OFFSET …")
//   ORDER BY (top level) "ORDER BY requires seeing all rows before sorting"
//   recursive CTEs       "Recursive query requires state across batches"
//   UNION                "UNION (without ALL) requires global deduplication state"
//   EXCEPT, INTERSECT    "EXCEPT requires comparing rows with all rows of the other side
//                         across batches" (also INTERSECT, … ALL)
//   LEFT/RIGHT/FULL JOIN "LEFT JOIN requires tracking unmatched rows across batches"
//   ANTI JOIN            "ANTI JOIN requires knowing that no matching row arrives in a later
//                         block"
//   NOT EXISTS           "NOT EXISTS requires knowing that no matching row arrives in a later
//                         block" (also "NOT IN (subquery) …", "ALL (subquery) …")
//   scalar subquery      "a scalar subquery over chain tables requires its value over all
//   over chain tables     blocks, which a later block may change (in the select list)"
//   EXISTS/IN elsewhere  "a subquery over chain tables here (in the select list) requires its
//                         answer over all blocks …" (outside WHERE/ON, or under NOT)
//   ASOF JOIN            "ASOF JOIN requires finding the nearest row of the other side across
//                         batches"
//   POSITIONAL JOIN      "POSITIONAL JOIN requires row positions across batches"
//   reservoir SAMPLE     "SAMPLE of a fixed number of rows (reservoir sampling) requires state
//                         across batches"
//   PIVOT                "PIVOT requires aggregating across batches"
//   SUMMARIZE            "SUMMARIZE requires aggregating all rows across batches"
//   a UNION ALL branch   "a UNION ALL branch that reads no chain table has no block to send
//   without chain tables  its rows in"
//
// Accepted: projections, WHERE, inner joins (JOIN … ON/USING, NATURAL JOIN, CROSS JOIN
// and comma joins) of any tables — a table read twice (self-joins) too — which the
// delta rule Δ(L⋈R) = ΔL⋈R_old ∪ L_old⋈ΔR ∪ ΔL⋈ΔR covers (sql/delta_rewrite.h);
// EXISTS, IN and ANY (subquery) and SEMI JOINs over chain tables in a WHERE or an
// inner join's ON, under AND and OR (more rows can only make them true: a row is
// sent once, when a block adds its first match, which may be a later block than
// the row's own); scalar functions and UDFs, UNION ALL, subqueries and CTEs that
// are themselves incrementalizable, ORDER BY below the top level, percentage
// samples. Subqueries over no chain table are constants and go anywhere.
//
// Beyond the seed (protocol.md §3, ref: "GROUP BY and DISTINCT ON whose first key is
// the block number"): a GROUP BY one of whose keys is the rows' block (in every
// grouping set, so not under ROLLUP/CUBE), a DISTINCT ON one of whose keys is, and a
// plain DISTINCT whose select list has it, are accepted — and so are the aggregates
// of a SELECT so grouped — because every group then lies within one block, and the
// microbatch that covers a block reads all of its rows. (The ref's "first key" is a
// special case.) The rows' block is:
//   - `block_num()` (sql/block_names.h: for a joined row, the later of its blocks);
//   - a column `block_num` or `_block_num` of a chain table, or a subquery's column
//     that is its rows' block (by name, or by position through UNION ALL), when it
//     is the only FROM item, or when every join of that FROM equates the blocks of
//     its two sides (`a.block_num = b.block_num` in its ON or that SELECT's WHERE,
//     or USING (block_num)); otherwise rejected:
//       "GROUP BY block_num over a join requires the join condition to equate
//        block_num of both sides, … group by block_num() … instead" (DISTINCT alike).
// Not over rows that can qualify late (EXISTS/IN subqueries below it):
//   "GROUP BY block_num over EXISTS or IN (subquery) requires knowing a block's rows
//    when it closes, …".
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "duckdb.h"
#include "nlohmann/json.hpp"

namespace sluice::sql {

/// \brief What the check needs to know beyond the parse tree.
struct IncrementalContext {
  /// Whether a function name (lower case, as the parse tree spells it, e.g.
  /// "count_star", "sum") is an aggregate. Required. Ask the engine, e.g. with the
  /// set from AggregateFunctionNames.
  std::function<bool(const std::string& name)> is_aggregate;
  /// The parse tree (json_serialize_sql output, or one statement, or one query node)
  /// of the view `schema.name` as written in a FROM clause (schema "" when
  /// unqualified), or nullopt when that name is not a view. Optional: when unset,
  /// every table is taken to be a base table. The check recurses into a view's tree
  /// as into a subquery.
  std::function<std::optional<nlohmann::json>(const std::string& schema,
                                              const std::string& name)>
      view_tree;
};

/// \brief A table as referenced in a FROM clause.
struct TableReference {
  std::string catalog;  ///< "" when not given
  std::string schema;   ///< "" when not given, e.g. "eth_rpc"
  std::string table;    ///< e.g. "blocks"
  std::string alias;    ///< "" when none
  bool operator==(const TableReference&) const = default;
};

/// \brief What the streaming engine needs to know about an accepted query.
struct IncrementalInfo {
  /// Every base table the query reads, once per reference (a self-join lists the
  /// table twice), in FROM order; views and CTEs expanded at each reference, tables
  /// read by subqueries in expressions included. CTEs that are never referenced are
  /// checked but not listed.
  std::vector<TableReference> tables;
  /// Every view expanded through IncrementalContext::view_tree, once per reference.
  std::vector<TableReference> views;
  /// Some JOIN (inner, cross/comma or natural) has base tables on both sides, i.e.
  /// needs the delta rule. `FROM t, unnest(t.list)` alone is not such a join.
  bool has_join = false;
  /// Some SELECT aggregates, groups or deduplicates keyed by block_num (accepted by
  /// the block_num exception above): its rows for a block are final only once the
  /// whole block has been read.
  bool has_block_grouping = false;
  /// Some subquery appears in an expression (scalar, EXISTS, IN, ANY/ALL).
  bool has_subquery_expression = false;
  /// Every join in FROM equates block_num of its two sides (USING (block_num) or
  /// an `x.block_num = y.block_num` conjunct): joined rows never span blocks.
  bool joins_on_block_num = true;
  /// Some rows may be sent in a later microbatch than their own block's: an EXISTS
  /// or IN (subquery) (or SEMI JOIN) over chain tables whose match comes later.
  bool late_rows = false;
};

/// \brief Check that a query can run microbatch by microbatch.
///
/// `tree` is the json_serialize_sql output of exactly one SELECT statement (as
/// returned by ParseTree), one of its statements, or a query node. Returns OK, or
/// Invalid with a message beginning "NonIncrementalOp: " (see the list above);
/// Invalid without that prefix when the tree is not one parsed statement, a view's
/// tree is an error, a view refers to itself, or `ctx.is_aggregate` is unset.
/// Fills `info` (when not null) for accepted queries; on rejection its contents are
/// unspecified.
arrow::Status CheckIncremental(const nlohmann::json& tree, const IncrementalContext& ctx,
                               IncrementalInfo* info = nullptr);

/// \brief The names (lower case) of the engine's aggregate functions: those of
/// `duckdb_functions()` with function_type 'aggregate', plus the macros whose
/// definition calls one of them outside a subquery (e.g. geomean = exp(avg(ln(x))),
/// json_group_array), found by parsing each macro's definition with the engine.
/// Errors of the engine's query are returned as its Status.
arrow::Result<std::set<std::string>> AggregateFunctionNames(duckdb_connection conn);

}  // namespace sluice::sql
