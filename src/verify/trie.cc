#include "verify/trie.h"

#include <algorithm>

#include "verify/rlp.h"

namespace sluice::verify {

namespace {

using Item = std::pair<std::string, std::string>;

// Nibble i of a key (high half of byte i/2 first).
inline uint8_t Nibble(const std::string& key, size_t i) {
  const auto b = static_cast<uint8_t>(key[i / 2]);
  return (i % 2 == 0) ? (b >> 4) : (b & 0x0f);
}

// Hex-prefix encoding of nibbles [from, to) of `key` (yellow paper, appendix C).
std::string HexPrefix(const std::string& key, size_t from, size_t to, bool leaf) {
  const size_t n = to - from;
  const bool odd = n % 2 == 1;
  std::string out;
  out.reserve(n / 2 + 1);
  uint8_t flag = static_cast<uint8_t>((leaf ? 2 : 0) + (odd ? 1 : 0));
  size_t i = from;
  if (odd) {
    out.push_back(static_cast<char>((flag << 4) | Nibble(key, i)));
    ++i;
  } else {
    out.push_back(static_cast<char>(flag << 4));
  }
  for (; i < to; i += 2) {
    out.push_back(static_cast<char>((Nibble(key, i) << 4) | Nibble(key, i + 1)));
  }
  return out;
}

class Builder {
 public:
  explicit Builder(const std::vector<Item>& items) : items_(items) {}

  // The encoding of the node holding items [begin, end), which share their
  // first `depth` nibbles.
  std::string Node(size_t begin, size_t end, size_t depth) {
    RlpWriter w;
    const std::string& first = items_[begin].first;
    const size_t first_len = first.size() * 2;
    if (end - begin == 1) {
      w.BeginList();
      w.Bytes(HexPrefix(first, depth, first_len, /*leaf=*/true));
      w.Bytes(items_[begin].second);
      w.EndList();
      return w.Take();
    }
    // Sorted keys: the prefix the first and last share is shared by all.
    const std::string& last = items_[end - 1].first;
    const size_t limit = std::min(first_len, last.size() * 2);
    size_t shared = depth;
    while (shared < limit && Nibble(first, shared) == Nibble(last, shared)) ++shared;
    if (shared > depth) {
      w.BeginList();
      w.Bytes(HexPrefix(first, depth, shared, /*leaf=*/false));
      Child(&w, Node(begin, end, shared));
      w.EndList();
      return w.Take();
    }
    // Branch: a key that ends here is the branch's value (it sorts first).
    std::string_view value;
    size_t i = begin;
    if (first_len == depth) {
      value = items_[begin].second;
      ++i;
    }
    w.BeginList();
    for (uint8_t nibble = 0; nibble < 16; ++nibble) {
      size_t j = i;
      while (j < end && Nibble(items_[j].first, depth) == nibble) ++j;
      if (j == i) {
        w.Bytes(std::string_view());
      } else {
        Child(&w, Node(i, j, depth + 1));
      }
      i = j;
    }
    w.Bytes(value);
    w.EndList();
    return w.Take();
  }

 private:
  // A child: embedded when its encoding is shorter than 32 bytes, else its hash.
  static void Child(RlpWriter* w, const std::string& encoded) {
    if (encoded.size() < 32) {
      w->Raw(encoded);
    } else {
      Hash32 h = Keccak256(encoded);
      w->Bytes(h.data(), h.size());
    }
  }

  const std::vector<Item>& items_;
};

}  // namespace

Hash32 EmptyTrieRoot() {
  static const Hash32 root = Keccak256(RlpBytes(std::string_view()));
  return root;
}

Hash32 TrieRoot(std::vector<Item> items) {
  std::erase_if(items, [](const Item& it) { return it.second.empty(); });
  if (items.empty()) return EmptyTrieRoot();
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.first < b.first; });
  return Keccak256(Builder(items).Node(0, items.size(), 0));
}

Hash32 OrderedTrieRoot(const std::vector<std::string>& values) {
  std::vector<Item> items;
  items.reserve(values.size());
  RlpWriter w;
  for (size_t i = 0; i < values.size(); ++i) {
    w.Uint(i);
    items.emplace_back(w.Take(), values[i]);
  }
  return TrieRoot(std::move(items));
}

}  // namespace sluice::verify
