// RLP, Ethereum's Recursive Length Prefix encoding (yellow paper, appendix B):
// the serialization of block headers, transactions, receipts and trie nodes.
//
// An item is a byte string or a list of items:
//   a single byte < 0x80              itself
//   a string of 0-55 bytes            0x80 + length, the bytes
//   a longer string                   0xb7 + length of the length, the length (big-endian),
//                                     the bytes
//   a list of 0-55 payload bytes      0xc0 + length, the items' encodings
//   a longer list                     0xf7 + length of the length, the length, the items'
//                                     encodings
// An integer is the string of its big-endian bytes without leading zeros (0 is
// the empty string).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::verify {

/// \brief Builds one RLP encoding item by item. Lists nest: every BeginList
/// needs its EndList before the encoding is read.
class RlpWriter {
 public:
  /// \brief A byte string.
  void Bytes(const uint8_t* data, size_t size);
  void Bytes(std::string_view bytes) {
    Bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  /// \brief An unsigned integer.
  void Uint(uint64_t value);
  /// \brief An unsigned integer given as `size` big-endian bytes (any leading
  /// zeros are dropped, so a 32-byte word and a 16-byte decimal both work).
  void UintBigEndian(const uint8_t* data, size_t size);
  /// \brief An item that is already RLP-encoded (a trie node embedded in its parent).
  void Raw(std::string_view encoded) { out_.append(encoded); }

  /// \brief Start a list: the items written until the matching EndList are its items.
  void BeginList() { open_.push_back(out_.size()); }
  /// \brief End the innermost open list.
  void EndList();

  /// \brief The encoding so far (complete when every list is closed).
  const std::string& encoded() const { return out_; }
  /// \brief Take the encoding and start over.
  std::string Take();
  void Clear() {
    out_.clear();
    open_.clear();
  }

 private:
  std::string out_;
  std::vector<size_t> open_;  // start offsets of the open lists
};

/// \brief The RLP encoding of one byte string.
std::string RlpBytes(std::string_view bytes);

}  // namespace sluice::verify
