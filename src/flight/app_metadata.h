// app_metadata: the UTF-8 JSON object on every FlightData message that carries a
// record batch (protocol.md §4).
//
//   {"ranges": [{"network": "anvil", "numbers": {"start": S, "end": E},
//                "hash": "0x… (block E)", "prev_hash": "0x… (parent of S)",
//                "timestamp": <Unix seconds of E>}],
//    "range": {"start": S, "end": E},        // single-network answers only
//    "ranges_complete": false | true,
//    "is_reorg": false,
//    "kind": "data" | "end" | "microbatch_start" | "block_complete" |
//            "microbatch_end" | "keep_alive",
//    "block_complete": {"start": A, "end": B},   // kind block_complete only
//    "cursor": {"<network>": {"block_number": E, "number": E, "hash": "0x…"}}}
//                                               // kind microbatch_end only
//
// Batch queries: every data batch has ranges_complete false; a final empty batch
// with kind "end" and ranges_complete true closes the answer. `ranges` is the
// block range of each dataset the query reads (one per network), as the
// snapshot held it; a query reading no chain table has none.
//
// Streaming queries (seed 001's four messages), per microbatch [S, E]:
//   MicrobatchStart  empty batch, kind "microbatch_start", is_reorg true when the
//                    microbatch replaces blocks after a reorg (range.start is
//                    where the client invalidates from)
//   Data             non-empty batches, kind "data"
//   BlockComplete    empty batch, kind "block_complete": every row of blocks
//                    [A, B] has been sent
//   MicrobatchEnd    empty batch, kind "microbatch_end", ranges_complete true,
//                    with the cursor to resume from
// and, when nothing was sent for keep_alive_interval seconds, an empty batch of
// kind "keep_alive" with the ranges of the last finished microbatch (none before
// the first), ranges_complete false (protocol.md §3).
#pragma once

#include <map>
#include <set>
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

/// \brief The ranges of the non-empty snapshots of a session among `datasets`
/// (the datasets a query reads): one range per network read.
std::vector<RangeInfo> SessionRanges(
    const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& snapshots,
    const std::set<std::string>& datasets);

/// \brief The metadata object: ranges (and `range` when exactly one), flags, kind.
nlohmann::json MakeAppMetadata(const std::vector<RangeInfo>& ranges, bool ranges_complete,
                               bool is_reorg, const std::string& kind);

/// \brief The range info of blocks [start, end] from a snapshot holding them.
RangeInfo MakeRange(const storage::Snapshot& snapshot, storage::BlockRange numbers);

/// \brief The resume cursor after block `end` of `range`: both the seed's
/// `block_number` and the reference implementation's `number` keys.
nlohmann::json MakeCursor(const RangeInfo& range);

}  // namespace sluice::flight
