// Flight SQL GetSqlInfo (FlightSql.proto, enum SqlInfo): what the server is and
// which SQL it speaks, as JDBC's DatabaseMetaData and ODBC's SQLGetInfo ask.
//
// Every id of the enum is answered — FlightSql.proto: "Flight SQL Servers may
// choose to include additional metadata above and beyond the specified set,
// however they must at least return the specified set" — with the type the
// proto gives it: UTF-8 strings, booleans, int64 limits (0: no limit or
// unknown), int32 ordinals and bitmasks, string lists (keywords, functions) and
// the SQL_SUPPORTS_CONVERT map<int32, list<int32>>. A JDBC driver turns a missing
// id into a NullPointerException in the DatabaseMetaData method that reads it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "sql/engine.h"
#include "wire/flight_sql.h"

namespace sluice::flight {

/// \brief The type of GetSqlInfo's `value` column: dense_union<string_value: utf8,
/// bool_value: bool, bigint_value: int64, int32_bitmask: int32, string_list:
/// list<utf8>, int32_to_int32_list_map: map<int32, list<int32>>>, type codes 0..5.
std::shared_ptr<arrow::DataType> SqlInfoValueType();

/// \brief One GetSqlInfo value, in the union member its id's type asks for.
using SqlInfoValue = std::variant<std::string, bool, int64_t, int32_t, std::vector<std::string>,
                                  std::map<int32_t, std::vector<int32_t>>>;

/// \brief Every SqlInfo id with its value. The keyword list (SQL_KEYWORDS) is the
/// engine's reserved keywords (duckdb_keywords()); the function lists are
/// functions the engine has. IOError when the engine cannot be asked.
arrow::Result<std::map<uint32_t, SqlInfoValue>> SqlInfoValues(sql::Engine* engine);

/// \brief The answer to GetSqlInfo as one record batch of `schema` (info_name
/// uint32, value SqlInfoValueType()): the ids asked for, in the order asked (ids
/// sluice does not know are left out), or every id when none is asked for.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> SqlInfoResult(
    sql::Engine* engine, const wire::CommandGetSqlInfo& command,
    const std::shared_ptr<arrow::Schema>& schema);

}  // namespace sluice::flight
