// Keccak-256, the hash of Ethereum's block headers, transactions and tries
// (Ethereum yellow paper, appendix on hashing: Keccak-256, not NIST SHA3-256),
// from Crypto++ (CryptoPP::Keccak_256).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "storage/block_store.h"

namespace sluice::verify {

using storage::Hash32;

/// \brief Keccak-256 of `size` bytes at `data`.
Hash32 Keccak256(const void* data, size_t size);
inline Hash32 Keccak256(std::string_view bytes) { return Keccak256(bytes.data(), bytes.size()); }

}  // namespace sluice::verify
