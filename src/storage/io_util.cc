#include "storage/io_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>

#include "arrow/array.h"
#include "arrow/array/concatenate.h"
#include "arrow/io/file.h"
#include "arrow/table.h"
#include "parquet/arrow/reader.h"
#include "parquet/arrow/writer.h"
#include "parquet/properties.h"
#include "storage/segment_format.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

Status FsyncPath(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open ", path.string(), " for fsync: ", strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("fsync ", path.string(), ": ", strerror(err));
  return Status::OK();
}

Status ParallelFor(size_t n, const std::function<Status(size_t)>& fn) {
  std::vector<std::future<Status>> others;
  others.reserve(n > 0 ? n - 1 : 0);
  for (size_t i = 1; i < n; ++i) others.push_back(std::async(std::launch::async, fn, i));
  Status st = n > 0 ? fn(0) : Status::OK();
  for (auto& f : others) {
    Status other = f.get();
    if (st.ok()) st = std::move(other);
  }
  return st;
}

Status ParallelForLimited(size_t n, size_t width, const std::function<Status(size_t)>& fn) {
  width = std::max<size_t>(width, 1);
  Status st;
  for (size_t begin = 0; begin < n; begin += width) {
    const size_t count = std::min(width, n - begin);
    Status wave = ParallelFor(count, [&](size_t i) { return fn(begin + i); });
    if (st.ok()) st = std::move(wave);
  }
  return st;
}

namespace {

// Where the row groups of `table` end: about `row_group_rows` rows each, cut where
// block_num changes (rows are ordered by it) so that a block's rows are in one row
// group, unless a block alone has more rows than that. Without a block_num column
// of an integer type: every `row_group_rows` rows.
Result<std::vector<int64_t>> RowGroupCuts(const arrow::Table& table, int64_t row_group_rows) {
  const int64_t n = table.num_rows();
  std::vector<int64_t> cuts;
  auto column = table.GetColumnByName("block_num");
  const bool by_block = column != nullptr && n > row_group_rows &&
                        (column->type()->id() == arrow::Type::UINT64 ||
                         column->type()->id() == arrow::Type::INT64);
  std::shared_ptr<arrow::Array> blocks;
  if (by_block) {
    ARROW_ASSIGN_OR_RAISE(blocks, arrow::Concatenate(column->chunks()));
  }
  auto block = [&](int64_t row) {
    // 64 bits either way; block numbers are never negative.
    return blocks->data()->GetValues<uint64_t>(1)[row];
  };
  int64_t start = 0;
  while (start < n) {
    int64_t end = std::min(n, start + row_group_rows);
    if (by_block && end < n) {
      // The first row of the block at `end`: a cut there keeps that block whole.
      const uint64_t b = block(end);
      if (block(start) != b) {
        int64_t lo = start, hi = end;  // block(lo) < b == block(hi)
        while (lo + 1 < hi) {
          const int64_t mid = lo + (hi - lo) / 2;
          (block(mid) < b ? lo : hi) = mid;
        }
        end = hi;
      }  // else one block fills the row group: it goes on in the next
    }
    cuts.push_back(end);
    start = end;
  }
  return cuts;
}

}  // namespace

Status WriteParquet(const fs::path& path, const std::shared_ptr<arrow::Table>& table,
                    int64_t row_group_rows, bool sync,
                    const std::vector<std::string>& bloom_filter_columns) {
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path.string()));
  auto props = SegmentWriterProperties(*table->schema(), row_group_rows, bloom_filter_columns,
                                       IncompressibleColumns(*table));
  ARROW_ASSIGN_OR_RAISE(auto writer,
                        parquet::arrow::FileWriter::Open(*table->schema(),
                                                         arrow::default_memory_pool(), out, props,
                                                         SegmentArrowWriterProperties()));
  ARROW_ASSIGN_OR_RAISE(auto cuts, RowGroupCuts(*table, row_group_rows));
  int64_t start = 0;
  for (int64_t end : cuts) {
    // One call, one row group (WriteTable starts a new one).
    ARROW_RETURN_NOT_OK(writer->WriteTable(*table->Slice(start, end - start), end - start));
    start = end;
  }
  if (cuts.empty()) ARROW_RETURN_NOT_OK(writer->WriteTable(*table, row_group_rows));
  ARROW_RETURN_NOT_OK(writer->Close());
  ARROW_RETURN_NOT_OK(out->Close());
  if (sync) ARROW_RETURN_NOT_OK(FsyncPath(path));
  return Status::OK();
}

Result<std::shared_ptr<arrow::Table>> ReadParquet(const fs::path& path, std::vector<int> columns) {
  ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(path.string()));
  ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(in, arrow::default_memory_pool()));
  if (columns.empty()) return reader->ReadTable();
  return reader->ReadTable(columns);
}

}  // namespace sluice::storage
