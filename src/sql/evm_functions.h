// SQL functions over EVM logs (sql/evm_abi.h does the ABI work):
//
//   evm_topic(signature VARCHAR) -> BLOB
//     The 32-byte Keccak-256 of the canonical signature (types only: "uint" is
//     "uint256", names and "indexed" dropped), i.e. topic0 of the event's logs:
//       evm_topic('Transfer(address,address,uint256)')
//         = \xDD\xF2\x52\xAD…\xB3\xEF (0xddf252ad…f523b3ef).
//     NULL -> NULL. An invalid signature is an error (at bind when constant).
//
//   evm_decode_log(topic1 BLOB, topic2 BLOB, topic3 BLOB, data BLOB,
//                  signature VARCHAR) -> VARCHAR (a JSON object)
//     Decodes a log (columns topic1..topic3 and data of `<dataset>.logs`) with an
//     event signature such as 'Transfer(address indexed from, address indexed
//     to, uint256 value)'. The signature must be a constant (it is parsed once,
//     at bind): anything else is a binder error. The object has one key per
//     parameter in signature order (the parameter's name; unnamed ones "arg0",
//     "arg1", … by position), valued by type:
//       address, bytesN, bytes  -> "0x…" lower-case hex string
//       indexed string/bytes    -> "0x…" the 32-byte Keccak-256 in the topic
//       bool                    -> true / false
//       uintN, intN (any N)     -> decimal string, exact ("-5", "2^256-1" in full)
//       string                  -> JSON string; null when not valid UTF-8
//     Topics the event does not use may be NULL. The result is NULL when the log
//     does not match the signature: a missing or non-32-byte topic, an extra
//     topic, data shorter than the head, an offset/length outside the data, or a
//     static value not strictly encoded (see DecodeEventLog in sql/evm_abi.h).
//     topic0 is not checked: filter with `topic0 = evm_topic('…')`.
//     Read fields with DuckDB's JSON operators: `evm_decode_log(…)->>'value'`,
//     `(evm_decode_log(…)->>'value')::UHUGEINT`, or from_json for a STRUCT.
//
// Why JSON and not a STRUCT: the struct's fields depend on the signature, and
// DuckDB 1.4's C API has no way to set a scalar function's return type at bind
// time (duckdb_scalar_function_set_return_type is fixed at registration).
#pragma once

#include "arrow/status.h"
#include "duckdb.h"

namespace sluice::sql {

/// \brief Register evm_topic and evm_decode_log (see above) through `conn`.
/// Functions registered by the C API live in the database's system catalog: one
/// call per database makes them visible to every connection. Invalid when they
/// cannot be registered (e.g. already registered in this database).
arrow::Status RegisterEvmFunctions(duckdb_connection conn);

}  // namespace sluice::sql
