#include "sql/parameters.h"

#include <vector>

#include "arrow/c/bridge.h"
#include "arrow/scalar.h"
#include "arrow/util/decimal.h"
#include "sql/duckdb_handles.h"

namespace sluice::sql {

namespace {

int64_t ToMicros(int64_t v, arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      return v * 1000000;
    case arrow::TimeUnit::MILLI:
      return v * 1000;
    case arrow::TimeUnit::MICRO:
      return v;
    case arrow::TimeUnit::NANO:
      return v / 1000;
  }
  return v;
}

// A DuckDB value holding `scalar`; the caller owns it.
arrow::Result<duckdb_value> ToDuckValue(const arrow::Scalar& scalar) {
  using arrow::Type;
  if (!scalar.is_valid) return duckdb_create_null_value();
  switch (scalar.type->id()) {
    case Type::NA:
      return duckdb_create_null_value();
    case Type::BOOL:
      return duckdb_create_bool(static_cast<const arrow::BooleanScalar&>(scalar).value);
    case Type::INT8:
      return duckdb_create_int8(static_cast<const arrow::Int8Scalar&>(scalar).value);
    case Type::INT16:
      return duckdb_create_int16(static_cast<const arrow::Int16Scalar&>(scalar).value);
    case Type::INT32:
      return duckdb_create_int32(static_cast<const arrow::Int32Scalar&>(scalar).value);
    case Type::INT64:
      return duckdb_create_int64(static_cast<const arrow::Int64Scalar&>(scalar).value);
    case Type::UINT8:
      return duckdb_create_uint8(static_cast<const arrow::UInt8Scalar&>(scalar).value);
    case Type::UINT16:
      return duckdb_create_uint16(static_cast<const arrow::UInt16Scalar&>(scalar).value);
    case Type::UINT32:
      return duckdb_create_uint32(static_cast<const arrow::UInt32Scalar&>(scalar).value);
    case Type::UINT64:
      return duckdb_create_uint64(static_cast<const arrow::UInt64Scalar&>(scalar).value);
    case Type::FLOAT:
      return duckdb_create_float(static_cast<const arrow::FloatScalar&>(scalar).value);
    case Type::DOUBLE:
      return duckdb_create_double(static_cast<const arrow::DoubleScalar&>(scalar).value);
    case Type::STRING:
    case Type::LARGE_STRING:
    case Type::STRING_VIEW: {
      auto view = static_cast<const arrow::BaseBinaryScalar&>(scalar).view();
      return duckdb_create_varchar_length(view.data(), view.size());
    }
    case Type::BINARY:
    case Type::LARGE_BINARY:
    case Type::BINARY_VIEW:
    case Type::FIXED_SIZE_BINARY: {
      auto view = static_cast<const arrow::BaseBinaryScalar&>(scalar).view();
      return duckdb_create_blob(reinterpret_cast<const uint8_t*>(view.data()), view.size());
    }
    case Type::DECIMAL128: {
      const auto& d = static_cast<const arrow::Decimal128Scalar&>(scalar);
      const auto& type = static_cast<const arrow::Decimal128Type&>(*scalar.type);
      if (type.precision() > 38 || type.scale() < 0) break;
      duckdb_decimal dec;
      dec.width = static_cast<uint8_t>(type.precision());
      dec.scale = static_cast<uint8_t>(type.scale());
      dec.value.lower = d.value.low_bits();
      dec.value.upper = d.value.high_bits();
      return duckdb_create_decimal(dec);
    }
    case Type::DATE32:
      return duckdb_create_date(
          duckdb_date{static_cast<const arrow::Date32Scalar&>(scalar).value});
    case Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampScalar&>(scalar);
      const auto& type = static_cast<const arrow::TimestampType&>(*scalar.type);
      duckdb_timestamp t{ToMicros(ts.value, type.unit())};
      return type.timezone().empty() ? duckdb_create_timestamp(t) : duckdb_create_timestamp_tz(t);
    }
    default:
      break;
  }
  return arrow::Status::NotImplemented("a parameter of type ", scalar.type->ToString(),
                                       " cannot be bound; cast it to a supported type");
}

}  // namespace

arrow::Status BindParameters(duckdb_prepared_statement stmt, const Parameters& params) {
  const idx_t expected = duckdb_nparams(stmt);
  const int given = params ? params->num_columns() : 0;
  if (static_cast<idx_t>(given) != expected) {
    if (given == 0) {
      return arrow::Status::Invalid("the query has ", expected,
                                    " parameter(s) but none are bound; bind them with a "
                                    "Flight SQL prepared statement (DoPut)");
    }
    return arrow::Status::Invalid("the query has ", expected, " parameter(s) but ", given,
                                  " value(s) are bound");
  }
  if (given == 0) return arrow::Status::OK();
  if (params->num_rows() != 1) {
    return arrow::Status::Invalid("bind exactly one row of parameters to a query; got ",
                                  params->num_rows());
  }
  duckdb_clear_bindings(stmt);
  for (int i = 0; i < given; ++i) {
    ARROW_ASSIGN_OR_RAISE(auto scalar, params->column(i)->GetScalar(0));
    Value value;
    ARROW_ASSIGN_OR_RAISE(*value.out(), ToDuckValue(*scalar));
    if (duckdb_bind_value(stmt, i + 1, value.get()) != DuckDBSuccess) {
      return arrow::Status::Invalid("parameter ", i + 1, " (", scalar->type->ToString(),
                                    ") cannot be bound to this query");
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Schema>> ParameterSchema(duckdb_connection conn,
                                                              duckdb_prepared_statement stmt) {
  const idx_t n = duckdb_nparams(stmt);
  ArrowOptions options;
  duckdb_connection_get_arrow_options(conn, options.out());
  arrow::FieldVector fields;
  for (idx_t i = 0; i < n; ++i) {
    const std::string name = std::to_string(i + 1);
    LogicalType type;
    *type.out() = duckdb_param_logical_type(stmt, i + 1);
    std::shared_ptr<arrow::Field> field;
    if (type && duckdb_get_type_id(type.get()) != DUCKDB_TYPE_INVALID) {
      duckdb_logical_type raw = type.get();
      const char* name_ptr = name.c_str();
      ArrowSchema c_schema;
      ErrorData err;
      *err.out() = duckdb_to_arrow_schema(options.get(), &raw, &name_ptr, 1, &c_schema);
      if (ErrorDataStatus(err.get()).ok()) {
        auto schema = arrow::ImportSchema(&c_schema);
        if (schema.ok() && (*schema)->num_fields() == 1) field = (*schema)->field(0);
      }
    }
    // Not known before binding (`SELECT ? AS x`; a type such as ANY): a field of
    // Arrow type null, so that a client still sees one field per placeholder.
    if (!field) field = arrow::field(name, arrow::null());
    fields.push_back(std::move(field));
  }
  return arrow::schema(std::move(fields));
}

}  // namespace sluice::sql
