// The query a Flight descriptor carries (protocol.md §2): either the SQL text
// itself (UTF-8 bytes, as the seeds' pyarrow examples send) or a protobuf
// google.protobuf.Any wrapping a Flight SQL CommandStatementQuery, as ADBC
// Flight SQL drivers send. The two small messages are decoded here by hand
// (protobuf wire format), so no protobuf runtime is linked beside the one
// inside libarrow_flight.
#pragma once

#include <string>
#include <string_view>

#include "arrow/result.h"

namespace sluice::flight {

/// \brief Type URL of a Flight SQL CommandStatementQuery inside an Any.
inline constexpr std::string_view kCommandStatementQueryType =
    "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery";

/// \brief The SQL of a descriptor's `cmd` bytes. Invalid when the bytes are a
/// Flight SQL command other than CommandStatementQuery (named in the message),
/// a malformed one, or not UTF-8 text.
arrow::Result<std::string> SqlFromCommand(std::string_view cmd);

/// \brief Encode a CommandStatementQuery in an Any (for tests and clients).
std::string EncodeCommandStatementQuery(std::string_view sql);

}  // namespace sluice::flight
