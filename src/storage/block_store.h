// The block store: one dataset's chain data as immutable Parquet segments.
//
// A dataset (e.g. `eth_rpc`) holds several tables (blocks, transactions, logs),
// every one with a UInt64 `block_num` column. Data arrives as contiguous block
// ranges; each Append writes one Parquet file per table covering exactly that
// range, makes it durable, then publishes it as a new version. A background
// compactor later merges adjacent small segments into larger ones; a truncation
// (reorg) removes every block above a height from every table in one publish.
// Readers take a Snapshot: an immutable view of the segment files and block
// headers at one version, whose files stay readable until the last reader
// releases it.
//
// Two backends carry a store (storage/backends.h builds them from the settings):
// - metadata (storage/metadata.h): manifest.json + replaced.json in the dataset's
//   directory (the single process), or PostgreSQL (extract workers and query
//   servers: storage/pg_metadata.h);
// - segments (storage/segment_store.h): a local directory, or an S3-compatible
//   object store read through a bounded local cache (storage/segment_cache.h).
//
// Local layout under `<data_dir>/<dataset>/` (the single process):
//   manifest.json                          the published state (atomic rename)
//   replaced.json                          the log of replaced blocks
//   <table>/empty.parquet                  zero rows, the table's schema
//   <table>/<first>-<last>.<seq>.parquet   rows of blocks [first, last]
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
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
#include "storage/metadata.h"
#include "storage/segment_store.h"
#include "storage/snapshot.h"

namespace sluice::storage {

/// \brief Options of a dataset's store.
struct StoreOptions {
  /// Local files live in data_dir / dataset: the segments and the manifest of
  /// the single process, the tables' empty files in every role.
  std::filesystem::path data_dir;
  std::string dataset = "eth_rpc";
  std::string network = "anvil";
  std::vector<TableDef> tables;
  /// Merge adjacent segments while the merged segment stays under these sizes.
  int64_t compact_target_rows = 512 * 1024;
  uint64_t compact_target_blocks = 100000;
  /// Merge this many adjacent segments of one size level (see CompactOnce).
  size_t compact_min_segments = 8;
  /// Rows per Parquet row group.
  int64_t row_group_rows = 128 * 1024;
  bool fsync = true;  ///< false only for benchmarks' bulk generation
  /// How many removed (reorged-out) block headers TruncateAfter remembers, so a
  /// cursor on an abandoned fork can find its common ancestor.
  size_t replaced_log_blocks = 4096;

  /// The backends (storage/backends.h). Null: the single process's manifest and
  /// segment directory under data_dir / dataset.
  std::shared_ptr<MetadataStore> metadata;
  std::shared_ptr<SegmentStore> segments;
  /// A query server's store: it follows what a writer publishes through shared
  /// metadata (Refresh, woken by the metadata's notifications) and never writes.
  bool read_only = false;
  /// Shared metadata: a retired object (compacted or truncated away) is deleted
  /// from the segment store this long after it was retired, by the writer's
  /// garbage collection every gc_interval. A query server reading an older
  /// version than that may find a file gone and fails that query (docs/deploy.md).
  std::chrono::seconds gc_grace{600};
  std::chrono::seconds gc_interval{30};
};

/// \brief A dataset's store. Thread-safe: one writer (the extractor) and any
/// number of readers (queries, streams).
class BlockStore {
 public:
  /// \brief Open or create the store. A writer over unshared metadata deletes
  /// files a crash left unpublished. A read-only store starts following its
  /// metadata's notifications.
  /// Errors: IOError on an unreadable manifest, file or unreachable backend;
  /// Invalid when the stored tables' schemas differ from `options.tables`.
  static arrow::Result<std::unique_ptr<BlockStore>> Open(StoreOptions options);
  ~BlockStore();

  /// \brief The chain identity stored with the data, if any block was ever stored.
  std::optional<ChainIdentity> identity() const;
  /// \brief Record the chain identity. Invalid if a different one is stored.
  arrow::Status SetIdentity(const ChainIdentity& identity);

  /// \brief Append the next contiguous range: its first block must be head+1 (or
  /// any block when empty) and its first parent_hash must equal the stored hash
  /// of the block below. Durable (written, uploaded and published) when it
  /// returns OK. Invalid on a read-only store.
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

  /// \brief Block until the version exceeds `version` or `timeout` passes.
  /// Returns the current version. Wakes immediately on Append/Truncate/Refresh.
  uint64_t WaitForVersion(uint64_t version, std::chrono::milliseconds timeout) const;

  /// \brief Register a callback run (on the writer's or refreshing thread, after
  /// publishing) whenever a new version is published. Callbacks must be quick.
  void Subscribe(std::function<void(const Snapshot&)> callback);

  /// \brief Merge small segments now (normally done by a background thread).
  arrow::Status CompactOnce();

  /// \brief Read-only stores: catch up with what the shared metadata published
  /// (new segments, headers, replaced blocks), fetch the new segments into the
  /// local cache and publish the result as the current snapshot. Called on each
  /// notification and after the metadata connection comes back.
  arrow::Status Refresh();

  /// \brief Whether new queries can trust the current snapshot: OK, or
  /// Unavailable while a read-only store has lost its metadata connection (its
  /// snapshot may be stale). Queries already running are not affected.
  arrow::Status Available() const;

  /// \brief Writers over shared metadata: delete objects retired more than
  /// gc_grace ago, and objects never published (a writer that crashed between
  /// upload and commit) older than gc_grace. Normally run every gc_interval by the
  /// background thread. Returns the number of objects deleted.
  arrow::Result<size_t> CollectGarbage();

  const StoreOptions& options() const { return options_; }
  const std::shared_ptr<SegmentStore>& segment_store() const { return options_.segments; }

 private:
  explicit BlockStore(StoreOptions options);
  // What one publish changes (see Publish).
  struct Change {
    std::vector<Segment> segments;  // the whole new list
    HeaderIndex headers;
    std::vector<std::shared_ptr<SegmentFile>> retired;
    std::vector<uint64_t> added;  // seqs of the new segments
    std::optional<uint64_t> truncate_after;
    std::vector<BlockHeader> appended;
    std::vector<BlockHeader> replaced;
  };
  arrow::Status Load();
  arrow::Status WriteEmptyFiles(Snapshot* snap);
  arrow::Status LoadHeadersFromFiles(Snapshot* snap);
  arrow::Status DeleteUnpublished(const std::vector<Segment>& segments);
  arrow::Status Publish(Change change);
  void Install(std::shared_ptr<const Snapshot> snap);
  arrow::Status CheckWritable() const;
  uint64_t NextSeq();
  std::shared_ptr<SegmentFile> MakeFile(const FileRecord& record);
  /// Write one table's rows of a range as a segment file (staged, not yet Put).
  arrow::Result<std::shared_ptr<SegmentFile>> WriteFile(const std::string& table,
                                                       const BlockRange& range, uint64_t seq,
                                                       const std::shared_ptr<arrow::Table>& rows);
  /// Put the files of `segments` (upload / make durable).
  arrow::Status PutFiles(const std::vector<const Segment*>& segments);
  void RememberReplaced(const std::vector<BlockHeader>& headers);
  void BackgroundLoop();

  StoreOptions options_;
  std::filesystem::path dir_;
  std::optional<ChainIdentity> identity_;
  mutable std::mutex write_mu_;  // one writer at a time (append, truncate, compaction publish)
  mutable std::mutex mu_;        // guards current_, next_seq_, replaced_, available_
  mutable std::condition_variable changed_;
  std::shared_ptr<const Snapshot> current_;
  uint64_t next_seq_ = 1;
  std::vector<std::function<void(const Snapshot&)>> subscribers_;
  // Removed blocks, keyed by (number, hash); oldest first in replaced_order_.
  std::map<std::pair<uint64_t, Hash32>, BlockHeader> replaced_;
  std::deque<std::pair<uint64_t, Hash32>> replaced_order_;
  uint64_t replaced_seen_ = 0;  // read-only stores: cursor into the shared log
  arrow::Status available_;
  std::mutex refresh_mu_;  // one Refresh at a time
  bool stopping_ = false;
  std::thread background_;
};

}  // namespace sluice::storage
