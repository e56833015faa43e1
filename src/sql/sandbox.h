// The query sandbox: what user SQL may do. Decided from DuckDB's own parse tree
// (json_serialize_sql), not from the SQL text.
#pragma once

#include <string>

#include "arrow/result.h"
#include "arrow/status.h"
#include "duckdb.h"
#include "nlohmann/json.hpp"

namespace sluice::sql {

/// \brief Parse `sql` with the engine and return its serialized parse tree
/// (the JSON of json_serialize_sql). Invalid when it does not parse, or is not
/// exactly one SELECT statement: "only read-only queries (SELECT) are allowed".
arrow::Result<nlohmann::json> ParseTree(duckdb_connection conn, const std::string& sql);

/// \brief Refuse table functions outside the allow-list (range, generate_series,
/// unnest, …): read_parquet/read_csv/glob and the like would read files.
/// Invalid: "table function read_csv is not allowed: …".
arrow::Status CheckTableFunctions(const nlohmann::json& tree);

/// \brief Refuse what would show a client the engine's configuration: the
/// scalar functions current_setting and getvariable (settings such as
/// allowed_directories and temp_directory hold the server's absolute data path;
/// the session variables hold its file names), the catalog view pg_settings
/// (over duckdb_settings()) and duckdb_settings/duckdb_variables as names. Names
/// compare case-insensitively, with any schema. Invalid: "current_setting is not
/// allowed: the server's settings and paths are not visible to queries".
arrow::Status CheckEngineSettings(const nlohmann::json& tree);

/// \brief Everything a query must pass: CheckTableFunctions and
/// CheckEngineSettings.
arrow::Status CheckSandbox(const nlohmann::json& tree);

}  // namespace sluice::sql
