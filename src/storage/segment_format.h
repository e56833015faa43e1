// How the store writes a segment's Parquet file: codec, encodings, row groups,
// statistics, page indexes and bloom filters (bench/FIXES.md measures each).
//
// Format 2 (this version): every column LZ4_RAW-compressed but those LZ4 does not
// shrink by a fifth (IncompressibleColumns: random hashes, signatures, numbers as
// decimal strings), which are stored uncompressed and so decoded straight from the
// mapped file (it costs about 5 % more disk, bench/FIXES.md); dictionary encoding
// only for fixed-width numeric, boolean and timestamp columns (binary, string and
// fixed-size binary columns — hashes, addresses, calldata — are PLAIN: their
// dictionaries rarely pay and Arrow decodes a dictionary-encoded fixed-size binary
// column at a third of the speed); min/max statistics and the page index (column
// and offset indexes) of every column; a split-block bloom filter per row group of
// each column a table names in TableDef::bloom_filter_columns (hashes and
// addresses that needle queries compare with `=`). Row groups of about
// row_group_rows rows end where a block ends (storage/io_util.h WriteParquet), so
// that a range of blocks is whole row groups (RowGroupBlockEnds).
// Format 1 (before): Snappy, dictionary encoding everywhere, no bloom filters. A
// store of format-1 segments is read as is (every reader handles both: Parquet
// names the codec and encodings per column chunk, and a segment without bloom
// filters is simply never skipped by one); new and compacted segments are written
// in format 2, so compaction upgrades a store's history as it merges it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/type_fwd.h"
#include "parquet/properties.h"

namespace sluice::storage {

/// \brief The segment format new files are written in (see above).
inline constexpr int kSegmentFormat = 2;

/// \brief A column is stored uncompressed when LZ4 leaves its sample at least this
/// share of its size.
inline constexpr double kIncompressibleRatio = 0.80;

/// \brief The top-level binary, string and fixed-size binary columns of `table`
/// that LZ4 does not shrink below kIncompressibleRatio, judged on the first 256 KiB
/// of their values (a column with less than 4 KiB of values is not judged).
std::vector<std::string> IncompressibleColumns(const arrow::Table& table);

/// \brief Writer properties of a segment of a table with `schema`, `row_group_rows`
/// rows per row group, bloom filters on the top-level columns `bloom_filter_columns`
/// and no compression of the top-level columns `uncompressed_columns` (names absent
/// from the schema are ignored in both).
std::shared_ptr<parquet::WriterProperties> SegmentWriterProperties(
    const arrow::Schema& schema, int64_t row_group_rows,
    const std::vector<std::string>& bloom_filter_columns,
    const std::vector<std::string>& uncompressed_columns = {});

/// \brief Arrow-level writer properties of a segment (the Arrow schema is stored,
/// so timestamps keep their unit and time zone).
std::shared_ptr<parquet::ArrowWriterProperties> SegmentArrowWriterProperties();

/// \brief The blocks at which a reader of the segment file `path` can stop without
/// decoding part of a row group: the last block of each row group that no later
/// row group holds rows of, by the row groups' block_num statistics, ascending.
/// Empty when the file has no such statistics. IOError when it cannot be read.
arrow::Result<std::vector<uint64_t>> RowGroupBlockEnds(const std::filesystem::path& path);

}  // namespace sluice::storage
