#include "flight/endpoints.h"

#include <algorithm>

namespace fl = arrow::flight;

namespace sluice::flight {

arrow::Result<std::optional<SplitPlan>> PlanSplit(sql::Session* session, const std::string& sql,
                                                  uint64_t max_blocks) {
  if (max_blocks == 0) return std::nullopt;
  auto check = session->CheckStreaming(sql);
  if (!check.ok()) return std::nullopt;  // not a per-block union (or an error DoGet reports)
  const sql::IncrementalInfo& info = check->info;
  if (info.tables.size() != 1 || info.has_join || info.late_rows) return std::nullopt;
  const auto& ref = info.tables.front();
  auto snap = session->snapshots().find(ref.schema);
  if (snap == session->snapshots().end() || !snap->second->range) return std::nullopt;
  const auto& s = *snap->second;
  if (s.range->size() <= max_blocks) return std::nullopt;
  SplitPlan plan;
  plan.dataset = ref.schema;
  // The table as the store spells it.
  for (const auto& t : s.tables) {
    std::string a = t.name, b = ref.table;
    std::transform(a.begin(), a.end(), a.begin(), ::tolower);
    std::transform(b.begin(), b.end(), b.begin(), ::tolower);
    if (a == b) plan.table = t.name;
  }
  if (plan.table.empty()) return std::nullopt;
  for (uint64_t lo = s.range->start; lo <= s.range->end;) {
    const uint64_t hi = std::min(s.range->end, lo + max_blocks - 1);
    plan.ranges.push_back({lo, hi});
    plan.end_hashes.push_back(s.Header(hi)->hash);
    if (hi == s.range->end) break;
    lo = hi + 1;
  }
  return plan;
}

arrow::Result<std::vector<fl::Location>> EndpointLocations(size_t index,
                                                           const std::vector<std::string>& uris) {
  std::vector<fl::Location> out;
  for (size_t i = 0; i < uris.size(); ++i) {
    auto location = fl::Location::Parse(uris[(index + i) % uris.size()]);
    if (!location.ok()) {
      return arrow::Status::Invalid("setting endpoint_locations: ", location.status().message());
    }
    out.push_back(std::move(*location));
  }
  return out;
}

arrow::Status RestrictToRange(sql::Session* session, const TicketPayload& payload) {
  const auto dot = payload.range_table.find('.');
  const std::string dataset = payload.range_table.substr(0, dot);
  const std::string table = payload.range_table.substr(dot + 1);
  auto snap = session->snapshots().find(dataset);
  if (dot == std::string::npos || snap == session->snapshots().end()) {
    return arrow::Status::Invalid("ticket names unknown table ", payload.range_table);
  }
  const auto* end = snap->second->Header(payload.range_hi);
  if (end == nullptr || storage::HashToHex(end->hash) != payload.range_hash) {
    return arrow::Status::Invalid("the chain reorganized at or below block ", payload.range_hi,
                                  " since GetFlightInfo planned this endpoint; call "
                                  "GetFlightInfo again");
  }
  return session->SetTableRange(dataset, table, {payload.range_lo, payload.range_hi});
}

std::vector<std::string> SplitLocations(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

}  // namespace sluice::flight
