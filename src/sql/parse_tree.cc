#include "sql/parse_tree.h"

#include <cctype>

#include "sql/duckdb_handles.h"

namespace sluice::sql::tree {

namespace {

// DuckDB's "no location" (optional_idx invalid).
constexpr uint64_t kNoLocation = 18446744073709551615ULL;

json ModifierlessSelect() {
  return json{{"type", "SELECT_NODE"},
              {"modifiers", json::array()},
              {"cte_map", {{"map", json::array()}}},
              {"select_list", json::array()},
              {"from_table", {{"type", "EMPTY"}, {"alias", ""}, {"sample", nullptr},
                              {"query_location", kNoLocation}}},
              {"where_clause", nullptr},
              {"group_expressions", json::array()},
              {"group_sets", json::array()},
              {"aggregate_handling", "STANDARD_HANDLING"},
              {"having", nullptr},
              {"sample", nullptr},
              {"qualify", nullptr}};
}

json Star() {
  return json{{"class", "STAR"},          {"type", "STAR"},
              {"alias", ""},              {"query_location", kNoLocation},
              {"relation_name", ""},      {"exclude_list", json::array()},
              {"replace_list", json::array()}, {"columns", false},
              {"expr", nullptr},          {"qualified_exclude_list", json::array()},
              {"rename_list", json::array()}};
}

json Constant(json type_id, json value, bool is_null) {
  json v = {{"type", {{"id", std::move(type_id)}, {"type_info", nullptr}}}, {"is_null", is_null}};
  if (!is_null) v["value"] = std::move(value);
  return json{{"class", "CONSTANT"}, {"type", "VALUE_CONSTANT"}, {"alias", ""},
              {"query_location", kNoLocation}, {"value", std::move(v)}};
}

}  // namespace

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

const json* Field(const json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}
json* MutableField(json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}
std::string Str(const json& o, const char* key) {
  const json* f = Field(o, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}
bool Bool(const json& o, const char* key) {
  const json* f = Field(o, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}
const json& Array(const json& o, const char* key) {
  static const json empty = json::array();
  const json* f = Field(o, key);
  return f != nullptr && f->is_array() ? *f : empty;
}

arrow::Result<const json*> RootNode(const json& tree) {
  if (!tree.is_object()) return arrow::Status::Invalid("parse tree is not a JSON object");
  if (Bool(tree, "error")) return arrow::Status::Invalid(Str(tree, "error_message"));
  if (tree.contains("statements")) {
    const json& statements = Array(tree, "statements");
    if (statements.size() != 1) {
      return arrow::Status::Invalid("a query must be exactly one SELECT statement, got ",
                                    statements.size());
    }
    const json* node = Field(statements[0], "node");
    if (node == nullptr) return arrow::Status::Invalid("parse tree statement has no node");
    return node;
  }
  if (const json* node = Field(tree, "node")) return node;
  if (tree.contains("type")) return &tree;
  return arrow::Status::Invalid("not a parse tree of json_serialize_sql");
}

arrow::Result<json*> MutableRootNode(json& tree) {
  ARROW_ASSIGN_OR_RAISE(const json* root, RootNode(tree));
  return const_cast<json*>(root);
}

bool IsColumnRef(const json& e) { return Str(e, "class") == "COLUMN_REF"; }

std::string ColumnName(const json& column_ref) {
  if (!IsColumnRef(column_ref)) return "";
  const json& names = Array(column_ref, "column_names");
  if (names.empty() || !names.back().is_string()) return "";
  return Lower(names.back().get<std::string>());
}

std::string Qualifier(const json& column_ref) {
  const json& names = Array(column_ref, "column_names");
  if (names.size() < 2 || !names[names.size() - 2].is_string()) return "";
  return Lower(names[names.size() - 2].get<std::string>());
}

bool IsCall(const json& e, const std::string& name, size_t arity) {
  return Str(e, "class") == "FUNCTION" && Lower(Str(e, "function_name")) == name &&
         Str(e, "schema").empty() && Array(e, "children").size() == arity;
}

bool ContainsNode(const json& e, const std::function<bool(const json&)>& match,
                  const std::function<bool(const json&)>& skip) {
  if (e.is_object()) {
    if (skip && skip(e)) return false;
    if (match(e)) return true;
    for (const auto& [k, v] : e.items()) {
      if (ContainsNode(v, match, skip)) return true;
    }
  } else if (e.is_array()) {
    for (const auto& v : e) {
      if (ContainsNode(v, match, skip)) return true;
    }
  }
  return false;
}

bool CallsAggregate(const json& e, const std::function<bool(const std::string&)>& is_aggregate) {
  return ContainsNode(
      e,
      [&](const json& x) {
        return Str(x, "class") == "FUNCTION" && is_aggregate(Lower(Str(x, "function_name")));
      },
      [](const json& x) {
        const std::string cls = Str(x, "class");
        return cls == "SUBQUERY" || cls == "WINDOW";
      });
}

bool AggregatingSelect(const json& node,
                       const std::function<bool(const std::string&)>& is_aggregate) {
  if (!Array(node, "group_expressions").empty()) return true;
  if (Str(node, "aggregate_handling") == "FORCE_AGGREGATES") return true;
  if (CallsAggregate(Array(node, "select_list"), is_aggregate)) return true;
  const json* having = Field(node, "having");
  return having != nullptr && CallsAggregate(*having, is_aggregate);
}

void ForEachExpressionSubquery(json& e, const std::function<void(json&)>& f) {
  if (e.is_array()) {
    for (auto& v : e) ForEachExpressionSubquery(v, f);
    return;
  }
  if (!e.is_object()) return;
  if (Str(e, "class") == "SUBQUERY") {
    if (json* child = MutableField(e, "child")) ForEachExpressionSubquery(*child, f);
    if (json* sub = MutableField(e, "subquery")) {
      if (json* node = MutableField(*sub, "node")) f(*node);
    }
    return;
  }
  for (auto& [k, v] : e.items()) ForEachExpressionSubquery(v, f);
}

json ColumnRef(std::vector<std::string> names, std::string alias) {
  return json{{"class", "COLUMN_REF"}, {"type", "COLUMN_REF"}, {"alias", std::move(alias)},
              {"query_location", kNoLocation}, {"column_names", std::move(names)}};
}

json Call(std::string name, std::vector<json> children) {
  return json{{"class", "FUNCTION"},
              {"type", "FUNCTION"},
              {"alias", ""},
              {"query_location", kNoLocation},
              {"function_name", std::move(name)},
              {"schema", ""},
              {"children", std::move(children)},
              {"filter", nullptr},
              {"order_bys", {{"type", "ORDER_MODIFIER"}, {"orders", json::array()}}},
              {"distinct", false},
              {"is_operator", false},
              {"export_state", false},
              {"catalog", ""}};
}

json StringConstant(const std::string& value) { return Constant("VARCHAR", value, false); }
json BoolConstant(bool value) { return Constant("BOOLEAN", value, false); }
json NullConstant() { return Constant("NULL", nullptr, true); }

json And(std::vector<json> children) {
  json flat = json::array();
  for (auto& c : children) {
    if (Str(c, "class") == "CONJUNCTION" && Str(c, "type") == "CONJUNCTION_AND") {
      for (auto& g : c["children"]) flat.push_back(std::move(g));
    } else {
      flat.push_back(std::move(c));
    }
  }
  if (flat.size() == 1) return std::move(flat[0]);
  return json{{"class", "CONJUNCTION"}, {"type", "CONJUNCTION_AND"}, {"alias", ""},
              {"query_location", kNoLocation}, {"children", std::move(flat)}};
}

json IsNotTrue(json e) {
  return json{{"class", "COMPARISON"}, {"type", "COMPARE_DISTINCT_FROM"}, {"alias", ""},
              {"query_location", kNoLocation}, {"left", std::move(e)},
              {"right", BoolConstant(true)}};
}

json Not(json e) {
  return json{{"class", "OPERATOR"}, {"type", "OPERATOR_NOT"}, {"alias", ""},
              {"query_location", kNoLocation}, {"children", json::array({std::move(e)})}};
}

json Exists(json node) {
  return json{{"class", "SUBQUERY"},
              {"type", "SUBQUERY"},
              {"alias", ""},
              {"query_location", kNoLocation},
              {"subquery_type", "EXISTS"},
              {"subquery", {{"node", std::move(node)}, {"named_param_map", json::array()}}},
              {"child", nullptr},
              {"comparison_type", "INVALID"}};
}

json SubqueryRef(json node, std::string alias, json column_aliases) {
  return json{{"type", "SUBQUERY"},
              {"alias", std::move(alias)},
              {"sample", nullptr},
              {"query_location", kNoLocation},
              {"subquery", {{"node", std::move(node)}, {"named_param_map", json::array()}}},
              {"column_name_alias", std::move(column_aliases)}};
}

json UnionAll(json left, json right) {
  return json{{"type", "SET_OPERATION_NODE"},
              {"modifiers", json::array()},
              {"cte_map", {{"map", json::array()}}},
              {"setop_type", "UNION"},
              {"left", std::move(left)},
              {"right", std::move(right)},
              {"setop_all", true},
              {"children", json::array()}};
}

json SelectStarOrderedBy(json node, const std::string& alias, const std::string& order_column) {
  json select = ModifierlessSelect();
  select["select_list"].push_back(Star());
  select["from_table"] = SubqueryRef(std::move(node), alias);
  select["modifiers"].push_back(
      {{"type", "ORDER_MODIFIER"},
       {"orders",
        json::array({{{"type", "ORDER_DEFAULT"},
                      {"null_order", "ORDER_DEFAULT"},
                      {"expression", ColumnRef({order_column})}}})}});
  return select;
}

json SelectOneFrom(json from, json where) {
  json select = ModifierlessSelect();
  select["select_list"].push_back(Constant("INTEGER", 1, false));
  select["from_table"] = std::move(from);
  select["where_clause"] = std::move(where);
  return select;
}

arrow::Result<std::string> Deparse(duckdb_connection conn, const json& tree) {
  PreparedStatement stmt;
  if (duckdb_prepare(conn, "SELECT json_deserialize_sql($1::JSON)", stmt.out()) != DuckDBSuccess) {
    return arrow::Status::UnknownError("engine: ", duckdb_prepare_error(stmt.get()));
  }
  const std::string text = tree.dump();
  if (duckdb_bind_varchar_length(stmt.get(), 1, text.data(), text.size()) != DuckDBSuccess) {
    return arrow::Status::Invalid("engine: cannot bind a parse tree");
  }
  Result res;
  if (duckdb_execute_prepared(stmt.get(), res.out()) != DuckDBSuccess) {
    return ResultStatus(res.out()).WithMessage("cannot turn a rewritten query back into SQL: ",
                                               duckdb_result_error(res.out()));
  }
  char* sql = duckdb_value_varchar(res.out(), 0, 0);
  if (sql == nullptr) return arrow::Status::UnknownError("engine: json_deserialize_sql gave NULL");
  std::string out(sql);
  duckdb_free(sql);
  return out;
}

}  // namespace sluice::sql::tree
