// The scan cache: segments of chain tables kept in the form a direct scan sends
// them (Arrow IPC files of the answer's types), so that the next scan of a segment
// reads record batches instead of decoding Parquet.
//
// A segment enters the cache the second time a direct scan (sql/scan.h) reads it
// whole, all columns (a table exported once costs no disk and no writing); it is
// written beside that scan, to `<dir>/<dataset>/<table>/<segment file>.arrow`, and
// published by rename when complete. An entry records the size
// and modification time of its Parquet file and is used only while they match, so
// an entry can never answer for other data (segment file names are never reused,
// and a reorg or compaction writes new files). The cache is bounded by `max_bytes`:
// entries whose segment is gone are deleted first, then the least recently used
// ones, but only those unused for `min_residency` — a scan of a table larger than
// the cache keeps what it cached first instead of churning it (LRU's worst case)
// — and a segment that does not fit then is not cached. Nothing is written when
// the file system would keep less than `min_free_bytes` free. Entries are not fsync'ed: after a reboot (a new boot id)
// the cache starts empty, so a file torn by a power loss is never read.
//
// Thread-safe. A failed write only costs speed: the scan goes on from Parquet.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "arrow/io/file.h"
#include "arrow/ipc/reader.h"
#include "arrow/ipc/writer.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"

namespace sluice::sql {

class ScanCache;

/// \brief Writes one segment's entry. Destroyed before Commit, it deletes what it
/// wrote.
class ScanCacheWriter {
 public:
  ~ScanCacheWriter();
  /// \brief Append the segment's next rows (the schema given to Begin).
  arrow::Status Write(const arrow::RecordBatch& batch);
  /// \brief Finish and publish the entry.
  arrow::Status Commit();

 private:
  friend class ScanCache;
  ScanCacheWriter() = default;
  std::shared_ptr<ScanCache> cache_;
  std::filesystem::path segment_;
  std::filesystem::path tmp_;
  std::filesystem::path path_;
  std::string source_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::io::FileOutputStream> out_;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer_;
  bool done_ = false;
};

/// \brief Bounds and place of the cache.
struct ScanCacheOptions {
  std::filesystem::path data_dir;      ///< where the segments are: <data_dir>/<dataset>/<table>/
  std::filesystem::path dir;           ///< where entries are kept, e.g. <data_dir>/.scan_cache
  int64_t max_bytes = int64_t{8} << 30;  ///< disk the entries may take
  int64_t min_free_bytes = int64_t{2} << 30;  ///< never fill the file system past this
  std::chrono::seconds min_residency{600};     ///< an entry used since is not evicted
};

class ScanCache : public std::enable_shared_from_this<ScanCache> {
 public:
  /// \brief Open (create) the cache directory: deletes unfinished entries, entries
  /// from before the last reboot and entries whose segment is gone.
  /// IOError when the directory cannot be created or listed.
  static arrow::Result<std::shared_ptr<ScanCache>> Open(ScanCacheOptions options);

  /// \brief The entry of `segment` (a Parquet segment file), opened to read only
  /// the fields of `wanted` (by name; their types must match and their order be the
  /// entry's); null when there is no such entry.
  arrow::Result<std::shared_ptr<arrow::ipc::RecordBatchFileReader>> Find(
      const std::filesystem::path& segment, const arrow::Schema& wanted);

  /// \brief A writer of `segment`'s entry with `schema`, or null: the first time a
  /// segment is asked for (it is only remembered), when it is being written by
  /// another scan, or when there is no room.
  std::unique_ptr<ScanCacheWriter> Begin(const std::filesystem::path& segment,
                                         std::shared_ptr<arrow::Schema> schema);

  /// \brief Bytes the entries take now.
  int64_t bytes() const;
  /// \brief Number of entries.
  size_t entries() const;

 private:
  friend class ScanCacheWriter;
  struct Entry {
    std::filesystem::path segment;
    int64_t bytes = 0;
    std::list<std::filesystem::path>::iterator lru;  // position in lru_
    std::chrono::steady_clock::time_point used;
    std::string source;                     // the segment file's identity when made
    std::shared_ptr<arrow::Schema> schema;  // the entry's fields
  };
  explicit ScanCache(ScanCacheOptions options) : options_(std::move(options)) {}
  std::filesystem::path EntryPath(const std::filesystem::path& segment) const;
  void Published(const std::filesystem::path& segment, const std::filesystem::path& path,
                 int64_t bytes, std::string source, std::shared_ptr<arrow::Schema> schema);
  void Abandoned(const std::filesystem::path& segment);
  // Caller holds mu_. Delete entries (gone segments first, then least recently
  // used ones idle for min_residency) until `incoming` more bytes fit; false if
  // they do not.
  bool MakeRoom(int64_t incoming);
  void Remove(const std::filesystem::path& path);  // caller holds mu_

  ScanCacheOptions options_;
  mutable std::mutex mu_;
  std::map<std::filesystem::path, Entry> entries_;  // key: entry path
  std::list<std::filesystem::path> lru_;            // front: most recently used
  std::set<std::filesystem::path> writing_;         // segments being written
  std::set<std::filesystem::path> seen_;            // segments read whole once
  int64_t bytes_ = 0;
};

}  // namespace sluice::sql
