// Hex encoding of binary values, as Ethereum JSON-RPC writes them ("0x…").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "arrow/result.h"

namespace sluice::common {

/// \brief Lower-case hex of `size` bytes with a "0x" prefix.
std::string ToHex(const uint8_t* data, size_t size);
inline std::string ToHex(std::string_view bytes) {
  return ToHex(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

/// \brief Decode hex (with or without "0x", either case). Invalid on odd length
/// or a non-hex digit.
arrow::Result<std::vector<uint8_t>> FromHex(std::string_view hex);

}  // namespace sluice::common
