#include "flight/app_metadata.h"

namespace sluice::flight {

std::optional<RangeInfo> SnapshotRange(const storage::Snapshot& snapshot) {
  if (!snapshot.range) return std::nullopt;
  return MakeRange(snapshot, *snapshot.range);
}

RangeInfo MakeRange(const storage::Snapshot& snapshot, storage::BlockRange numbers) {
  RangeInfo r;
  r.network = snapshot.network;
  r.numbers = numbers;
  const auto* last = snapshot.Header(r.numbers.end);
  const auto* first = snapshot.Header(r.numbers.start);
  r.hash = last->hash;
  r.timestamp = last->timestamp;
  r.prev_hash = first->parent_hash;
  return r;
}

nlohmann::json MakeCursor(const RangeInfo& range) {
  return {{range.network,
           {{"block_number", range.numbers.end},
            {"number", range.numbers.end},
            {"hash", storage::HashToHex(range.hash)}}}};
}

std::vector<RangeInfo> SessionRanges(
    const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& snapshots,
    const std::set<std::string>& datasets) {
  std::vector<RangeInfo> out;
  for (const auto& [name, snap] : snapshots) {
    if (!datasets.count(name)) continue;
    if (auto r = SnapshotRange(*snap)) out.push_back(*r);
  }
  return out;
}

nlohmann::json MakeAppMetadata(const std::vector<RangeInfo>& ranges, bool ranges_complete,
                               bool is_reorg, const std::string& kind) {
  nlohmann::json j;
  auto& jr = j["ranges"] = nlohmann::json::array();
  for (const auto& r : ranges) {
    jr.push_back({{"network", r.network},
                  {"numbers", {{"start", r.numbers.start}, {"end", r.numbers.end}}},
                  {"hash", storage::HashToHex(r.hash)},
                  {"prev_hash", storage::HashToHex(r.prev_hash)},
                  {"timestamp", r.timestamp}});
  }
  if (ranges.size() == 1) {
    j["range"] = {{"start", ranges[0].numbers.start}, {"end", ranges[0].numbers.end}};
  }
  j["ranges_complete"] = ranges_complete;
  j["is_reorg"] = is_reorg;
  j["kind"] = kind;
  return j;
}

}  // namespace sluice::flight
