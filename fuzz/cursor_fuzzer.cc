// Fuzzes the resume cursor parser (flight/cursor.h), the JSON of the amp-resume
// header that any client sends.
//
// A cursor that parses must survive a round trip: written back in the documented
// shape and parsed again, it is the same cursor.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "flight/cursor.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cursor = sluice::flight::ParseCursor(text);
  if (!cursor.ok()) {
    if (cursor.status().message().empty()) std::abort();
    return 0;
  }
  if (cursor->empty()) std::abort();  // documented: a non-empty object
  nlohmann::json again = nlohmann::json::object();
  for (const auto& [network, pos] : *cursor) {
    again[network] = {{"block_number", pos.block_number},
                      {"hash", sluice::storage::HashToHex(pos.hash)}};
  }
  auto reparsed = sluice::flight::ParseCursor(again.dump());
  if (!reparsed.ok() || reparsed->size() != cursor->size()) std::abort();
  for (const auto& [network, pos] : *cursor) {
    auto it = reparsed->find(network);
    if (it == reparsed->end() || it->second.block_number != pos.block_number ||
        it->second.hash != pos.hash) {
      std::abort();
    }
  }
  return 0;
}
