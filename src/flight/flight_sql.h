// Flight SQL metadata commands (docs/protocol.md, "Flight SQL"): GetCatalogs, GetDbSchemas,
// GetTables, GetTableTypes and GetSqlInfo, answered from the engine's tables with
// the result schemas FlightSql.proto prescribes, so ADBC and JDBC Flight SQL
// drivers can list what sluice serves.
#pragma once

#include <memory>

#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "sql/engine.h"
#include "wire/flight_sql.h"

namespace sluice::flight {

/// \brief Whether `command` is one of the metadata commands answered here.
bool IsMetadataCommand(const wire::Command& command);

/// \brief The result schema of a metadata command (FlightSql.proto):
/// - GetCatalogs: catalog_name utf8 not null
/// - GetDbSchemas: catalog_name utf8, db_schema_name utf8 not null
/// - GetTables: catalog_name utf8, db_schema_name utf8, table_name utf8 not null,
///   table_type utf8 not null, and with include_schema table_schema binary not null
///   (an IPC-serialized Arrow schema)
/// - GetTableTypes: table_type utf8 not null
/// - GetSqlInfo: info_name uint32 not null, value dense_union<string_value: utf8,
///   bool_value: bool, bigint_value: int64, int32_bitmask: int32,
///   string_list: list<utf8>, int32_to_int32_list_map: map<int32, list<int32>>>
arrow::Result<std::shared_ptr<arrow::Schema>> MetadataSchema(const wire::Command& command);

/// \brief The answer to a metadata command as one record batch. Filter patterns
/// are SQL LIKE patterns (`%` any run, `_` one character, `\` escapes).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> MetadataResult(sql::Engine* engine,
                                                                 const wire::Command& command);

/// \brief Whether `text` matches the SQL LIKE `pattern` (case-sensitive).
bool MatchLike(std::string_view text, std::string_view pattern);

}  // namespace sluice::flight
