#include "flight/cursor.h"

#include "nlohmann/json.hpp"

namespace sluice::flight {

namespace {
constexpr std::string_view kShape =
    R"(expected {"<network>": {"block_number": <number>, "hash": "0x<64 hex digits>"}})";
}

arrow::Result<Cursor> ParseCursor(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return arrow::Status::Invalid("amp-resume cursor is not JSON; ", kShape);
  if (!j.is_object() || j.empty()) {
    return arrow::Status::Invalid("amp-resume cursor must be a non-empty object; ", kShape);
  }
  Cursor cursor;
  for (const auto& [network, entry] : j.items()) {
    if (!entry.is_object()) {
      return arrow::Status::Invalid("amp-resume cursor entry '", network, "' is not an object; ",
                                    kShape);
    }
    const nlohmann::json* number = nullptr;
    if (entry.contains("block_number")) {
      number = &entry["block_number"];
    } else if (entry.contains("number")) {
      number = &entry["number"];
    }
    if (number == nullptr || !number->is_number_unsigned()) {
      return arrow::Status::Invalid("amp-resume cursor entry '", network,
                                    "' needs a non-negative integer block_number; ", kShape);
    }
    if (!entry.contains("hash") || !entry["hash"].is_string()) {
      return arrow::Status::Invalid("amp-resume cursor entry '", network, "' needs a hash; ",
                                    kShape);
    }
    auto hash = storage::HashFromHex(entry["hash"].get<std::string>());
    if (!hash.ok()) {
      return arrow::Status::Invalid("amp-resume cursor entry '", network,
                                    "' has a malformed hash: ", hash.status().message());
    }
    cursor[network] = CursorPosition{number->get<uint64_t>(), *hash};
  }
  return cursor;
}

}  // namespace sluice::flight
