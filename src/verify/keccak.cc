#include "verify/keccak.h"

#include <cryptopp/keccak.h>

namespace sluice::verify {

Hash32 Keccak256(const void* data, size_t size) {
  static_assert(CryptoPP::Keccak_256::DIGESTSIZE == 32);
  CryptoPP::Keccak_256 hash;
  hash.Update(static_cast<const CryptoPP::byte*>(data), size);
  Hash32 out;
  hash.Final(out.data());
  return out;
}

}  // namespace sluice::verify
