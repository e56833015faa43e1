// RAII owners for DuckDB C API handles, and the one place where DuckDB errors
// become arrow::Status values with the right code.
#pragma once

#include <cstring>
#include <memory>
#include <string>

#include "arrow/status.h"
#include "duckdb.h"

namespace sluice::sql {

namespace internal {
template <typename T, void (*Destroy)(T*)>
struct HandleDeleter {
  void operator()(T* p) const {
    if (p != nullptr && *p != nullptr) Destroy(p);
    delete p;
  }
};
template <typename T, void (*Destroy)(T*)>
class Handle {
 public:
  Handle() : p_(new T(nullptr)) {}
  T get() const { return *p_; }
  T* out() { return p_.get(); }
  explicit operator bool() const { return *p_ != nullptr; }

 private:
  std::unique_ptr<T, HandleDeleter<T, Destroy>> p_;
};
}  // namespace internal

using Database = internal::Handle<duckdb_database, duckdb_close>;
using Connection = internal::Handle<duckdb_connection, duckdb_disconnect>;
using PreparedStatement = internal::Handle<duckdb_prepared_statement, duckdb_destroy_prepare>;
using PendingResult = internal::Handle<duckdb_pending_result, duckdb_destroy_pending>;
using DataChunk = internal::Handle<duckdb_data_chunk, duckdb_destroy_data_chunk>;
using ArrowOptions = internal::Handle<duckdb_arrow_options, duckdb_destroy_arrow_options>;
using ExtractedStatements =
    internal::Handle<duckdb_extracted_statements, duckdb_destroy_extracted>;
using LogicalType = internal::Handle<duckdb_logical_type, duckdb_destroy_logical_type>;
using ErrorData = internal::Handle<duckdb_error_data, duckdb_destroy_error_data>;
using Config = internal::Handle<duckdb_config, duckdb_destroy_config>;
using Value = internal::Handle<duckdb_value, duckdb_destroy_value>;

/// \brief A duckdb_result owned by value (the C API keeps results in structs).
class Result {
 public:
  Result() { std::memset(&r_, 0, sizeof(r_)); }
  ~Result() { duckdb_destroy_result(&r_); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  duckdb_result* out() { return &r_; }
  duckdb_result& get() { return r_; }

 private:
  duckdb_result r_;
};

/// \brief Map a DuckDB error type and message to a Status:
/// parser/binder/catalog/permission errors -> Invalid (INVALID_ARGUMENT over Flight),
/// interrupt -> Cancelled, out of memory -> OutOfMemory, others -> ExecutionError.
arrow::Status ErrorToStatus(duckdb_error_type type, const std::string& message);

/// \brief Status from a failed duckdb_result (query or execute_pending).
arrow::Status ResultStatus(duckdb_result* result);

/// \brief Status from a duckdb_error_data (OK when it holds no error).
arrow::Status ErrorDataStatus(duckdb_error_data data);

}  // namespace sluice::sql
