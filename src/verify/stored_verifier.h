// Verification of a dataset's stored blocks (`sluice verify`,
// docs/datasets.md#verification): segment by segment, each segment's `blocks`,
// `transactions` and `logs` files read whole and verified with VerifyBlocks
// (verify/block_verifier.h). The segment list comes from the dataset's metadata,
// manifest.json or PostgreSQL (storage/metadata.h); the files from its segment
// store, a local directory or an object store read through the local segment
// cache (storage/segment_store.h).
//
// Nothing published changes, so it may run beside a server or extract worker
// writing the same dataset. When a file vanishes under it (compacted or reorged
// away, then deleted), the metadata is read again and verification goes on from
// the first block not yet verified.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "storage/metadata.h"
#include "storage/segment_store.h"
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
  /// The dataset's published state (only Load is called).
  std::shared_ptr<storage::MetadataStore> metadata;
  /// Where its segment files are (Fetch, then read at LocalPath).
  std::shared_ptr<storage::SegmentStore> segments;
  /// Its tables (ingest/evm_schema.h): a segment without rows of one reads as
  /// the table's schema with no rows.
  std::vector<storage::TableDef> tables;
  /// How messages name the dataset, e.g. `<data_dir>/<dataset>`.
  std::string name;
  /// Blocks to verify; each bound defaults to the stored range's.
  std::optional<uint64_t> from, to;
  /// Called after each segment (on the calling thread).
  std::function<void(const StoredProgress&)> on_progress;
  /// Called for each block that differs, in block order (on the calling thread).
  std::function<void(const BlockMismatch&)> on_mismatch;
};

/// \brief Verify the stored blocks [from, to] of a dataset.
///
/// Errors: IOError when nothing was ever published or no block is stored;
/// Invalid when [from, to] is empty or not all stored (the message gives the
/// stored range) or the tables lack a column verification needs (data of another
/// version); IOError when a file cannot be fetched or read (after three reads of
/// the metadata for vanished files) or the metadata cannot be read.
arrow::Result<VerifyReport> VerifyStored(const StoredVerifyOptions& options);

}  // namespace sluice::verify
