// Reading the server's app_metadata JSON (docs/protocol.md "Messages and
// app_metadata"). Internal to the client library.
#pragma once

#include <optional>
#include <string>

#include "arrow/result.h"
#include "nlohmann/json.hpp"
#include "sluice/client/block_range.h"

namespace sluice::client::internal {

/// \brief Parse app_metadata; Invalid when it is not a JSON object.
arrow::Result<nlohmann::json> ParseMetadata(const std::string& text);

/// \brief The message's `range`, else the first dataset's `ranges[0].numbers`;
/// nullopt when there is neither.
std::optional<BlockRange> MessageRange(const nlohmann::json& meta);

}  // namespace sluice::client::internal
