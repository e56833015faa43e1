// AggregateFunctionNames (sql/incremental.h): which of the engine's functions
// aggregate, asked of the engine itself.
#include <map>

#include "sql/duckdb_handles.h"
#include "sql/incremental.h"
#include "sql/parse_tree.h"

namespace sluice::sql {

namespace {

using json = nlohmann::json;
using tree::Bool;
using tree::Lower;
using tree::Str;

// The functions a macro's definition calls outside subqueries (lower case).
void CalledFunctions(const json& e, std::set<std::string>* out) {
  if (e.is_object()) {
    const std::string cls = Str(e, "class");
    if (cls == "SUBQUERY") return;
    if (cls == "FUNCTION") out->insert(Lower(Str(e, "function_name")));
    for (const auto& [k, v] : e.items()) CalledFunctions(v, out);
  } else if (e.is_array()) {
    for (const auto& v : e) CalledFunctions(v, out);
  }
}

}  // namespace

arrow::Result<std::set<std::string>> AggregateFunctionNames(duckdb_connection conn) {
  static constexpr const char* kQuery =
      "SELECT function_name, function_type, "
      "CASE WHEN function_type = 'macro' "
      "THEN json_serialize_sql('SELECT ' || macro_definition) END "
      "FROM duckdb_functions() WHERE function_type IN ('aggregate', 'macro')";
  Result res;
  if (duckdb_query(conn, kQuery, res.out()) != DuckDBSuccess) return ResultStatus(res.out());
  auto text = [&](idx_t col, idx_t row) -> std::optional<std::string> {
    char* v = duckdb_value_varchar(res.out(), col, row);
    if (v == nullptr) return std::nullopt;
    std::string s(v);
    duckdb_free(v);
    return s;
  };
  std::set<std::string> aggregates;
  std::multimap<std::string, std::set<std::string>> macros;  // name → functions it calls
  const idx_t rows = duckdb_row_count(res.out());
  for (idx_t r = 0; r < rows; ++r) {
    auto name = text(0, r);
    auto type = text(1, r);
    if (!name || !type) continue;
    if (*type == "aggregate") {
      aggregates.insert(Lower(*name));
      continue;
    }
    auto tree_text = text(2, r);
    if (!tree_text) continue;
    json tree = json::parse(*tree_text, nullptr, /*allow_exceptions=*/false);
    if (tree.is_discarded() || Bool(tree, "error")) continue;
    std::set<std::string> called;
    CalledFunctions(tree, &called);
    macros.emplace(Lower(*name), std::move(called));
  }
  // A macro is an aggregate when it calls one (macros may call macros): fixpoint.
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& [name, called] : macros) {
      if (aggregates.count(name)) continue;
      for (const auto& f : called) {
        if (aggregates.count(f)) {
          aggregates.insert(name);
          changed = true;
          break;
        }
      }
    }
  }
  return aggregates;
}

}  // namespace sluice::sql
