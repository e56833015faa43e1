// The Flight SQL messages sluice speaks, in protobuf wire format
// (arrow/format/FlightSql.proto, package arrow.flight.protocol.sql).
//
// Flight SQL puts a `google.protobuf.Any` in descriptor commands, tickets and
// action bodies: `type_url` = "type.googleapis.com/arrow.flight.protocol.sql.<Name>"
// and `value` = the serialized message. The few messages below are encoded and
// decoded by hand so that neither the server nor the client library links a
// second protobuf runtime beside the one inside libarrow_flight (whose symbols
// are not exported). Unknown fields are skipped, as protobuf requires.
//
// This library depends on nothing but Arrow; the C++ client links it too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "arrow/result.h"

namespace sluice::wire {

/// \brief Prefix of every Flight SQL message's Any type URL.
inline constexpr std::string_view kFlightSqlTypePrefix =
    "type.googleapis.com/arrow.flight.protocol.sql.";

/// \brief A decoded `google.protobuf.Any`.
struct Any {
  std::string type_url;
  std::string value;
};

/// \brief Serialize `value` (a serialized message) in an Any whose type URL names
/// the Flight SQL message `name`, e.g. "CommandStatementQuery".
std::string PackAny(std::string_view name, std::string_view value);

/// \brief Parse an Any. nullopt unless all of `bytes` is a well-formed Any whose
/// type URL starts with kFlightSqlTypePrefix (so SQL text is never mistaken for one).
std::optional<Any> UnpackFlightSqlAny(std::string_view bytes);

/// \brief The message name of a Flight SQL type URL ("CommandGetTables").
std::string_view FlightSqlName(std::string_view type_url);

// ---- descriptor commands (GetFlightInfo, DoPut) -------------------------------------

/// \brief CommandStatementQuery: run `query` (field 1).
struct CommandStatementQuery {
  std::string query;
};
/// \brief CommandPreparedStatementQuery: run the prepared statement (field 1: handle).
struct CommandPreparedStatementQuery {
  std::string prepared_statement_handle;
};
/// \brief CommandGetCatalogs: list catalogs. No fields.
struct CommandGetCatalogs {};
/// \brief CommandGetDbSchemas: list schemas, optionally of one catalog and matching a
/// LIKE pattern (`%`, `_`).
struct CommandGetDbSchemas {
  std::optional<std::string> catalog;                   ///< field 1
  std::optional<std::string> db_schema_filter_pattern;  ///< field 2
};
/// \brief CommandGetTables: list tables, filtered as CommandGetDbSchemas and by table
/// name pattern and table types; with each table's Arrow schema when asked.
struct CommandGetTables {
  std::optional<std::string> catalog;                    ///< field 1
  std::optional<std::string> db_schema_filter_pattern;   ///< field 2
  std::optional<std::string> table_name_filter_pattern;  ///< field 3
  std::vector<std::string> table_types;                  ///< field 4 (empty: all)
  bool include_schema = false;                           ///< field 5
};
/// \brief CommandGetTableTypes: list table types. No fields.
struct CommandGetTableTypes {};
/// \brief CommandGetSqlInfo: server metadata; `info` empty means every known item.
struct CommandGetSqlInfo {
  std::vector<uint32_t> info;  ///< field 1 (packed or not)
};
/// \brief CommandGetXdbcTypeInfo: the SQL types the server returns, optionally only
/// those of one XDBC data type.
struct CommandGetXdbcTypeInfo {
  std::optional<int32_t> data_type;  ///< field 1 (XdbcDataType, e.g. -5 BIGINT)
};
/// \brief A table named by catalog, schema and name (the key commands).
struct TableRef {
  std::optional<std::string> catalog;    ///< field 1 (4 for the foreign table)
  std::optional<std::string> db_schema;  ///< field 2 (5)
  std::string table;                     ///< field 3 (6)
};
/// \brief CommandGetPrimaryKeys: the primary key columns of `table`.
struct CommandGetPrimaryKeys {
  TableRef table;
};
/// \brief CommandGetExportedKeys: foreign keys referencing `table`'s primary key.
struct CommandGetExportedKeys {
  TableRef table;
};
/// \brief CommandGetImportedKeys: the foreign keys of `table`.
struct CommandGetImportedKeys {
  TableRef table;
};
/// \brief CommandGetCrossReference: foreign keys of `fk_table` referencing `pk_table`.
struct CommandGetCrossReference {
  TableRef pk_table;  ///< fields 1-3
  TableRef fk_table;  ///< fields 4-6
};
/// \brief A Flight SQL command sluice does not answer; `name` says which.
struct UnsupportedCommand {
  std::string name;
};

using Command =
    std::variant<CommandStatementQuery, CommandPreparedStatementQuery, CommandGetCatalogs,
                 CommandGetDbSchemas, CommandGetTables, CommandGetTableTypes, CommandGetSqlInfo,
                 CommandGetXdbcTypeInfo, CommandGetPrimaryKeys, CommandGetExportedKeys,
                 CommandGetImportedKeys, CommandGetCrossReference, UnsupportedCommand>;

/// \brief Decode a descriptor's `cmd` bytes. nullopt when they are not a Flight SQL
/// Any at all (plain SQL text, say); Invalid when they are one but malformed.
arrow::Result<std::optional<Command>> DecodeCommand(std::string_view cmd);

/// \brief Encode a command as the Any bytes a descriptor carries.
std::string EncodeCommand(const Command& command);

// ---- actions (DoAction) ----------------------------------------------------------------

/// \brief Action type names (Flight SQL).
inline constexpr std::string_view kCreatePreparedStatement = "CreatePreparedStatement";
inline constexpr std::string_view kClosePreparedStatement = "ClosePreparedStatement";
/// Deprecated by Flight's own CancelFlightInfo, still sent by older clients.
inline constexpr std::string_view kCancelQuery = "CancelQuery";

/// \brief ActionCreatePreparedStatementRequest (field 1: query).
struct ActionCreatePreparedStatementRequest {
  std::string query;
};
/// \brief ActionCreatePreparedStatementResult: the handle, and the result's and the
/// parameters' Arrow schemas as IPC-serialized Schema messages (empty when unknown).
struct ActionCreatePreparedStatementResult {
  std::string prepared_statement_handle;  ///< field 1
  std::string dataset_schema;             ///< field 2
  std::string parameter_schema;           ///< field 3
};
/// \brief ActionClosePreparedStatementRequest (field 1: handle).
struct ActionClosePreparedStatementRequest {
  std::string prepared_statement_handle;
};
/// \brief DoPutPreparedStatementResult, the app_metadata of DoPut's answer to bound
/// parameters (field 1: the handle to use from now on, if it changed).
struct DoPutPreparedStatementResult {
  std::optional<std::string> prepared_statement_handle;
};

/// \brief ActionCancelQueryRequest (field 1: a serialized Flight FlightInfo).
struct ActionCancelQueryRequest {
  std::string info;
};
/// \brief ActionCancelQueryResult (field 1: CancelResult; 1 CANCELLED, 2 CANCELLING,
/// 3 NOT_CANCELLABLE, 0 UNSPECIFIED).
struct ActionCancelQueryResult {
  int32_t result = 0;
};

/// Each Encode* returns the bytes Flight SQL puts on the wire: action bodies and
/// action results are Any-wrapped messages; DoPutPreparedStatementResult is the bare
/// message (PutResult.app_metadata). Each Decode* takes the same and is Invalid for
/// another message or malformed bytes.
std::string Encode(const ActionCreatePreparedStatementRequest& m);
std::string Encode(const ActionCreatePreparedStatementResult& m);
std::string Encode(const ActionClosePreparedStatementRequest& m);
std::string Encode(const DoPutPreparedStatementResult& m);
std::string Encode(const ActionCancelQueryRequest& m);
std::string Encode(const ActionCancelQueryResult& m);
arrow::Result<ActionCreatePreparedStatementRequest> DecodeCreatePreparedStatementRequest(
    std::string_view any);
arrow::Result<ActionCreatePreparedStatementResult> DecodeCreatePreparedStatementResult(
    std::string_view any);
arrow::Result<ActionClosePreparedStatementRequest> DecodeClosePreparedStatementRequest(
    std::string_view any);
arrow::Result<DoPutPreparedStatementResult> DecodeDoPutPreparedStatementResult(
    std::string_view any);
arrow::Result<ActionCancelQueryRequest> DecodeCancelQueryRequest(std::string_view any);
arrow::Result<ActionCancelQueryResult> DecodeCancelQueryResult(std::string_view any);

}  // namespace sluice::wire
