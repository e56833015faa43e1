// ABI values in DuckDB: the DuckDB type of each ABI type, writing decoded values
// into result vectors and reading SQL values to encode, through DuckDB's C API.
//
// Type mapping (docs/protocol.md, "EVM functions"). Integers keep every value
// exactly, in the narrowest type that holds the whole range of the ABI type and
// that reaches Arrow clients as a number; wider ones are exact decimal text:
//
//   uint8 / uint16 / uint24..32 / uint40..64   UTINYINT / USMALLINT / UINTEGER / UBIGINT
//   int8 / int16 / int24..32 / int40..64       TINYINT / SMALLINT / INTEGER / BIGINT
//   uint72..uint120, int72..int128             HUGEINT (Arrow: decimal128(38, 0))
//   uint128..uint256, int136..int256           VARCHAR, exact decimal ("-5", "2^256-1" in full)
//   address, bytes1..32, bytes                 BLOB (20, N, any bytes)
//   bool                                       BOOLEAN
//   string                                     VARCHAR (NULL when not valid UTF-8)
//   T[], T[k]                                  LIST(T)
//   tuple                                      STRUCT(name T, …) (names c0, c1, … when unnamed)
//
// (UHUGEINT and BIGNUM would hold more, but DuckDB hands them to Arrow as opaque
// extension types, arrow.opaque[uhugeint] over 16 raw bytes and arrow.opaque[bignum],
// that clients cannot read as numbers.)
#pragma once

#include <string>

#include "arrow/result.h"
#include "duckdb.h"
#include "sql/duckdb_handles.h"
#include "sql/evm_abi_codec.h"

namespace sluice::sql {

/// \brief The DuckDB type holding decoded values of `t` (table above).
LogicalType DuckTypeOf(const AbiType& t);

/// \brief That type as text, e.g. `STRUCT("from" BLOB, "value" VARCHAR)`: equal
/// texts mean equal types.
std::string DuckTypeText(const AbiType& t);

/// \brief Write `v` (a value of `t`) into row `row` of `out`, a vector of
/// DuckTypeOf(t). A string that is not valid UTF-8 (std::monostate) becomes NULL.
void WriteAbiValue(duckdb_vector out, const AbiType& t, idx_t row, const AbiValue& v);

/// \brief Make row `row` of `out` (a vector of DuckTypeOf(t)) NULL, with every
/// nested field.
void WriteAbiNull(duckdb_vector out, const AbiType& t, idx_t row);

/// \brief The value at `row` of `in` (a flat vector of DuckDB type `type`) as a
/// value of ABI type `t`, for encoding. Accepted, by ABI type:
///   uintN / intN      any integer type, DECIMAL with an integral value, VARCHAR
///                     (decimal, or 0x hex), FLOAT/DOUBLE holding an integer of at
///                     most 2^53 in magnitude (larger doubles are not exact)
///   address, bytesN   BLOB of exactly 20 / N bytes, or VARCHAR "0x" + hex
///   bytes             BLOB, or VARCHAR "0x" + hex
///   bool              BOOLEAN
///   string            VARCHAR
///   T[] / T[k]        LIST or ARRAY (of k elements for T[k])
///   tuple             STRUCT with as many fields (matched by position)
/// Invalid, naming both types, otherwise, and for a NULL inside a list or struct.
/// The caller handles a NULL at `row` itself (IsNullRow).
arrow::Result<AbiValue> ReadAbiValue(duckdb_vector in, duckdb_logical_type type, idx_t row,
                                     const AbiType& t);

/// \brief The exact decimal text of a number at `row` of `in` (a flat vector of
/// `type`): integers and HUGEINT/UHUGEINT in full, DECIMAL with its scale
/// ("12.50"), FLOAT/DOUBLE as their shortest round-trip text ("1.5e+18"), VARCHAR
/// as it is. Invalid for other types and for NaN or infinite doubles.
arrow::Result<std::string> ReadNumberText(duckdb_vector in, duckdb_logical_type type, idx_t row);

/// \brief Whether row `row` of `in` is NULL.
bool IsNullRow(duckdb_vector in, idx_t row);

/// \brief DuckDB's name of a type id ("VARCHAR", "DOUBLE", …), for messages.
const char* DuckTypeName(duckdb_type id);

}  // namespace sluice::sql
