// The query a Flight descriptor carries (protocol.md §2): either the SQL text
// itself (UTF-8 bytes, as the seeds' pyarrow examples send) or a Flight SQL
// command in a protobuf Any (wire/flight_sql.h), as ADBC Flight SQL drivers send.
#pragma once

#include <string>
#include <string_view>

#include "arrow/result.h"
#include "wire/flight_sql.h"

namespace sluice::flight {

/// \brief Type URL of a Flight SQL CommandStatementQuery inside an Any.
inline constexpr std::string_view kCommandStatementQueryType =
    "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery";

/// \brief The command of a descriptor's `cmd` bytes; SQL text becomes a
/// CommandStatementQuery. Invalid for a malformed Flight SQL message, SQL that is
/// not UTF-8 text, or a Flight SQL command sluice does not answer (named).
arrow::Result<wire::Command> CommandFromDescriptor(std::string_view cmd);

/// \brief The SQL of a descriptor's `cmd` bytes: the text itself or the query of a
/// CommandStatementQuery. NotImplemented for any other Flight SQL command.
arrow::Result<std::string> SqlFromCommand(std::string_view cmd);

/// \brief Encode a CommandStatementQuery in an Any (for tests and clients).
std::string EncodeCommandStatementQuery(std::string_view sql);

}  // namespace sluice::flight
