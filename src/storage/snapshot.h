// What a dataset's store holds, as readers see it: block headers, ranges, segment
// files and the immutable Snapshot that ties one version of them together.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/table.h"
#include "arrow/type_fwd.h"

namespace sluice::storage {

class SegmentStore;

/// \brief A 32-byte hash (block hash, parent hash).
using Hash32 = std::array<uint8_t, 32>;

/// \brief The header facts of one block that the store keeps in memory: enough to
/// check chain continuity and to fill the `ranges` of app_metadata (protocol.md §4).
struct BlockHeader {
  uint64_t number = 0;
  Hash32 hash{};
  Hash32 parent_hash{};
  /// Unix seconds, from the block header's `timestamp`.
  int64_t timestamp = 0;
};

/// \brief An inclusive range of block numbers [start, end].
struct BlockRange {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t size() const { return end - start + 1; }
  bool Contains(uint64_t n) const { return n >= start && n <= end; }
};

/// \brief A table of a dataset: its name and Arrow schema. The schema must have a
/// non-nullable UInt64 column `block_num`.
struct TableDef {
  std::string name;
  std::shared_ptr<arrow::Schema> schema;
  /// Top-level columns whose segments carry a Parquet bloom filter per row group,
  /// so that equality filters skip row groups (storage/segment_format.h).
  std::vector<std::string> bloom_filter_columns = {};
};

/// \brief What the chain is: stored on first append, checked on every open so a
/// data directory is never mixed with another chain's blocks.
struct ChainIdentity {
  uint64_t chain_id = 0;
  Hash32 genesis_hash{};  ///< hash of block 0 as the node reports it
  bool operator==(const ChainIdentity&) const = default;
};

/// \brief The rows of a contiguous block range [headers.front(), headers.back()],
/// one Arrow table per dataset table (a table may have zero rows), rows ordered by
/// block_num.
struct BlockRangeData {
  std::vector<BlockHeader> headers;
  std::map<std::string, std::shared_ptr<arrow::Table>> tables;
};

/// \brief One Parquet file of a segment: an object of the segment store
/// (storage/segment_store.h), named `<table>/<first>-<last>.<seq>.parquet`.
///
/// Once retired (removed from the published segment list), the last reference
/// going away tells the segment store (SegmentStore::Released): a local store of a
/// single process deletes the file then; a store shared by several processes
/// leaves deletion to garbage collection after a grace period (storage/gc.cc), and
/// an object store only drops its local cached copy.
class SegmentFile {
 public:
  /// `store` may be null (a file that is not managed, e.g. in tests).
  SegmentFile(std::shared_ptr<SegmentStore> store, std::string object, int64_t rows,
              int64_t bytes = 0);
  ~SegmentFile();
  /// \brief Where the file is read: the file itself in a local store; the local
  /// cached copy for an object store, present only while fetched and pinned
  /// (Snapshot::Fetch).
  const std::filesystem::path& path() const { return path_; }
  /// \brief The object name, relative to the store's root: `<table>/<file>`.
  const std::string& object() const { return object_; }
  int64_t rows() const { return rows_; }
  /// \brief The file's size in bytes (0 when unknown: written by an older version).
  int64_t bytes() const { return bytes_; }
  void Retire() { retired_ = true; }

 private:
  std::shared_ptr<SegmentStore> store_;
  std::string object_;
  std::filesystem::path path_;
  int64_t rows_;
  int64_t bytes_;
  std::atomic<bool> retired_{false};
};

/// \brief A segment: the files of all tables for one block range.
struct Segment {
  BlockRange range;
  uint64_t seq = 0;  ///< unique id, part of the file names
  /// table name -> file; absent when the table has no rows in the range.
  std::map<std::string, std::shared_ptr<SegmentFile>> files;
};

/// \brief Block headers stored in chunks shared between snapshots, so that taking
/// a snapshot copies pointers, not headers.
class HeaderIndex {
 public:
  static constexpr uint64_t kChunk = 4096;
  std::optional<uint64_t> first() const { return empty() ? std::nullopt : std::optional(first_); }
  std::optional<uint64_t> last() const {
    return empty() ? std::nullopt : std::optional(first_ + count_ - 1);
  }
  bool empty() const { return count_ == 0; }
  /// \brief The header of block `number`, if stored.
  const BlockHeader* Find(uint64_t number) const;
  /// \brief Append headers of the next blocks (number must be last()+1, or any if empty).
  void Append(const BlockHeader& h);
  /// \brief Drop every header above `number`.
  void TruncateAfter(uint64_t number);

 private:
  uint64_t first_ = 0;
  uint64_t count_ = 0;
  std::vector<std::shared_ptr<std::vector<BlockHeader>>> chunks_;
};

/// \brief An immutable, consistent view of a dataset at one published version.
/// Holding it keeps its files (they are retired, never deleted, while it lives).
struct Snapshot {
  uint64_t version = 0;
  std::string dataset;
  std::string network;
  /// The stored block range, or nullopt when the dataset is empty.
  std::optional<BlockRange> range;
  std::vector<Segment> segments;  ///< ordered by range
  HeaderIndex headers;
  std::vector<TableDef> tables;
  std::map<std::string, std::filesystem::path> empty_files;  ///< per table, always local
  /// Where the segment files live; null in snapshots made by hand (tests).
  std::shared_ptr<SegmentStore> segment_store;

  /// \brief The files of `table` whose segments intersect [lo, hi], always
  /// starting with the table's empty file so the list is never empty (and only
  /// that file for an empty range, lo > hi).
  std::vector<std::filesystem::path> FilesFor(const std::string& table, uint64_t lo = 0,
                                              uint64_t hi = UINT64_MAX) const;
  const BlockHeader* Header(uint64_t number) const { return headers.Find(number); }

  /// \brief Make the files FilesFor(table, lo, hi) names readable at their path
  /// and keep them so while the returned pin lives. Nothing to do (a null pin) for
  /// a local store; an object store downloads what its local segment cache lacks
  /// (storage/segment_cache.h). IOError when a file cannot be fetched (the object
  /// store is unreachable, or the file was garbage-collected: retry with a newer
  /// snapshot).
  arrow::Result<std::shared_ptr<void>> Fetch(const std::string& table, uint64_t lo = 0,
                                             uint64_t hi = UINT64_MAX) const;
};

/// \brief Hex of a hash with 0x prefix.
std::string HashToHex(const Hash32& h);
/// \brief Parse 0x-prefixed (or bare) 64-hex-digit hash.
arrow::Result<Hash32> HashFromHex(std::string_view hex);

/// \brief The file name of a segment's file: `<first>-<last>.<seq>.parquet`, the
/// block numbers zero-padded to 12 digits so names sort by range.
std::string SegmentFileName(const BlockRange& range, uint64_t seq);

/// \brief The seq of a segment file's name or object (`<table>/` + SegmentFileName),
/// or nullopt for any other name (`empty.parquet`, a temporary file).
std::optional<uint64_t> SeqOfObject(std::string_view object);

}  // namespace sluice::storage
