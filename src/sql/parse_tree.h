// Reading and building DuckDB parse trees: the JSON of json_serialize_sql, which
// the sandbox, the incremental check and the query rewrites (block names, deltas)
// work on, and json_deserialize_sql, which turns a rewritten tree back into SQL.
//
// The node shapes are DuckDB 1.4's (the version scripts/bootstrap.sh pins); the
// builders below emit every field json_serialize_sql emits for the node, so
// that json_deserialize_sql reads them back (tests/cpp/sql_parse_tree_test.cc
// checks each builder against the engine's own serialization).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "duckdb.h"
#include "nlohmann/json.hpp"

namespace sluice::sql::tree {

using json = nlohmann::json;

// ---- reading ------------------------------------------------------------------------

std::string Lower(std::string s);
std::string Upper(std::string s);

/// \brief The member `key` of an object, or null when absent or JSON null.
const json* Field(const json& o, const char* key);
json* MutableField(json& o, const char* key);
/// \brief A string member, "" when absent or not a string.
std::string Str(const json& o, const char* key);
/// \brief A boolean member, false when absent.
bool Bool(const json& o, const char* key);
/// \brief An array member, an empty array when absent.
const json& Array(const json& o, const char* key);

/// \brief The query node of a json_serialize_sql output (one statement), of a
/// statement, or a query node itself. Invalid for anything else, with the parse
/// error when the tree is one.
arrow::Result<const json*> RootNode(const json& tree);
arrow::Result<json*> MutableRootNode(json& tree);

/// \brief Whether `e` is a COLUMN_REF.
bool IsColumnRef(const json& e);
/// \brief The last name of a column reference, lower case ("" when not one).
std::string ColumnName(const json& column_ref);
/// \brief The relation a column reference names (lower case), "" when unqualified.
std::string Qualifier(const json& column_ref);
/// \brief Whether `e` calls the function `name` (lower case) with `arity` arguments.
bool IsCall(const json& e, const std::string& name, size_t arity);

/// \brief Whether `match` holds for some object in `e` (depth first), not looking
/// inside the objects for which `skip` holds (when given).
bool ContainsNode(const json& e, const std::function<bool(const json&)>& match,
                  const std::function<bool(const json&)>& skip = nullptr);

/// \brief Whether an expression calls an aggregate function (`is_aggregate` of its
/// lower-case name) outside subqueries and window functions.
bool CallsAggregate(const json& e, const std::function<bool(const std::string&)>& is_aggregate);

/// \brief Whether a SELECT node aggregates: GROUP BY, GROUP BY ALL, or an aggregate
/// in its select list or HAVING.
bool AggregatingSelect(const json& node,
                       const std::function<bool(const std::string&)>& is_aggregate);

/// \brief Every query node directly below `node` in expressions (subquery
/// expressions) of a json value: for walking. Calls `f(subquery_node)`.
void ForEachExpressionSubquery(json& e, const std::function<void(json&)>& f);

// ---- building (DuckDB 1.4 shapes) ----------------------------------------------------

/// \brief COLUMN_REF `names[0].names[1]…`, with an alias (AS) when not empty.
json ColumnRef(std::vector<std::string> names, std::string alias = "");
/// \brief A call `name(children…)`.
json Call(std::string name, std::vector<json> children);
/// \brief A VARCHAR, BOOLEAN or NULL constant.
json StringConstant(const std::string& value);
json BoolConstant(bool value);
json NullConstant();
/// \brief `a AND b` / `a OR b` (flattened when a side is already such a conjunction).
json And(std::vector<json> children);
/// \brief `(e) IS DISTINCT FROM TRUE`, i.e. e is false or NULL.
json IsNotTrue(json e);
/// \brief `NOT e`.
json Not(json e);
/// \brief `EXISTS (node)`.
json Exists(json node);
/// \brief A FROM item `(node) AS alias (column_aliases…)`.
json SubqueryRef(json node, std::string alias, json column_aliases = json::array());
/// \brief `left UNION ALL right` (query nodes).
json UnionAll(json left, json right);
/// \brief `SELECT * FROM (node) AS alias ORDER BY order_column` (nothing else).
json SelectStarOrderedBy(json node, const std::string& alias, const std::string& order_column);
/// \brief `SELECT 1 FROM from WHERE where` (where may be null).
json SelectOneFrom(json from, json where);

/// \brief The SQL text of a parse tree (json_deserialize_sql of `tree`, a whole
/// json_serialize_sql output). Invalid when the engine cannot read the tree back.
arrow::Result<std::string> Deparse(duckdb_connection conn, const json& tree);

}  // namespace sluice::sql::tree
