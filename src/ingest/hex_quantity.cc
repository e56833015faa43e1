#include "ingest/hex_quantity.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace sluice::ingest {

using arrow::Status;

namespace {

inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The digits of a QUANTITY without "0x" and without leading zeros ("" for zero).
arrow::Result<std::string_view> QuantityDigits(std::string_view hex) {
  if (hex.size() < 3 || hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X')) {
    return Status::Invalid("not a hex quantity: '", hex, "'");
  }
  std::string_view digits = hex.substr(2);
  for (char c : digits) {
    if (HexValue(c) < 0) return Status::Invalid("not a hex quantity: '", hex, "'");
  }
  size_t nz = digits.find_first_not_of('0');
  return nz == std::string_view::npos ? std::string_view() : digits.substr(nz);
}

arrow::Result<std::string_view> DataDigits(std::string_view hex) {
  if (hex.size() < 2 || hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X')) {
    return Status::Invalid("not hex data: '", hex.substr(0, 80), "'");
  }
  std::string_view digits = hex.substr(2);
  if (digits.size() % 2 != 0) {
    return Status::Invalid("hex data has an odd number of digits: '", hex.substr(0, 80), "'");
  }
  return digits;
}

uint128_t Pow10_38() {
  uint128_t v = 1;
  for (int i = 0; i < 38; ++i) v *= 10;
  return v;
}

}  // namespace

arrow::Result<uint64_t> ParseQuantity(std::string_view hex) {
  ARROW_ASSIGN_OR_RAISE(auto digits, QuantityDigits(hex));
  if (digits.size() > 16) return Status::Invalid("hex quantity exceeds 64 bits: ", hex);
  uint64_t v = 0;
  for (char c : digits) v = v << 4 | static_cast<uint64_t>(HexValue(c));
  return v;
}

arrow::Result<uint128_t> ParseQuantity128(std::string_view hex) {
  ARROW_ASSIGN_OR_RAISE(auto digits, QuantityDigits(hex));
  if (digits.size() > 32) return Status::Invalid("hex quantity exceeds 128 bits: ", hex);
  uint128_t v = 0;
  for (char c : digits) v = v << 4 | static_cast<uint128_t>(HexValue(c));
  return v;
}

arrow::Result<arrow::Decimal128> ParseQuantityDecimal128(std::string_view hex) {
  auto v = ParseQuantity128(hex);
  if (!v.ok()) {
    ARROW_ASSIGN_OR_RAISE(auto dec, QuantityToDecimal(hex));
    return Status::Invalid("value ", dec, " (", hex,
                           ") has more than 38 decimal digits and does not fit Decimal128(38, 0)");
  }
  static const uint128_t kLimit = Pow10_38();
  if (*v >= kLimit) {
    return Status::Invalid("value ", Uint128ToDecimal(*v), " (", hex,
                           ") has more than 38 decimal digits and does not fit Decimal128(38, 0)");
  }
  return arrow::Decimal128(static_cast<int64_t>(static_cast<uint64_t>(*v >> 64)),
                           static_cast<uint64_t>(*v));
}

arrow::Result<std::string> QuantityToDecimal(std::string_view hex) {
  ARROW_ASSIGN_OR_RAISE(auto digits, QuantityDigits(hex));
  if (digits.size() > 64) return Status::Invalid("hex quantity exceeds 256 bits: ", hex);
  if (digits.size() <= 32) {
    uint128_t v = 0;
    for (char c : digits) v = v << 4 | static_cast<uint128_t>(HexValue(c));
    return Uint128ToDecimal(v);
  }
  // Four little-endian 64-bit limbs, divided repeatedly by 10^19.
  std::array<uint64_t, 4> limbs{};
  for (size_t j = 0; j < digits.size(); ++j) {
    char c = digits[digits.size() - 1 - j];
    limbs[j / 16] |= static_cast<uint64_t>(HexValue(c)) << ((j % 16) * 4);
  }
  constexpr uint64_t kChunk = 10000000000000000000ULL;  // 10^19
  std::string out;
  std::array<uint64_t, 8> chunks{};  // least significant first; 78 digits < 8 * 19
  int nchunks = 0;
  auto nonzero = [&] { return limbs[0] | limbs[1] | limbs[2] | limbs[3]; };
  while (nonzero()) {
    uint128_t rem = 0;
    for (int i = 3; i >= 0; --i) {
      uint128_t cur = rem << 64 | limbs[i];
      limbs[i] = static_cast<uint64_t>(cur / kChunk);
      rem = cur % kChunk;
    }
    chunks[nchunks++] = static_cast<uint64_t>(rem);
  }
  out = std::to_string(chunks[nchunks - 1]);
  for (int i = nchunks - 2; i >= 0; --i) {
    std::string part = std::to_string(chunks[i]);
    out.append(19 - part.size(), '0');
    out += part;
  }
  return out;
}

Status ParseFixedData(std::string_view hex, uint8_t* out, size_t size) {
  ARROW_ASSIGN_OR_RAISE(auto digits, DataDigits(hex));
  if (digits.size() != 2 * size) {
    return Status::Invalid("expected ", size, " bytes of hex data, got ", digits.size() / 2,
                           ": '", hex.substr(0, 80), "'");
  }
  for (size_t i = 0; i < size; ++i) {
    int hi = HexValue(digits[2 * i]), lo = HexValue(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::Invalid("not hex data: '", hex.substr(0, 80), "'");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return Status::OK();
}

Status ParseQuantityBytes(std::string_view hex, uint8_t* out, size_t size) {
  ARROW_ASSIGN_OR_RAISE(auto digits, QuantityDigits(hex));
  if (digits.size() > 2 * size) {
    return Status::Invalid("hex quantity exceeds ", size, " bytes: ", hex);
  }
  std::memset(out, 0, size);
  // Fill from the least significant digit.
  for (size_t j = 0; j < digits.size(); ++j) {
    int v = HexValue(digits[digits.size() - 1 - j]);
    uint8_t& b = out[size - 1 - j / 2];
    b = static_cast<uint8_t>(b | (j % 2 == 0 ? v : v << 4));
  }
  return Status::OK();
}

Status AppendData(std::string_view hex, std::string* out) {
  ARROW_ASSIGN_OR_RAISE(auto digits, DataDigits(hex));
  size_t base = out->size();
  out->resize(base + digits.size() / 2);
  char* dst = out->data() + base;
  for (size_t i = 0; i < digits.size() / 2; ++i) {
    int hi = HexValue(digits[2 * i]), lo = HexValue(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      out->resize(base);
      return Status::Invalid("not hex data: '", hex.substr(0, 80), "'");
    }
    dst[i] = static_cast<char>(hi << 4 | lo);
  }
  return Status::OK();
}

std::string FormatQuantity(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[20];
  int n = 0;
  do {
    buf[n++] = kDigits[value & 0xf];
    value >>= 4;
  } while (value);
  std::string out = "0x";
  while (n) out += buf[--n];
  return out;
}

std::string Uint128ToDecimal(uint128_t value) {
  if (value == 0) return "0";
  char buf[40];
  int n = 0;
  while (value) {
    buf[n++] = static_cast<char>('0' + static_cast<int>(value % 10));
    value /= 10;
  }
  std::string out;
  out.reserve(n);
  while (n) out += buf[--n];
  return out;
}

}  // namespace sluice::ingest
