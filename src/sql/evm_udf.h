// Helpers shared by the EVM SQL functions (sql/evm_functions.cc,
// sql/evm_decode_functions.cc, sql/evm_call.cc) for DuckDB's C API of scalar
// functions: reading input vectors, constant arguments at bind, bind data, errors.
// Internal to sql/.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "arrow/result.h"
#include "duckdb.h"
#include "sql/duckdb_handles.h"
#include "sql/evm_abi.h"

namespace sluice::sql::udf {

using ScalarFunction = internal::Handle<duckdb_scalar_function, duckdb_destroy_scalar_function>;
using ScalarFunctionSet =
    internal::Handle<duckdb_scalar_function_set, duckdb_destroy_scalar_function_set>;
using Expression = internal::Handle<duckdb_expression, duckdb_destroy_expression>;
using ClientContext = internal::Handle<duckdb_client_context, duckdb_destroy_client_context>;

/// \brief A BLOB or VARCHAR input column of one chunk (the C API hands scalar
/// functions flat vectors).
class StringColumn {
 public:
  StringColumn(duckdb_data_chunk chunk, idx_t col) {
    duckdb_vector v = duckdb_data_chunk_get_vector(chunk, col);
    data_ = static_cast<duckdb_string_t*>(duckdb_vector_get_data(v));
    validity_ = duckdb_vector_get_validity(v);
  }
  /// std::nullopt for NULL.
  std::optional<std::string_view> Get(idx_t row) const {
    if (validity_ != nullptr && !duckdb_validity_row_is_valid(validity_, row)) return std::nullopt;
    return std::string_view(duckdb_string_t_data(&data_[row]), duckdb_string_t_length(data_[row]));
  }
  std::optional<ByteSpan> GetBytes(idx_t row) const {
    auto s = Get(row);
    if (!s) return std::nullopt;
    return ByteSpan(reinterpret_cast<const uint8_t*>(s->data()), s->size());
  }

 private:
  duckdb_string_t* data_;
  uint64_t* validity_;
};

/// \brief Make row `row` of a flat output vector NULL.
void SetNull(duckdb_vector out, idx_t row);

/// \brief Write bytes or text into row `row` of a BLOB/VARCHAR output vector.
inline void SetString(duckdb_vector out, idx_t row, std::string_view s) {
  duckdb_vector_assign_string_element_len(out, row, s.data(), s.size());
}

/// \brief The value of argument `index` at bind when it is a constant (folded):
/// std::nullopt for NULL; Invalid when it is not constant (a column, a parameter,
/// a subquery).
arrow::Result<std::optional<std::string>> ConstantString(duckdb_bind_info info, idx_t index);

/// \brief The id of the connection a function is bound in.
idx_t BindConnectionId(duckdb_bind_info info);

/// \brief Owns bind data of type T for DuckDB (delete and copy callbacks).
template <typename T>
void SetBindData(duckdb_bind_info info, T data) {
  duckdb_scalar_function_set_bind_data(info, new T(std::move(data)),
                                       [](void* p) { delete static_cast<T*>(p); });
  duckdb_scalar_function_set_bind_data_copy(
      info, [](void* p) -> void* { return new T(*static_cast<const T*>(p)); });
}

/// \brief The bind data of a function's execution.
template <typename T>
const T* BindData(duckdb_function_info info) {
  return static_cast<const T*>(duckdb_scalar_function_get_bind_data(info));
}

/// \brief Report an error from a bind or an execution: "<function>: <message>".
void BindError(duckdb_bind_info info, std::string_view function, std::string_view message);
void ExecError(duckdb_function_info info, std::string_view function, std::string_view message);

/// \brief Runs `body`; an exception becomes an error of the bind or of the
/// function (the C API must not see C++ exceptions).
template <typename Info, typename Body>
void Guarded(Info info, Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::string msg = std::string("internal error: ") + e.what();
    if constexpr (std::is_same_v<Info, duckdb_bind_info>) {
      duckdb_scalar_function_bind_set_error(info, msg.c_str());
    } else {
      duckdb_scalar_function_set_error(info, msg.c_str());
    }
  }
}

/// \brief How a function is registered.
struct FunctionSpec {
  const char* name = nullptr;
  std::vector<duckdb_type> params;  ///< DUCKDB_TYPE_ANY: any type, as is
  duckdb_type varargs = DUCKDB_TYPE_INVALID;  ///< set: then params must be empty
  duckdb_logical_type result = nullptr;       ///< the return type
  duckdb_scalar_function_bind_t bind = nullptr;
  duckdb_scalar_function_t function = nullptr;
  bool special_null_handling = false;  ///< called with NULL inputs (else NULL in, NULL out)
  bool is_volatile = false;            ///< never folded at plan time
  void* extra_info = nullptr;          ///< owned by DuckDB once registered
  duckdb_delete_callback_t delete_extra_info = nullptr;
};

/// \brief A scalar function as described, to register or add to a set.
ScalarFunction MakeFunction(const FunctionSpec& spec);

/// \brief Register one function. Invalid when DuckDB refuses (e.g. the name is
/// taken in this database).
arrow::Status Register(duckdb_connection conn, const FunctionSpec& spec);

}  // namespace sluice::sql::udf
