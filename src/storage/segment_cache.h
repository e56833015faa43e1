// The local disk cache of an object store's segments (query servers and extract
// workers with segments in S3): whole files under one directory, bounded in bytes,
// least recently used evicted first. A segment is immutable, so a cached copy never
// goes stale; it leaves the cache by eviction or when garbage collection retires
// it (Remove).
//
// Reads pin files: a pinned file is never evicted, so the cache may exceed its
// bound while queries pin more than it holds, and shrinks back as they finish.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"

namespace sluice::storage {

/// \brief Options of a segment cache.
struct SegmentCacheOptions {
  std::filesystem::path dir;  ///< e.g. `<data_dir>/.segment_cache`; created if missing
  int64_t max_bytes = int64_t{8} << 30;
  /// Downloads run side by side, at most this many at once per Pin call.
  int parallel_fetches = 8;
};

/// \brief Counters of a cache, for metrics and benchmarks.
struct SegmentCacheStats {
  int64_t bytes = 0;       ///< on disk now
  int64_t files = 0;
  uint64_t hits = 0;       ///< pins of files already present
  uint64_t misses = 0;     ///< files fetched
  uint64_t evictions = 0;
};

/// \brief A byte-bounded LRU cache of immutable files. Thread-safe.
class SegmentCache : public std::enable_shared_from_this<SegmentCache> {
 public:
  /// Fills `tmp` with the contents of `key` (a download); IOError on failure.
  using Fill = std::function<arrow::Status(const std::string& key, const std::filesystem::path& tmp)>;

  /// \brief Open the cache: files left from an earlier run are kept (immutable,
  /// so still valid), partial downloads deleted, and the bound applied.
  static arrow::Result<std::shared_ptr<SegmentCache>> Open(SegmentCacheOptions options);

  /// \brief The file of `key` (a relative path such as `eth_rpc/blocks/…parquet`).
  std::filesystem::path PathOf(const std::string& key) const { return options_.dir / key; }

  /// \brief Pin every key, filling the missing ones (each once, however many
  /// callers want it at the same time; up to parallel_fetches side by side). The
  /// files stay at PathOf until the returned pin is released. IOError from a fill.
  arrow::Result<std::shared_ptr<void>> Pin(const std::vector<std::string>& keys, const Fill& fill);

  /// \brief Account a file the caller wrote at PathOf(key) itself (a writer's own
  /// segment), as the most recently used.
  void Admit(const std::string& key);

  /// \brief Delete the cached copy of `key` (at once, or when its last pin goes).
  void Remove(const std::string& key);

  SegmentCacheStats stats() const;
  const SegmentCacheOptions& options() const { return options_; }

 private:
  explicit SegmentCache(SegmentCacheOptions options) : options_(std::move(options)) {}
  struct Entry {
    int64_t bytes = 0;
    int pins = 0;
    bool loading = false;
    bool doomed = false;  // removed while pinned: delete at the last unpin
    std::list<std::string>::iterator lru;  // valid when !loading
  };
  void Unpin(const std::vector<std::string>& keys);
  void EvictLocked();  // caller holds mu_
  void Touch(const std::string& key, Entry& e);  // caller holds mu_

  SegmentCacheOptions options_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // front: least recently used
  int64_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace sluice::storage
