#include "storage/io_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>

#include "arrow/io/file.h"
#include "parquet/arrow/reader.h"
#include "parquet/arrow/writer.h"
#include "parquet/properties.h"

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

Status WriteParquet(const fs::path& path, const std::shared_ptr<arrow::Table>& table,
                    int64_t row_group_rows, bool sync) {
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path.string()));
  auto props = parquet::WriterProperties::Builder()
                   .compression(parquet::Compression::SNAPPY)
                   ->max_row_group_length(row_group_rows)
                   ->build();
  auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
  ARROW_RETURN_NOT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out,
                                                 row_group_rows, props, arrow_props));
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
