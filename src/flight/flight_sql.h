// Flight SQL metadata commands (docs/protocol.md, "Flight SQL"): GetCatalogs,
// GetDbSchemas, GetTables, GetTableTypes, GetSqlInfo (flight/sql_info.h),
// GetXdbcTypeInfo, and GetPrimaryKeys, GetExportedKeys, GetImportedKeys and
// GetCrossReference (empty: no table has keys), answered from the engine's tables
// with the result schemas FlightSql.proto prescribes, so ADBC, JDBC and Go Flight
// SQL drivers and the BI tools on them can list what sluice serves.
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
/// - GetXdbcTypeInfo: type_name utf8 not null, data_type int32 not null,
///   column_size int32, literal_prefix utf8, literal_suffix utf8, create_params
///   list<utf8 not null>, nullable int32 not null, case_sensitive bool not null,
///   searchable int32 not null, unsigned_attribute bool, fixed_prec_scale bool not
///   null, auto_increment bool, local_type_name utf8, minimum_scale int32,
///   maximum_scale int32, sql_data_type int32 not null, datetime_subcode int32,
///   num_prec_radix int32, interval_precision int32 — one row per type sluice's
///   answers have (BOOLEAN, the signed and unsigned integers, FLOAT, DOUBLE,
///   DECIMAL, VARCHAR, BLOB, DATE, TIME, TIMESTAMP [WITH TIME ZONE], INTERVAL),
///   ordered by data_type then type_name
/// - GetPrimaryKeys: catalog_name utf8, db_schema_name utf8, table_name utf8 not
///   null, column_name utf8 not null, key_name utf8, key_sequence int32 not null
/// - GetExportedKeys, GetImportedKeys, GetCrossReference: pk_catalog_name,
///   pk_db_schema_name utf8, pk_table_name, pk_column_name utf8 not null,
///   fk_catalog_name, fk_db_schema_name utf8, fk_table_name, fk_column_name utf8
///   not null, key_sequence int32 not null, fk_key_name, pk_key_name utf8,
///   update_rule, delete_rule uint8 not null
arrow::Result<std::shared_ptr<arrow::Schema>> MetadataSchema(const wire::Command& command);

/// \brief The answer to a metadata command as one record batch. Filter patterns
/// are SQL LIKE patterns (`%` any run, `_` one character, `\` escapes).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> MetadataResult(sql::Engine* engine,
                                                                 const wire::Command& command);

/// \brief Whether `text` matches the SQL LIKE `pattern` (case-sensitive).
bool MatchLike(std::string_view text, std::string_view pattern);

}  // namespace sluice::flight
