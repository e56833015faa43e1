// Resume cursors (protocol.md §3): the JSON of the `amp-resume` header and of the
// `cursor` field of a MicrobatchEnd message,
//   {"<network>": {"block_number": N, "hash": "0x…"}}
// where `number` is accepted for `block_number` (the reference's spelling).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "arrow/result.h"
#include "storage/block_store.h"

namespace sluice::flight {

/// \brief The last block a client has completely received on one network.
struct CursorPosition {
  uint64_t block_number = 0;
  storage::Hash32 hash{};
};

/// \brief network -> position.
using Cursor = std::map<std::string, CursorPosition>;

/// \brief Parse a cursor. Invalid, with what is wrong and an example of the
/// expected shape, when the text is not JSON, not an object of objects, lacks
/// `block_number`/`number`, or the hash is not 32 bytes of 0x-hex.
arrow::Result<Cursor> ParseCursor(std::string_view text);

}  // namespace sluice::flight
