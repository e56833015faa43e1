// Verification of a dataset's stored blocks, read from its data directory
// (`sluice verify`, docs/datasets.md#verification): segment by segment, each
// segment's `blocks`, `transactions` and `logs` files read whole and verified
// with VerifyBlocks (verify/block_verifier.h).
//
// Nothing on disk changes, so it may run beside a server writing the same
// directory. When a file vanishes under it (the server's compactor merged it
// or a reorg removed it), the manifest is read again and verification goes on
// from the first block not yet verified.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>

#include "arrow/result.h"
#include "verify/block_verifier.h"

namespace sluice::verify {

/// \brief How far a verification of stored blocks has got.
struct StoredProgress {
  storage::BlockRange range;  ///< the blocks being verified
  uint64_t blocks_done = 0;   ///< blocks verified so far
  uint64_t mismatches = 0;    ///< blocks that differ so far
};

/// \brief Options of VerifyStored.
struct StoredVerifyOptions {
  /// `<data_dir>/<dataset>`, holding manifest.json and a folder per table.
  std::filesystem::path dataset_dir;
  /// Blocks to verify; each bound defaults to the stored range's.
  std::optional<uint64_t> from, to;
  /// Called after each segment (on the calling thread).
  std::function<void(const StoredProgress&)> on_progress;
  /// Called for each block that differs, in block order (on the calling thread).
  std::function<void(const BlockMismatch&)> on_mismatch;
};

/// \brief Verify the stored blocks [from, to] of a dataset.
///
/// Errors: IOError when the directory holds no dataset (no manifest) or no
/// block; Invalid when [from, to] is empty or not all stored (the message gives
/// the stored range) or the tables lack a column verification needs (data of
/// another version); IOError when a file cannot be read (after three reads of
/// the manifest for vanished files).
arrow::Result<VerifyReport> VerifyStored(const StoredVerifyOptions& options);

}  // namespace sluice::verify
