// The decoding SQL functions, whose result type follows from a signature literal:
//
//   evm_decode_log(topic1, topic2, topic3 BLOB, data BLOB, signature) -> STRUCT
//   evm_decode(…)                                                      (the old name)
//   evm_decode_params(input BLOB, signature)                          -> STRUCT
//   evm_decode_type(data BLOB, type)                                   -> the type's
//
// DuckDB 1.4's C API fixes a scalar function's return type when it is registered
// (duckdb_scalar_function_set_return_type; a bind callback cannot change it, and ANY
// is refused as a return type). So each call whose signature is a string literal is
// renamed before DuckDB sees the query (sql/evm_rewrite.h) to a function registered
// for exactly its result type, `__sluice_<function>_<16 hex digits>`, created on
// first use (EvmFunctions::TypedDecoder). The names users write are registered too:
// with a signature that is not a literal they fail at bind, explaining why.
//
// Results (docs/protocol.md, "EVM functions"; types per sql/evm_vectors.h):
//  - evm_decode_log: one field per event parameter, named as in the signature
//    ("arg<i>" when unnamed), in signature order; an indexed string, bytes, array
//    or tuple is its 32-byte topic (the Keccak-256 of the value). NULL when the log
//    does not match the signature (sql/evm_abi_codec.h DecodeEventLog).
//  - evm_decode_params: one field per function parameter; NULL for NULL input; a
//    struct of NULL fields when the selector is not the signature's or the
//    arguments do not decode.
//  - evm_decode_type: abi.decode(data, (T)); NULL when it does not decode. Tuples
//    are STRUCTs with fields c0, c1, … (or the names written in the type).
#pragma once

#include <string>
#include <string_view>

#include "arrow/result.h"
#include "duckdb.h"
#include "sql/evm_abi.h"

namespace sluice::sql {

/// \brief The decoding functions.
enum class DecodeKind : uint8_t { kLog, kParams, kType };

/// \brief The SQL name of a decoding function ("evm_decode_log", …).
const char* DecodeKindName(DecodeKind kind);

/// \brief The ABI type of the result of `kind` with this signature (event
/// signature, function signature or type text): a tuple for kLog/kParams, with
/// indexed hashed parameters as bytes32. Invalid with the parser's message.
arrow::Result<AbiType> DecodeResultType(DecodeKind kind, std::string_view signature);

/// \brief Register evm_decode_log, evm_decode, evm_decode_params and evm_decode_type
/// under the names users write (for signatures that are not literals: a clear
/// bind error).
arrow::Status RegisterDecodeFunctions(duckdb_connection conn);

/// \brief Register `name` as the `kind` function whose result is
/// DuckTypeOf(result); its bind checks that the call's signature gives that type.
arrow::Status RegisterTypedDecoder(duckdb_connection conn, const std::string& name,
                                   DecodeKind kind, const AbiType& result);

}  // namespace sluice::sql
