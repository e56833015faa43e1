#include "storage/segment_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "common/log.h"
#include "storage/io_util.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

// Partial downloads are written to `<file>.part-<pid>-<n>` and renamed when whole.
constexpr const char* kPartMarker = ".part-";

fs::path PartPath(const fs::path& final_path) {
  static std::atomic<uint64_t> counter{0};
  return final_path.string() + kPartMarker + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

struct PinSet {
  std::shared_ptr<SegmentCache> cache;
  std::vector<std::string> keys;
  std::function<void(const std::vector<std::string>&)> unpin;
  ~PinSet() { unpin(keys); }
};

}  // namespace

Result<std::shared_ptr<SegmentCache>> SegmentCache::Open(SegmentCacheOptions options) {
  if (options.max_bytes <= 0) return Status::Invalid("segment cache: max_bytes must be > 0");
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Status::IOError("cannot create ", options.dir.string(), ": ", ec.message());
  std::shared_ptr<SegmentCache> cache(new SegmentCache(std::move(options)));
  // What an earlier run left: whole files stay (oldest first in the LRU order),
  // partial downloads go.
  std::vector<std::pair<fs::file_time_type, std::string>> found;
  for (auto it = fs::recursive_directory_iterator(cache->options_.dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const auto& p = it->path();
    if (p.filename().string().find(kPartMarker) != std::string::npos) {
      fs::remove(p, ec);
      ec.clear();
      continue;
    }
    found.emplace_back(fs::last_write_time(p, ec), fs::relative(p, cache->options_.dir).string());
  }
  std::sort(found.begin(), found.end());
  std::lock_guard<std::mutex> lock(cache->mu_);
  for (const auto& [time, key] : found) {
    Entry e;
    e.bytes = static_cast<int64_t>(fs::file_size(cache->PathOf(key), ec));
    if (ec) continue;
    e.lru = cache->lru_.insert(cache->lru_.end(), key);
    cache->bytes_ += e.bytes;
    cache->entries_.emplace(key, e);
  }
  cache->EvictLocked();
  return cache;
}

void SegmentCache::Touch(const std::string& key, Entry& e) {
  lru_.splice(lru_.end(), lru_, e.lru);
}

void SegmentCache::EvictLocked() {
  for (auto it = lru_.begin(); bytes_ > options_.max_bytes && it != lru_.end();) {
    auto entry = entries_.find(*it);
    if (entry == entries_.end() || entry->second.pins > 0) {
      ++it;
      continue;
    }
    std::error_code ec;
    fs::remove(PathOf(*it), ec);
    bytes_ -= entry->second.bytes;
    ++evictions_;
    entries_.erase(entry);
    it = lru_.erase(it);
  }
}

Result<std::shared_ptr<void>> SegmentCache::Pin(const std::vector<std::string>& keys,
                                                const Fill& fill) {
  std::vector<std::string> pinned;   // pinned so far (released on error)
  std::vector<std::string> to_fill;  // marked loading by this call
  std::vector<std::string> to_wait;  // being loaded by another call
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& key : keys) {
      auto it = entries_.find(key);
      if (it == entries_.end()) {
        Entry e;
        e.loading = true;
        entries_.emplace(key, e);
        to_fill.push_back(key);
        ++misses_;
      } else if (it->second.loading) {
        to_wait.push_back(key);
      } else {
        ++it->second.pins;
        it->second.doomed = false;
        Touch(key, it->second);
        pinned.push_back(key);
        ++hits_;
      }
    }
  }
  auto make_pin = [this](std::vector<std::string> keys) -> std::shared_ptr<void> {
    auto self = shared_from_this();
    auto pin = std::make_shared<PinSet>();
    pin->cache = self;
    pin->keys = std::move(keys);
    pin->unpin = [self](const std::vector<std::string>& k) { self->Unpin(k); };
    return pin;
  };
  // Download what is missing, side by side, each to a part file renamed when whole.
  std::vector<int64_t> sizes(to_fill.size(), 0);
  std::vector<Status> results(to_fill.size());
  ARROW_UNUSED(ParallelForLimited(to_fill.size(), static_cast<size_t>(options_.parallel_fetches),
                                  [&](size_t i) -> Status {
    const fs::path dst = PathOf(to_fill[i]);
    const fs::path part = PartPath(dst);
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    Status st = fill(to_fill[i], part);
    if (st.ok()) {
      sizes[i] = static_cast<int64_t>(fs::file_size(part, ec));
      if (!ec) fs::rename(part, dst, ec);
      if (ec) st = Status::IOError("segment cache: ", dst.string(), ": ", ec.message());
    }
    if (!st.ok()) fs::remove(part, ec);
    results[i] = st;
    return Status::OK();
  }));
  Status first_error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < to_fill.size(); ++i) {
      auto it = entries_.find(to_fill[i]);
      if (!results[i].ok()) {
        if (first_error.ok()) first_error = results[i];
        entries_.erase(it);
        continue;
      }
      it->second.loading = false;
      it->second.bytes = sizes[i];
      it->second.pins = 1;
      it->second.lru = lru_.insert(lru_.end(), to_fill[i]);
      bytes_ += sizes[i];
      pinned.push_back(to_fill[i]);
    }
  }
  loaded_.notify_all();
  // Wait for the files other calls are loading; fill those that failed there.
  if (first_error.ok()) {
    std::unique_lock<std::mutex> lock(mu_);
    for (const auto& key : to_wait) {
      loaded_.wait(lock, [&] {
        auto it = entries_.find(key);
        return it == entries_.end() || !it->second.loading;
      });
      auto it = entries_.find(key);
      if (it == entries_.end()) {
        first_error = Status::IOError("segment cache: fetching ", key, " failed in another query");
        break;
      }
      ++it->second.pins;
      it->second.doomed = false;
      Touch(key, it->second);
      pinned.push_back(key);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    EvictLocked();
  }
  auto pin = make_pin(std::move(pinned));  // releases what was pinned on error too
  if (!first_error.ok()) return first_error;
  return pin;
}

void SegmentCache::Unpin(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& key : keys) {
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    if (--it->second.pins == 0 && it->second.doomed) {
      std::error_code ec;
      fs::remove(PathOf(key), ec);
      bytes_ -= it->second.bytes;
      lru_.erase(it->second.lru);
      entries_.erase(it);
    }
  }
  EvictLocked();
}

void SegmentCache::Admit(const std::string& key) {
  std::error_code ec;
  auto size = static_cast<int64_t>(fs::file_size(PathOf(key), ec));
  if (ec) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (it->second.loading) return;  // a download of the same (immutable) file
    bytes_ += size - it->second.bytes;
    it->second.bytes = size;
    Touch(key, it->second);
  } else {
    Entry e;
    e.bytes = size;
    e.lru = lru_.insert(lru_.end(), key);
    entries_.emplace(key, e);
    bytes_ += size;
  }
  EvictLocked();
}

void SegmentCache::Remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.loading) return;
  if (it->second.pins > 0) {
    it->second.doomed = true;
    return;
  }
  std::error_code ec;
  fs::remove(PathOf(key), ec);
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

SegmentCacheStats SegmentCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SegmentCacheStats s;
  s.bytes = bytes_;
  s.files = static_cast<int64_t>(lru_.size());
  s.hits = hits_;
  s.misses = misses_;
  s.evictions = evictions_;
  return s;
}

}  // namespace sluice::storage
