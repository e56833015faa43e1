// The EVM SQL functions (the reference's built-ins, ../shared/spec/evm-functions.md;
// docs/protocol.md, "EVM functions"). Types of decoded values: sql/evm_vectors.h.
//
//   evm_topic(signature VARCHAR) -> BLOB
//     Keccak-256 of the canonical event signature (types only, "uint" = "uint256",
//     tuples expanded), i.e. topic0 of the event's logs:
//     evm_topic('Transfer(address indexed from, address indexed to, uint256 value)')
//     = 0xddf252ad…f523b3ef. NULL -> NULL; a malformed signature is an error.
//   evm_decode_log / evm_decode / evm_decode_params / evm_decode_type
//     typed decoding: sql/evm_decode_functions.h.
//   evm_encode_params(v1, …, vN, signature VARCHAR) -> BLOB
//     calldata: the function's 4-byte selector + the ABI encoding of the values
//     (evm_encode_params('name()') is the selector alone). The signature is last
//     and constant; the values convert as in sql/evm_vectors.h ReadAbiValue. A NULL
//     value gives NULL; a value that does not fit its parameter is an error.
//   evm_encode_type(value, type VARCHAR) -> BLOB
//     abi.encode(value) for a Solidity type (constant), as evm_encode_params.
//   evm_encode_hex(text VARCHAR) -> BLOB
//     40 or 64 hex digits, "0x" optional, either case -> 20 or 32 bytes; other
//     lengths or non-hex digits are an error; NULL -> NULL.
//   evm_decode_hex(bytes BLOB) -> VARCHAR
//     "0x" + lower-case hex (meant for 20-byte addresses and 32-byte hashes; any
//     length works); NULL -> NULL.
//   shift_units(value, places INTEGER) -> VARCHAR
//     value * 10^places as exact decimal text without trailing zeros:
//     shift_units('1.5', 18) = '1500000000000000000',
//     shift_units('1500000000000000000', -18) = '1.5'. value: an integer, DECIMAL,
//     DOUBLE (its shortest exact text) or numeric text. NULL -> NULL; text that is
//     not a number is an error.
//   eth_call(from, to, input, block) -> STRUCT(data BLOB, message VARCHAR)
//     sql/evm_call.h.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "arrow/result.h"
#include "arrow/status.h"
#include "duckdb.h"
#include "sql/evm_call.h"
#include "sql/evm_decode_functions.h"

namespace sluice::sql {

/// \brief The EVM functions of one database: registers them, and keeps what they
/// share: the typed decoders registered so far and eth_call's nodes. Thread-safe.
class EvmFunctions {
 public:
  /// \brief Register every EVM function in the database of `conn`. Functions
  /// registered by the C API live in the database's system catalog: one call per
  /// database makes them visible to every connection. Invalid when they cannot be
  /// registered (e.g. already registered in this database).
  static arrow::Result<std::shared_ptr<EvmFunctions>> Register(duckdb_connection conn,
                                                               EthCallOptions eth_call = {});

  /// \brief The name of the `kind` decoder whose result type is DuckTypeOf(result)
  /// (sql/evm_decode_functions.h), registered through `conn` on first use.
  /// CapacityError past kMaxTypedDecoders distinct result types.
  arrow::Result<std::string> TypedDecoder(duckdb_connection conn, DecodeKind kind,
                                          const AbiType& result);

  /// \brief eth_call's nodes and per-query budgets.
  EthCalls& eth_calls() { return *eth_calls_; }

  /// \brief Most distinct result types (typed decoders) per database.
  static constexpr size_t kMaxTypedDecoders = 10000;

 private:
  EvmFunctions() = default;
  std::mutex mu_;
  std::map<std::string, std::string> typed_;  // name -> DuckTypeText, registered
  std::shared_ptr<EthCalls> eth_calls_;
};

}  // namespace sluice::sql
