#include "sql/duckdb_handles.h"

#include <string_view>

namespace sluice::sql {

namespace {
bool StartsWith(std::string_view s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

arrow::Status ErrorToStatus(duckdb_error_type type, const std::string& message) {
  switch (type) {
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_SYNTAX:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_CATALOG:
    case DUCKDB_ERROR_PERMISSION:
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_NOT_IMPLEMENTED:
    case DUCKDB_ERROR_PARAMETER_NOT_RESOLVED:
    case DUCKDB_ERROR_PARAMETER_NOT_ALLOWED:
    case DUCKDB_ERROR_MISSING_EXTENSION:
    case DUCKDB_ERROR_AUTOLOAD:
    case DUCKDB_ERROR_SETTINGS:
    case DUCKDB_ERROR_DEPENDENCY:
      return arrow::Status::Invalid(message);
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_OUT_OF_RANGE:
    case DUCKDB_ERROR_DIVIDE_BY_ZERO:
    case DUCKDB_ERROR_DECIMAL:
    case DUCKDB_ERROR_MISMATCH_TYPE:
      return arrow::Status::Invalid(message);
    case DUCKDB_ERROR_INTERRUPT:
      return arrow::Status::Cancelled("query cancelled");
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return arrow::Status::OutOfMemory(message);
    default:
      break;
  }
  // Prepare errors carry no type: classify by DuckDB's message prefix.
  for (std::string_view p : {"Parser Error", "Binder Error", "Catalog Error", "Permission Error",
                             "Invalid Input Error", "Not implemented Error", "Conversion Error",
                             "Syntax Error"}) {
    if (StartsWith(message, p)) return arrow::Status::Invalid(message);
  }
  if (StartsWith(message, "INTERRUPT") || message.find("Interrupted") != std::string::npos) {
    return arrow::Status::Cancelled("query cancelled");
  }
  if (StartsWith(message, "Out of Memory Error")) return arrow::Status::OutOfMemory(message);
  return arrow::Status::ExecutionError(message);
}

arrow::Status ResultStatus(duckdb_result* result) {
  const char* msg = duckdb_result_error(result);
  return ErrorToStatus(duckdb_result_error_type(result), msg ? msg : "unknown engine error");
}

arrow::Status ErrorDataStatus(duckdb_error_data data) {
  if (data == nullptr || !duckdb_error_data_has_error(data)) return arrow::Status::OK();
  return ErrorToStatus(duckdb_error_data_error_type(data), duckdb_error_data_message(data));
}

}  // namespace sluice::sql
