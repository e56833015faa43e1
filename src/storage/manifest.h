// The published state of a dataset directory, `<data_dir>/<dataset>/manifest.json`
// (written by BlockStore), and the reading of its Parquet files.
//
// manifest.json: {"format": 1, "dataset", "network", "version", "next_seq",
//   "identity": {"chain_id", "genesis_hash"} | null,
//   "segments": [{"start", "end", "seq", "files": {<table>: {"file", "rows"}}}]}
//
// Reading changes nothing on disk, so a reader may run beside the server that
// writes the directory (e.g. `sluice verify`). A segment file can still vanish
// under such a reader when the server's compactor or a reorg retires it: read
// the manifest again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "arrow/result.h"
#include "arrow/table.h"
#include "storage/block_store.h"

namespace sluice::storage {

/// \brief The manifest format this version reads and writes.
inline constexpr int kManifestFormat = 1;

/// \brief A parsed manifest.
struct Manifest {
  uint64_t version = 0;
  uint64_t next_seq = 1;
  std::optional<ChainIdentity> identity;
  std::vector<Segment> segments;  ///< ordered by range; their files are never retired here

  /// \brief The stored block range, or nullopt when there are no segments.
  std::optional<BlockRange> range() const;
};

/// \brief Read `<dataset_dir>/manifest.json`; nullopt when there is none (an
/// empty or new dataset). Errors: IOError on an unparsable manifest or one that
/// names a missing file; Invalid on an unknown format.
arrow::Result<std::optional<Manifest>> ReadManifest(const std::filesystem::path& dataset_dir);

/// \brief Read a Parquet file written by the store (all columns, or the given
/// column indices). IOError when it cannot be opened or read.
arrow::Result<std::shared_ptr<arrow::Table>> ReadParquetFile(const std::filesystem::path& path,
                                                             std::vector<int> columns = {});

}  // namespace sluice::storage
