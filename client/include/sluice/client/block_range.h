// Block ranges, as the server's app_metadata states them (docs/protocol.md).
#pragma once

#include <cstdint>
#include <string>

namespace sluice::client {

/// \brief Blocks `start..end`, both included (block numbers of the chain).
struct BlockRange {
  uint64_t start = 0;
  uint64_t end = 0;

  /// \brief `start <= block <= end`.
  bool Contains(uint64_t block) const { return start <= block && block <= end; }
  /// \brief The number of blocks, `end - start + 1`.
  uint64_t size() const { return end - start + 1; }
  /// \brief "start..end".
  std::string ToString() const { return std::to_string(start) + ".." + std::to_string(end); }

  bool operator==(const BlockRange&) const = default;
};

}  // namespace sluice::client
