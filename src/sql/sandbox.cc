#include "sql/sandbox.h"

#include <cctype>
#include <optional>
#include <set>

#include "sql/duckdb_handles.h"

namespace sluice::sql {

namespace {

// Table functions a query may call: they compute values and read nothing from
// outside the engine.
const std::set<std::string>& AllowedTableFunctions() {
  static const std::set<std::string> allowed = {
      "range",          "generate_series", "unnest",          "duckdb_tables",
      "duckdb_views",   "duckdb_columns",  "duckdb_schemas",  "duckdb_types",
      "duckdb_functions", "duckdb_keywords", "duckdb_constraints", "duckdb_databases",
      "duckdb_indexes", "duckdb_sequences", "pragma_table_info", "json_each",
      "json_tree",      "test_all_types",
  };
  return allowed;
}

void CollectTableFunctions(const nlohmann::json& node, std::vector<std::string>* out) {
  if (node.is_object()) {
    auto type = node.find("type");
    if (type != node.end() && type->is_string() && *type == "TABLE_FUNCTION") {
      auto fn = node.find("function");
      if (fn != node.end() && fn->is_object() && fn->contains("function_name")) {
        out->push_back((*fn)["function_name"].get<std::string>());
      }
    }
    for (const auto& [k, v] : node.items()) CollectTableFunctions(v, out);
  } else if (node.is_array()) {
    for (const auto& v : node) CollectTableFunctions(v, out);
  }
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Scalar functions and relations that read the engine's configuration.
bool ReadsSettings(const std::string& name) {
  static const std::set<std::string> names = {"current_setting", "getvariable", "pg_settings",
                                              "duckdb_settings", "duckdb_variables"};
  return names.count(Lower(name)) > 0;
}

// The first function call or table reference of `node` that reads settings.
std::optional<std::string> FindSettingsReader(const nlohmann::json& node) {
  if (node.is_object()) {
    auto cls = node.find("class");
    if (cls != node.end() && *cls == "FUNCTION") {
      auto fn = node.find("function_name");
      if (fn != node.end() && fn->is_string() && ReadsSettings(*fn)) return fn->get<std::string>();
    }
    auto type = node.find("type");
    if (type != node.end() && *type == "BASE_TABLE") {
      auto t = node.find("table_name");
      if (t != node.end() && t->is_string() && ReadsSettings(*t)) return t->get<std::string>();
    }
    for (const auto& [k, v] : node.items()) {
      if (auto found = FindSettingsReader(v)) return found;
    }
  } else if (node.is_array()) {
    for (const auto& v : node) {
      if (auto found = FindSettingsReader(v)) return found;
    }
  }
  return std::nullopt;
}

}  // namespace

arrow::Result<nlohmann::json> ParseTree(duckdb_connection conn, const std::string& sql) {
  PreparedStatement stmt;
  if (duckdb_prepare(conn, "SELECT json_serialize_sql($1::VARCHAR)", stmt.out()) != DuckDBSuccess) {
    return arrow::Status::UnknownError("engine: ", duckdb_prepare_error(stmt.get()));
  }
  if (duckdb_bind_varchar_length(stmt.get(), 1, sql.data(), sql.size()) != DuckDBSuccess) {
    // DuckDB refuses a VARCHAR that is not UTF-8 (the JSON Lines body is raw bytes).
    return arrow::Status::Invalid("the query text is not valid UTF-8");
  }
  Result res;
  if (duckdb_execute_prepared(stmt.get(), res.out()) != DuckDBSuccess) {
    return ResultStatus(res.out());
  }
  char* text = duckdb_value_varchar(res.out(), 0, 0);
  if (text == nullptr) return arrow::Status::UnknownError("engine: json_serialize_sql gave NULL");
  nlohmann::json tree = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  duckdb_free(text);
  if (tree.is_discarded()) return arrow::Status::UnknownError("engine: unreadable parse tree");
  if (tree.value("error", false)) {
    std::string type = tree.value("error_type", "");
    std::string message = tree.value("error_message", "");
    if (type == "not implemented") {
      return arrow::Status::Invalid(
          "only read-only queries (SELECT) are allowed: this server does not run DDL, DML, "
          "COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA or other statements");
    }
    return arrow::Status::Invalid(message);
  }
  const auto& statements = tree["statements"];
  if (statements.size() != 1) {
    return arrow::Status::Invalid("a query must be exactly one SELECT statement, got ",
                                  statements.size());
  }
  return tree;
}

arrow::Status CheckTableFunctions(const nlohmann::json& tree) {
  std::vector<std::string> functions;
  CollectTableFunctions(tree, &functions);
  for (const auto& f : functions) {
    if (!AllowedTableFunctions().count(f)) {
      return arrow::Status::Invalid("table function ", f,
                                    " is not allowed: queries may read only the chain tables "
                                    "(e.g. eth_rpc.blocks), not files or URLs");
    }
  }
  return arrow::Status::OK();
}

arrow::Status CheckEngineSettings(const nlohmann::json& tree) {
  if (auto name = FindSettingsReader(tree)) {
    return arrow::Status::Invalid(*name,
                                  " is not allowed: the server's settings and paths are not "
                                  "visible to queries");
  }
  return arrow::Status::OK();
}

arrow::Status CheckSandbox(const nlohmann::json& tree) {
  ARROW_RETURN_NOT_OK(CheckTableFunctions(tree));
  return CheckEngineSettings(tree);
}

}  // namespace sluice::sql
