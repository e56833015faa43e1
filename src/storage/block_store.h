// The block store: one dataset's chain data as immutable Parquet segments.
//
// A dataset (e.g. `eth_rpc`) holds several tables (blocks, transactions, logs),
// every one with a UInt64 `block_num` column. Data arrives as contiguous block
// ranges; each Append writes one Parquet file per table covering exactly that
// range, makes it durable (fsync), then publishes it by atomically replacing the
// manifest. A background compactor later merges adjacent small segments into
// larger ones; a truncation (reorg) removes every block above a height from every
// table in one manifest swap. Readers take a Snapshot: an immutable view of the
// segment files and block headers at one manifest version, whose files stay on
// disk until the last reader releases it.
//
// On-disk layout under `<data_dir>/<dataset>/`:
//   manifest.json                          the published state (atomic rename)
//   <table>/empty.parquet                  zero rows, the table's schema
//   <table>/<first>-<last>.<seq>.parquet   rows of blocks [first, last]
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/table.h"
#include "arrow/type_fwd.h"

namespace sluice::storage {

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

/// \brief One Parquet file of a segment. Deleted from disk when it has been
/// retired (removed from the manifest) and the last snapshot using it is gone.
class SegmentFile {
 public:
  SegmentFile(std::filesystem::path path, int64_t rows) : path_(std::move(path)), rows_(rows) {}
  ~SegmentFile();
  const std::filesystem::path& path() const { return path_; }
  int64_t rows() const { return rows_; }
  void Retire() { retired_ = true; }

 private:
  std::filesystem::path path_;
  int64_t rows_;
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

/// \brief An immutable, consistent view of a dataset at one manifest version.
/// Holding it keeps its files on disk.
struct Snapshot {
  uint64_t version = 0;
  std::string dataset;
  std::string network;
  /// The stored block range, or nullopt when the dataset is empty.
  std::optional<BlockRange> range;
  std::vector<Segment> segments;  ///< ordered by range
  HeaderIndex headers;
  std::vector<TableDef> tables;
  std::map<std::string, std::filesystem::path> empty_files;  ///< per table

  /// \brief The files of `table` whose segments intersect [lo, hi], always
  /// starting with the table's empty file so the list is never empty.
  std::vector<std::filesystem::path> FilesFor(const std::string& table, uint64_t lo = 0,
                                              uint64_t hi = UINT64_MAX) const;
  const BlockHeader* Header(uint64_t number) const { return headers.Find(number); }
};

/// \brief Options of a dataset's store.
struct StoreOptions {
  std::filesystem::path data_dir;  ///< the store lives in data_dir / dataset
  std::string dataset = "eth_rpc";
  std::string network = "anvil";
  std::vector<TableDef> tables;
  /// Merge adjacent segments while the merged segment stays under these sizes.
  int64_t compact_target_rows = 512 * 1024;
  uint64_t compact_target_blocks = 100000;
  /// Merge this many adjacent segments of one size level (see CompactOnce).
  size_t compact_min_segments = 8;
  /// Rows per Parquet row group: the unit a scan skips by block range or bloom
  /// filter, and a streaming microbatch over-reads at its ends (bench/FIXES.md).
  int64_t row_group_rows = 32 * 1024;
  bool fsync = true;  ///< false only for benchmarks' bulk generation
  /// How many removed (reorged-out) block headers TruncateAfter remembers, so a
  /// cursor on an abandoned fork can find its common ancestor.
  size_t replaced_log_blocks = 4096;
};

/// \brief A dataset's store. Thread-safe: one writer (the extractor) and any
/// number of readers (queries, streams).
class BlockStore {
 public:
  /// \brief Open or create the store. Deletes files a crash left unpublished.
  /// Errors: IOError on an unreadable manifest or file; Invalid when the stored
  /// tables' schemas differ from `options.tables`.
  static arrow::Result<std::unique_ptr<BlockStore>> Open(StoreOptions options);
  ~BlockStore();

  /// \brief The chain identity stored with the data, if any block was ever stored.
  std::optional<ChainIdentity> identity() const;
  /// \brief Record the chain identity. Invalid if a different one is stored.
  arrow::Status SetIdentity(const ChainIdentity& identity);

  /// \brief Append the next contiguous range: its first block must be head+1 (or
  /// any block when empty) and its first parent_hash must equal the stored hash
  /// of the block below. Durable (fsync'ed and published) when it returns OK.
  arrow::Status Append(const BlockRangeData& data);

  /// \brief Atomically remove every block above `number` from every table (reorg).
  arrow::Status TruncateAfter(uint64_t number);

  /// \brief The current snapshot (cheap; shares files and headers).
  std::shared_ptr<const Snapshot> snapshot() const;

  /// \brief The newest stored block's header.
  std::optional<BlockHeader> head() const;

  /// \brief The common ancestor of the chain ending at block (number, hash) and
  /// the canonical chain of `snapshot`: `number` itself when that block is
  /// canonical, else found by walking back through blocks that TruncateAfter
  /// removed. nullopt when the block is neither canonical nor a removed one (an
  /// unknown fork, or older than the log).
  std::optional<uint64_t> CommonAncestor(const Snapshot& snapshot, uint64_t number,
                                         const Hash32& hash) const;

  /// \brief Block until the manifest version exceeds `version` or `timeout` passes.
  /// Returns the current version. Wakes immediately on Append/Truncate.
  uint64_t WaitForVersion(uint64_t version, std::chrono::milliseconds timeout) const;

  /// \brief Register a callback run (on the writer's thread, after publishing)
  /// whenever a new version is published. Callbacks must be quick.
  void Subscribe(std::function<void(const Snapshot&)> callback);

  /// \brief Merge small segments now (normally done by a background thread).
  arrow::Status CompactOnce();

  const StoreOptions& options() const { return options_; }

 private:
  explicit BlockStore(StoreOptions options);
  arrow::Status Load();
  arrow::Status Publish(std::vector<Segment> segments, HeaderIndex headers,
                        std::vector<std::shared_ptr<SegmentFile>> retired);
  /// `sync_dirs`: also make the table directories' entries durable before the swap.
  arrow::Status WriteManifest(const std::vector<Segment>& segments, uint64_t version,
                              bool sync_dirs = false);
  arrow::Result<std::shared_ptr<SegmentFile>> WriteFile(const std::string& table,
                                                       const BlockRange& range, uint64_t seq,
                                                       const std::shared_ptr<arrow::Table>& rows);
  void CompactorLoop();

  StoreOptions options_;
  std::filesystem::path dir_;
  std::optional<ChainIdentity> identity_;
  mutable std::mutex write_mu_;  // one writer at a time (append, truncate, compaction publish)
  mutable std::mutex mu_;        // guards current_ and next_seq_
  mutable std::condition_variable changed_;
  std::shared_ptr<const Snapshot> current_;
  uint64_t next_seq_ = 1;
  std::vector<std::function<void(const Snapshot&)>> subscribers_;
  // Removed blocks, keyed by (number, hash); oldest first in replaced_order_.
  std::map<std::pair<uint64_t, Hash32>, BlockHeader> replaced_;
  std::deque<std::pair<uint64_t, Hash32>> replaced_order_;
  arrow::Status SaveReplaced();
  bool stopping_ = false;
  std::thread compactor_;
};

/// \brief Hex of a hash with 0x prefix.
std::string HashToHex(const Hash32& h);
/// \brief Parse 0x-prefixed (or bare) 64-hex-digit hash.
arrow::Result<Hash32> HashFromHex(std::string_view hex);

}  // namespace sluice::storage
