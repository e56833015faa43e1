// The trailing `SETTINGS key = value [, key = value]*` clause of a query, and the
// `amp-stream` request header (protocol.md §3, seed "Enabling Streaming").
//
// The clause is not SQL that DuckDB understands: it is found by a small lexer that
// knows DuckDB's quoting and comment rules, and removed before the engine sees the
// query. Only a clause at the top level (outside parentheses, strings, quoted
// identifiers and comments) that ends the query counts:
//
//   SELECT block_num, hash FROM eth_rpc.blocks SETTINGS stream = true;  -- clause
//   SELECT 'SETTINGS stream = true' AS s                                 -- a string
//   SELECT * FROM (SELECT 1 SETTINGS stream = true)                      -- not top level
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "arrow/result.h"

namespace sluice::sql {

/// \brief A query and the settings of its trailing SETTINGS clause.
///
/// Known settings (keys are case-insensitive):
///   - `stream` (boolean: true/false, 1/0, or the same quoted, e.g. 'true'): run the
///     query as a streaming query, microbatch by microbatch (protocol.md §3).
struct QuerySettings {
  /// The query without the clause: the original text up to the end of the last
  /// token before `SETTINGS` (comments and whitespace between them dropped), so
  /// byte offsets into it (DuckDB's query_location) are those of the original.
  /// The whole original text, unchanged, when there is no clause.
  std::string sql;
  /// `SETTINGS stream = …`; unset when the clause does not name it.
  std::optional<bool> stream;
};

/// \brief Find and remove the trailing top-level SETTINGS clause of `sql`.
///
/// The clause starts at an unquoted top-level `SETTINGS` followed by `key =`; after
/// its last `key = value` only `;`, whitespace and comments may follow. Values are
/// `true`/`false`, integers (optionally signed) or single-quoted strings.
/// Without such a clause the query is returned unchanged (a column or alias named
/// `settings` is not a clause).
///
/// Invalid, with a message naming the problem, when the clause is malformed
/// ("SETTINGS clause: expected '=' after 'stream'"), is followed by more SQL, names
/// an unknown setting ("unknown setting 'strem' in SETTINGS clause (known: stream)"),
/// gives a setting twice, or gives a value of the wrong type ("setting 'stream' in
/// SETTINGS clause must be a boolean (true, false, 1 or 0), got 2").
arrow::Result<QuerySettings> ExtractSettings(std::string_view sql);

/// \brief Parse the value of the `amp-stream` request header.
///
/// `true`/`1` → true, `false`/`0` → false (case-insensitive, surrounding whitespace
/// ignored); an empty value → nullopt (no preference). Anything else is Invalid:
/// "amp-stream header must be true, false, 1 or 0, got 'yes'".
arrow::Result<std::optional<bool>> ParseStreamHeader(std::string_view value);

/// \brief Whether a query runs in streaming mode: the `amp-stream` header, when
/// given, wins over the SETTINGS clause (protocol.md §3); the default is batch.
inline bool IsStreaming(const QuerySettings& settings, std::optional<bool> header) {
  if (header.has_value()) return *header;
  return settings.stream.value_or(false);
}

}  // namespace sluice::sql
