// The query rewrite that gives EVM decoding functions typed results, and the
// streaming check of eth_call. Both read DuckDB's parse tree of the query (the JSON
// of json_serialize_sql, sql/sandbox.h ParseTree), never guess from the text.
//
// Rewrite: every call of evm_decode_log, evm_decode, evm_decode_params or
// evm_decode_type whose signature (last argument) is a string literal is renamed to
// the decoder registered for its result type (sql/evm_decode_functions.h):
//
//   SELECT evm_decode_log(topic1, topic2, topic3, data, 'Transfer(…)').value FROM …
//   SELECT __sluice_evm_decode_log_1b2c…(topic1, topic2, topic3, data, 'Transfer(…)').value FROM …
//
// Only the function's name changes, in place in the query text (the parse tree gives
// each call's byte offset, query_location), so the rest of the query reaches DuckDB
// exactly as written — but for one more edit: an integer literal too large for
// HUGEINT, which DuckDB's parser turns into an inexact DOUBLE, becomes a string
// literal when it is a (direct) argument of evm_encode_params, evm_encode_type or
// shift_units, which read exact numbers from text
// (`evm_encode_params(spender, 115792…935, 'approve(address,uint256)')`). Calls in subqueries, CTEs, lambdas and method-call syntax
// (`data.evm_decode_type('uint256')`) are renamed too. Derived tables are rewritten
// once, when they are defined (Engine::AddDerivedTable); prepared statements and
// the schema GetFlightInfo reports go through the same rewrite (Session::CheckedPrepare).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "duckdb.h"
#include "nlohmann/json.hpp"
#include "sql/evm_functions.h"

namespace sluice::sql {

/// \brief The rewritten query.
struct EvmRewrite {
  std::string sql;  ///< the SQL to run (the input itself when nothing was renamed)
  /// This query's eth_call budget (sql/evm_call.h); hold it while the query runs.
  std::shared_ptr<EthCallQuota> eth_call_quota;
};

/// \brief Rename the typed-decoding calls of `sql` (whose parse tree is `tree`),
/// registering their decoders through `conn` when new, and start the query's
/// eth_call budget for `conn`. Invalid, naming the function, when a literal
/// signature does not parse ("evm_decode_log: event signature '…': unknown type
/// 'uint7'") or a call cannot be found in the text at its offset.
arrow::Result<EvmRewrite> RewriteEvmCalls(EvmFunctions* functions, duckdb_connection conn,
                                          const std::string& sql, const nlohmann::json& tree);

/// \brief The same renaming in the parse tree itself (`function_name` of each call),
/// for a caller that rewrites the tree and turns it back into SQL
/// (json_deserialize_sql). Returns how many calls were renamed. (Wide integer
/// literals are not recovered: the tree holds them as DOUBLE already.)
arrow::Result<int> RewriteEvmCallsInTree(EvmFunctions* functions, duckdb_connection conn,
                                         nlohmann::json* tree);

/// \brief Whether `tree` calls eth_call (plain or `<dataset>.eth_call`).
bool CallsEthCall(const nlohmann::json& tree);

/// \brief Refuse a streaming query that calls eth_call, itself or through a view
/// (`view_trees`: the parse trees of the views it reads): Invalid "NonIncrementalOp:
/// eth_call asks the node at query time …".
arrow::Status CheckStreamingEvmCalls(const nlohmann::json& tree,
                                     const std::vector<const nlohmann::json*>& view_trees);

}  // namespace sluice::sql
