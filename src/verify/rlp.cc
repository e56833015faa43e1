#include "verify/rlp.h"

#include <cassert>

namespace sluice::verify {

namespace {

// The header of a string (offset 0x80) or list (0xc0) of `size` payload bytes.
size_t WriteHeader(uint8_t offset, size_t size, uint8_t* out) {
  if (size <= 55) {
    out[0] = static_cast<uint8_t>(offset + size);
    return 1;
  }
  uint8_t len[8];
  size_t n = 0;
  for (size_t v = size; v != 0; v >>= 8) len[n++] = static_cast<uint8_t>(v & 0xff);
  out[0] = static_cast<uint8_t>(offset + 55 + n);
  for (size_t i = 0; i < n; ++i) out[1 + i] = len[n - 1 - i];
  return 1 + n;
}

}  // namespace

void RlpWriter::Bytes(const uint8_t* data, size_t size) {
  if (size == 1 && data[0] < 0x80) {
    out_.push_back(static_cast<char>(data[0]));
    return;
  }
  uint8_t header[9];
  size_t n = WriteHeader(0x80, size, header);
  out_.append(reinterpret_cast<const char*>(header), n);
  out_.append(reinterpret_cast<const char*>(data), size);
}

void RlpWriter::Uint(uint64_t value) {
  uint8_t be[8];
  for (int i = 7; i >= 0; --i) {
    be[i] = static_cast<uint8_t>(value & 0xff);
    value >>= 8;
  }
  UintBigEndian(be, 8);
}

void RlpWriter::UintBigEndian(const uint8_t* data, size_t size) {
  while (size > 0 && data[0] == 0) {
    ++data;
    --size;
  }
  Bytes(data, size);
}

void RlpWriter::EndList() {
  assert(!open_.empty());
  const size_t start = open_.back();
  open_.pop_back();
  uint8_t header[9];
  size_t n = WriteHeader(0xc0, out_.size() - start, header);
  out_.insert(start, reinterpret_cast<const char*>(header), n);
}

std::string RlpWriter::Take() {
  assert(open_.empty());
  std::string out = std::move(out_);
  Clear();
  return out;
}

std::string RlpBytes(std::string_view bytes) {
  RlpWriter w;
  w.Bytes(bytes);
  return w.Take();
}

}  // namespace sluice::verify
