#include "common/hex.h"

#include "arrow/status.h"

namespace sluice::common {

std::string ToHex(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 + 2 * size, '0');
  out[1] = 'x';
  for (size_t i = 0; i < size; ++i) {
    out[2 + 2 * i] = kDigits[data[i] >> 4];
    out[3 + 2 * i] = kDigits[data[i] & 0xf];
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

arrow::Result<std::vector<uint8_t>> FromHex(std::string_view hex) {
  std::string_view digits = hex;
  if (digits.size() >= 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
  }
  if (digits.size() % 2 != 0) {
    return arrow::Status::Invalid("hex string has an odd number of digits: ", hex);
  }
  std::vector<uint8_t> out(digits.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(digits[2 * i]), lo = HexValue(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) return arrow::Status::Invalid("not a hex string: ", hex);
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace sluice::common
