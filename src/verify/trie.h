// The root hash of a Merkle-Patricia trie (yellow paper, appendix D), as the
// block header commits to its transactions and receipts.
//
// Keys are paths of nibbles (half-bytes). A node is RLP-encoded:
//   leaf       [hex-prefix(rest of the key, leaf), value]
//   extension  [hex-prefix(shared nibbles, not leaf), child]
//   branch     [child for nibble 0, …, child for nibble 15, value or empty]
// A child whose encoding is shorter than 32 bytes is embedded as it is, any
// other is referred to by its Keccak-256. The root is the Keccak-256 of the
// root node's encoding; the empty trie's root is Keccak-256 of RLP("")
// (0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verify/keccak.h"

namespace sluice::verify {

/// \brief The root of the empty trie.
Hash32 EmptyTrieRoot();

/// \brief The root of the trie holding `items` (key, value) pairs. Keys must be
/// distinct; values must not be empty (an empty value is an absent key). Any order.
Hash32 TrieRoot(std::vector<std::pair<std::string, std::string>> items);

/// \brief The root of a list's trie, as for a block's transactions and receipts:
/// the key of `values[i]` is RLP(i) (an integer), its value `values[i]` as given
/// (a transaction's or receipt's encoding).
Hash32 OrderedTrieRoot(const std::vector<std::string>& values);

}  // namespace sluice::verify
