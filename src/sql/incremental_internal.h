// The parts of the streaming check (sql/incremental.cc) that decide what the
// rows' block is: which columns of a FROM item hold the block its rows belong to,
// whether a grouping key is the block of a SELECT's rows, whether a join equates
// the blocks of its sides. Internal to sql/incremental*.cc.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace sluice::sql::incremental {

using json = nlohmann::json;

/// \brief A FROM item as a row source: its name and which of its columns hold the
/// block each row belongs to (sql/block_names.h).
struct Leaf {
  std::string name;                     ///< lower case
  std::set<std::string> block_columns;  ///< lower case
  /// Columns holding the block of some row source below, not of the joined row.
  std::set<std::string> partial_block_columns;
  bool reads_chain = false;
};

/// \brief What the check learns about a FROM item or query node.
struct Summary {
  int tables = 0;           ///< base tables read through FROM (not expression subqueries)
  int subquery_tables = 0;  ///< base tables read by EXISTS/IN subqueries and semi joins
  bool aligned = true;      ///< every join below equates the block of its two sides
  bool late = false;        ///< a row may be sent after its block (EXISTS/IN over later blocks)
  std::vector<Leaf> leaves;  ///< FROM items (for a FROM)
  /// For a query node: the output columns holding the rows' block, by name, and by
  /// position when the select list has no `*`.
  std::set<std::string> block_columns;
  std::set<std::string> partial_block_columns;
  std::optional<std::vector<std::string>> output_names;
  std::optional<std::vector<bool>> block_at;
};

/// \brief What a grouping key is: the rows' block, the block of one FROM item of a
/// join that does not equate them, or something else.
enum class Grouping { kNone, kBlock, kLeafBlock, kOther };

/// \brief Whether an expression of a SELECT over `from` is the block its rows belong
/// to: block_num(), or a block column (block_num, _block_num, a subquery's column
/// that carries its block) of its only FROM item, or of any item when every join
/// equates their blocks.
bool IsOutputBlock(const json& e, const Summary& from);

/// \brief Whether a column holds some FROM item's block (not the joined row's).
bool IsLeafBlock(const json& e, const Summary& from);

/// \brief What a grouping/deduplication key is, directly, by position (GROUP BY 1)
/// or through a select alias (GROUP BY b).
Grouping KeyKind(const json& key, const json& select_list, const Summary& from);

/// \brief What a SELECT's GROUP BY (or GROUP BY ALL) is keyed by: kBlock when some
/// key in every grouping set is the rows' block. `contains_aggregate` tells the
/// aggregates of a GROUP BY ALL's select list from its keys.
Grouping GroupingOf(const json& node, const Summary& from,
                    const std::function<bool(const json&)>& contains_aggregate);

/// \brief A FROM item named `name` reading the query node summarized by `s`; with
/// column aliases (`AS s(a, b)`) its block columns are renamed by position.
Summary OneLeaf(std::string name, Summary s, const json& column_aliases);

/// \brief What a query reading a SELECT (select list over `from`) as a subquery sees.
Summary SelectOutput(const json& select_list, const Summary& from);

/// \brief Whether a join's USING has block_num, or its ON (or the enclosing WHERE)
/// has a conjunct `x.c = y.d` where c and d hold the blocks of x and y, one on each
/// side.
bool EquatesBlocks(const json& ref, const json* condition, const json* where, const Summary& left,
                   const Summary& right);

}  // namespace sluice::sql::incremental
