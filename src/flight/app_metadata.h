// app_metadata: the UTF-8 JSON object on every FlightData message that carries a
// record batch (protocol.md §4).
//
//   {"ranges": [{"network": "anvil", "numbers": {"start": S, "end": E},
//                "hash": "0x… (block E)", "prev_hash": "0x… (parent of S)",
//                "timestamp": <Unix seconds of E>}],
//    "range": {"start": S, "end": E},        // single-network answers only
//    "ranges_complete": false | true,
//    "is_reorg": false,
//    "kind": "data" | "end"}
//
// Batch queries: every data batch has ranges_complete false; a final empty batch
// with kind "end" and ranges_complete true closes the answer. `ranges` is the
// block range of each dataset the answer was computed from (the snapshot).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "storage/block_store.h"

namespace sluice::flight {

/// \brief One network's block range with its boundary hashes.
struct RangeInfo {
  std::string network;
  storage::BlockRange numbers;
  storage::Hash32 hash{};       ///< hash of block numbers.end
  storage::Hash32 prev_hash{};  ///< parent hash of block numbers.start
  int64_t timestamp = 0;        ///< Unix seconds of block numbers.end
};

/// \brief The range a snapshot covers (nullopt when it is empty).
std::optional<RangeInfo> SnapshotRange(const storage::Snapshot& snapshot);

/// \brief The ranges of every non-empty snapshot of a session.
std::vector<RangeInfo> SessionRanges(
    const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& snapshots);

/// \brief The metadata object: ranges (and `range` when exactly one), flags, kind.
nlohmann::json MakeAppMetadata(const std::vector<RangeInfo>& ranges, bool ranges_complete,
                               bool is_reorg, const std::string& kind);

}  // namespace sluice::flight
