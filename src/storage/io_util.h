// File helpers of the storage layer: fsync, Parquet in and out, and running a few
// independent blocking steps (writes, fsyncs, uploads) side by side.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/table.h"

namespace sluice::storage {

/// \brief fsync a file or directory. IOError naming the path.
arrow::Status FsyncPath(const std::filesystem::path& path);

/// \brief Run fn(0) … fn(n-1) at once, fn(0) on this thread and each other on a
/// thread of its own, and return the first error. For the few independent writes
/// and fsyncs of one commit: their waits overlap instead of adding up.
arrow::Status ParallelFor(size_t n, const std::function<arrow::Status(size_t)>& fn);

/// \brief As ParallelFor, but at most `width` at once (in waves).
arrow::Status ParallelForLimited(size_t n, size_t width,
                                 const std::function<arrow::Status(size_t)>& fn);

/// \brief Write `table` as a segment file in the current segment format
/// (storage/segment_format.h: codec, encodings, statistics, page index;
/// about `row_group_rows` rows per row group, each ending where a block ends (a
/// block's rows in one row group, unless it alone has more rows than that); a bloom filter per row group of each of
/// `bloom_filter_columns`; the Arrow schema stored), fsync'ed when `sync`.
arrow::Status WriteParquet(const std::filesystem::path& path,
                           const std::shared_ptr<arrow::Table>& table, int64_t row_group_rows,
                           bool sync, const std::vector<std::string>& bloom_filter_columns = {});

/// \brief Read a Parquet file whole, or only `columns` (indices).
arrow::Result<std::shared_ptr<arrow::Table>> ReadParquet(const std::filesystem::path& path,
                                                         std::vector<int> columns = {});

}  // namespace sluice::storage
