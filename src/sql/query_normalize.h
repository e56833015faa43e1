// Normalizing a parse tree before a rewrite (sql/block_names.h, sql/delta_rewrite.h):
// every relation a query reads becomes a FROM item of its own, so that each
// reference can be read at a block range of its own.
//
//   - a reference to a CTE becomes a subquery holding a copy of the CTE's body (a
//     CTE read twice is read twice), and the CTE definitions go;
//   - with `inline_views`, a reference to a derived table (a view) becomes a
//     subquery holding the view's query, expanded the same way;
//   - a chain table read without an alias gets its table name as alias, so that
//     the reference can be replaced without changing how columns name it;
//   - with `predicates_to_where`: `L SEMI JOIN R ON c` becomes `L` plus the
//     conjunct `EXISTS (SELECT 1 FROM R WHERE c)` in the SELECT's WHERE (RIGHT SEMI
//     alike), and a conjunct of an inner join's ON that holds a subquery moves to
//     the WHERE (the same rows: an inner join's ON filters like the WHERE).
//
// Recursive CTEs are left as they are (the streaming check refuses them).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "arrow/status.h"
#include "nlohmann/json.hpp"

namespace sluice::sql {

/// \brief A chain table of a dataset, as the block store names it.
struct ChainTable {
  std::string dataset;  ///< e.g. "eth_rpc"
  std::string table;    ///< e.g. "logs"
};

/// \brief What a rewrite needs to know of the names a query uses.
struct Relations {
  /// The chain table `catalog.schema.table` names (catalog and schema "" when not
  /// written), or nullopt when it is none. Required.
  std::function<std::optional<ChainTable>(const std::string& catalog, const std::string& schema,
                                          const std::string& table)>
      chain_table;
  /// The parse tree (json_serialize_sql output) of the derived table
  /// `schema.table`, or nullopt when it is none. Optional.
  std::function<std::optional<nlohmann::json>(const std::string& schema,
                                              const std::string& table)>
      view_tree;
};

struct NormalizeOptions {
  bool inline_views = true;
  bool predicates_to_where = false;
};

/// \brief Normalize the query node `node` in place (see above). Invalid when a view
/// refers to itself, the query nests too deeply, or a SEMI JOIN's USING cannot be
/// written as a condition.
arrow::Status NormalizeQuery(nlohmann::json* node, const Relations& relations,
                             const NormalizeOptions& options);

}  // namespace sluice::sql
