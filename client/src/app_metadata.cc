#include "app_metadata_internal.h"

namespace sluice::client::internal {

namespace {

std::optional<BlockRange> RangeOf(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  auto start = j.find("start");
  auto end = j.find("end");
  if (start == j.end() || end == j.end() || !start->is_number_unsigned() ||
      !end->is_number_unsigned()) {
    return std::nullopt;
  }
  return BlockRange{start->get<uint64_t>(), end->get<uint64_t>()};
}

}  // namespace

arrow::Result<nlohmann::json> ParseMetadata(const std::string& text) {
  if (text.empty()) return nlohmann::json::object();
  auto meta = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded() || !meta.is_object()) {
    return arrow::Status::Invalid("app_metadata is not a JSON object: '", text.substr(0, 200),
                                  "'");
  }
  return meta;
}

std::optional<BlockRange> MessageRange(const nlohmann::json& meta) {
  if (auto it = meta.find("range"); it != meta.end()) {
    if (auto r = RangeOf(*it)) return r;
  }
  auto ranges = meta.find("ranges");
  if (ranges != meta.end() && ranges->is_array() && !ranges->empty()) {
    const auto& first = (*ranges)[0];
    if (first.is_object() && first.contains("numbers")) return RangeOf(first["numbers"]);
  }
  return std::nullopt;
}

}  // namespace sluice::client::internal
