// Ethereum JSON-RPC hex encodings (execution-apis "QUANTITY" and "DATA"), decoded
// exactly: quantities into uint64 / uint128 / a decimal string of a uint256, data
// into bytes.
//
// A QUANTITY is "0x" followed by big-endian hex digits ("0x0", "0x1a"); leading
// zeros are accepted (some nodes write the block nonce as "0x0000000000000000").
// DATA is "0x" followed by an even number of hex digits, two per byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/util/decimal.h"

namespace sluice::ingest {

using uint128_t = unsigned __int128;

/// \brief Parse a QUANTITY into a uint64.
/// Errors: Invalid when not "0x"-prefixed hex, empty, or above 2^64-1.
arrow::Result<uint64_t> ParseQuantity(std::string_view hex);

/// \brief Parse a QUANTITY into a uint128.
/// Errors: Invalid when not "0x"-prefixed hex, empty, or above 2^128-1.
arrow::Result<uint128_t> ParseQuantity128(std::string_view hex);

/// \brief Parse a QUANTITY into a Decimal128 with scale 0 (a wei amount).
/// Errors: Invalid when malformed, or when the value has more than 38 decimal
/// digits (it would not fit Decimal128(38, 0)); the message gives the value.
arrow::Result<arrow::Decimal128> ParseQuantityDecimal128(std::string_view hex);

/// \brief The exact decimal string of a QUANTITY of up to 256 bits ("0x1a" -> "26").
/// Errors: Invalid when malformed or above 2^256-1.
arrow::Result<std::string> QuantityToDecimal(std::string_view hex);

/// \brief Decode DATA of exactly `size` bytes into `out` (hashes, addresses).
/// Errors: Invalid when malformed or of another length.
arrow::Status ParseFixedData(std::string_view hex, uint8_t* out, size_t size);

/// \brief Decode a QUANTITY of at most `size` bytes into `out`, big-endian and
/// left-padded with zeros (signature words `r`, `s`, which nodes write as quantities).
/// Errors: Invalid when malformed or longer than `size` bytes.
arrow::Status ParseQuantityBytes(std::string_view hex, uint8_t* out, size_t size);

/// \brief Decode DATA of any length, appending the bytes to `out`.
/// Errors: Invalid when malformed (no "0x", odd length, non-hex digit).
arrow::Status AppendData(std::string_view hex, std::string* out);

/// \brief Format a QUANTITY ("0x1a") for a request parameter.
std::string FormatQuantity(uint64_t value);

/// \brief The decimal string of a uint128.
std::string Uint128ToDecimal(uint128_t value);

}  // namespace sluice::ingest
