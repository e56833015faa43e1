// Exact integers of up to 256 bits, as the EVM ABI holds them (32-byte big-endian
// words, two's complement for intN), and exact decimal text arithmetic for
// shift_units. No floating point anywhere.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "arrow/result.h"

namespace sluice::sql {

/// \brief A 256-bit integer as the ABI encodes it: 32 bytes, big-endian; for a
/// signed type, two's complement.
using Word256 = std::array<uint8_t, 32>;

/// \brief An integer of magnitude below 2^256 with a sign, before it is fitted to
/// an ABI type.
struct BigInteger {
  Word256 magnitude{};  ///< big-endian
  bool negative = false;
  bool operator==(const BigInteger&) const = default;
};

/// \brief The exact decimal text of `w` ("-" for negatives when `is_signed`),
/// e.g. "115792089237316195423570985008687907853269984665640564039457584007913129639935".
std::string WordToDecimal(const Word256& w, bool is_signed);

/// \brief Whether `w` is a value of uintN (`is_signed` false) or intN: for uintN the
/// bytes above N bits are zero; for intN they repeat the sign bit (sign-extended).
bool WordFits(const Word256& w, bool is_signed, int bits);

/// \brief The low 64 bits of `w` (its value when it fits uint64/int64).
uint64_t WordLow64(const Word256& w);

/// \brief The low 128 bits of `w` as two 64-bit halves (its value when it fits
/// int128: DuckDB's HUGEINT {lower, upper}).
void WordLow128(const Word256& w, uint64_t* lower, int64_t* upper);

/// \brief `v` sign-extended (`is_signed`) or zero-extended to 256 bits.
Word256 WordFromInt64(int64_t v);
Word256 WordFromUint64(uint64_t v);
Word256 WordFromInt128(uint64_t lower, int64_t upper);
Word256 WordFromUint128(uint64_t lower, uint64_t upper);

/// \brief Parse an integer text: optional sign, then decimal digits, or "0x" and hex
/// digits (no sign with hex). Invalid when it is not such a text or its magnitude
/// reaches 2^256.
arrow::Result<BigInteger> ParseInteger(std::string_view text);

/// \brief `n` as a value of uintN / intN in the ABI's word form. Invalid
/// ("out of range for uint8") when it does not fit.
arrow::Result<Word256> FitInteger(const BigInteger& n, bool is_signed, int bits);

/// \brief The integer value of `w` read as uintN / intN, with its sign.
BigInteger WordToInteger(const Word256& w, bool is_signed);

/// \brief shift_units: the exact decimal `number` times 10^places, written with no
/// exponent, no leading zeros (but one before the point), no trailing zeros after
/// the point and no point when it is an integer: ("1.5", 18) ->
/// "1500000000000000000", ("1500000000000000000", -18) -> "1.5", ("-0.0", 3) -> "0".
/// `number`: optional sign, digits with at most one '.', at least one digit, and an
/// optional exponent "e±d" (as DuckDB prints doubles). Invalid for anything else,
/// for |places| > 1000, and when the exponent makes the result longer than 10,000
/// digits.
arrow::Result<std::string> ShiftDecimal(std::string_view number, int64_t places);

}  // namespace sluice::sql
