#include "sql/evm_udf.h"

namespace sluice::sql::udf {

void SetNull(duckdb_vector out, idx_t row) {
  duckdb_vector_ensure_validity_writable(out);
  duckdb_validity_set_row_invalid(duckdb_vector_get_validity(out), row);
}

arrow::Result<std::optional<std::string>> ConstantString(duckdb_bind_info info, idx_t index) {
  Expression expr;
  try {
    *expr.out() = duckdb_scalar_function_bind_get_argument(info, index);
  } catch (const std::exception&) {
    // DuckDB 1.4 cannot copy some bound expressions (a scalar subquery) to hand
    // them out: such an argument is not a constant either.
    return arrow::Status::Invalid("argument ", index + 1, " is not constant (a subquery?)");
  }
  if (!expr) return arrow::Status::Invalid("cannot read argument ", index + 1);
  if (!duckdb_expression_is_foldable(expr.get())) {
    return arrow::Status::Invalid("argument ", index + 1, " is not constant");
  }
  ClientContext context;
  duckdb_scalar_function_get_client_context(info, context.out());
  Value value;
  ErrorData error;
  *error.out() = duckdb_expression_fold(context.get(), expr.get(), value.out());
  ARROW_RETURN_NOT_OK(ErrorDataStatus(error.get()));
  if (!value || duckdb_is_null_value(value.get())) return std::nullopt;
  char* text = duckdb_get_varchar(value.get());
  if (text == nullptr) return arrow::Status::Invalid("argument ", index + 1, " is not a string");
  std::string out(text);
  duckdb_free(text);
  return out;
}

idx_t BindConnectionId(duckdb_bind_info info) {
  ClientContext context;
  duckdb_scalar_function_get_client_context(info, context.out());
  return duckdb_client_context_get_connection_id(context.get());
}

void BindError(duckdb_bind_info info, std::string_view function, std::string_view message) {
  std::string msg = std::string(function) + ": " + std::string(message);
  duckdb_scalar_function_bind_set_error(info, msg.c_str());
}

void ExecError(duckdb_function_info info, std::string_view function, std::string_view message) {
  std::string msg = std::string(function) + ": " + std::string(message);
  duckdb_scalar_function_set_error(info, msg.c_str());
}

ScalarFunction MakeFunction(const FunctionSpec& spec) {
  ScalarFunction f;
  *f.out() = duckdb_create_scalar_function();
  duckdb_scalar_function_set_name(f.get(), spec.name);
  for (duckdb_type t : spec.params) {
    LogicalType type;
    *type.out() = duckdb_create_logical_type(t);
    duckdb_scalar_function_add_parameter(f.get(), type.get());
  }
  if (spec.varargs != DUCKDB_TYPE_INVALID) {
    LogicalType type;
    *type.out() = duckdb_create_logical_type(spec.varargs);
    duckdb_scalar_function_set_varargs(f.get(), type.get());
  }
  duckdb_scalar_function_set_return_type(f.get(), spec.result);
  if (spec.bind != nullptr) duckdb_scalar_function_set_bind(f.get(), spec.bind);
  duckdb_scalar_function_set_function(f.get(), spec.function);
  if (spec.special_null_handling) duckdb_scalar_function_set_special_handling(f.get());
  if (spec.is_volatile) duckdb_scalar_function_set_volatile(f.get());
  if (spec.extra_info != nullptr) {
    duckdb_scalar_function_set_extra_info(f.get(), spec.extra_info, spec.delete_extra_info);
  }
  return f;
}

arrow::Status Register(duckdb_connection conn, const FunctionSpec& spec) {
  ScalarFunction f = MakeFunction(spec);
  if (duckdb_register_scalar_function(conn, f.get()) != DuckDBSuccess) {
    return arrow::Status::Invalid("cannot register SQL function ", spec.name,
                                  " (already registered in this database?)");
  }
  return arrow::Status::OK();
}

}  // namespace sluice::sql::udf
