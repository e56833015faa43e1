#include "sql/scan_cache.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "arrow/util/key_value_metadata.h"
#include "common/log.h"
#include "common/server_metrics.h"
#include "fmt/format.h"

namespace sluice::sql {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSourceKey = "sluice.scan_cache.source";
// Segments remembered as read once (then forgotten together: a bound, not a policy).
constexpr size_t kMaxSeen = 100000;

// "<size>:<mtime ns>" of a segment file; empty when it is gone.
std::string SourceIdentity(const fs::path& segment) {
  std::error_code ec;
  auto size = fs::file_size(segment, ec);
  if (ec) return "";
  auto mtime = fs::last_write_time(segment, ec);
  if (ec) return "";
  return fmt::format("{}:{}", size, mtime.time_since_epoch().count());
}

std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

}  // namespace

// ---- ScanCacheWriter ----------------------------------------------------------------

ScanCacheWriter::~ScanCacheWriter() {
  if (done_) return;
  if (writer_) (void)writer_->Close();
  if (out_) (void)out_->Close();
  std::error_code ec;
  fs::remove(tmp_, ec);
  cache_->Abandoned(segment_);
}

arrow::Status ScanCacheWriter::Write(const arrow::RecordBatch& batch) {
  return writer_->WriteRecordBatch(batch);
}

arrow::Status ScanCacheWriter::Commit() {
  ARROW_RETURN_NOT_OK(writer_->Close());
  ARROW_RETURN_NOT_OK(out_->Close());
  std::error_code ec;
  const auto bytes = static_cast<int64_t>(fs::file_size(tmp_, ec));
  if (ec) return arrow::Status::IOError("scan cache: ", ec.message());
  fs::rename(tmp_, path_, ec);
  if (ec) return arrow::Status::IOError("scan cache: ", ec.message());
  done_ = true;
  cache_->Published(segment_, path_, bytes, std::move(source_), std::move(schema_));
  return arrow::Status::OK();
}

// ---- ScanCache ----------------------------------------------------------------------

arrow::Result<std::shared_ptr<ScanCache>> ScanCache::Open(ScanCacheOptions options) {
  std::shared_ptr<ScanCache> cache(new ScanCache(std::move(options)));
  const fs::path& dir = cache->options_.dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return arrow::Status::IOError("scan cache: cannot create ", dir.string(), ": ", ec.message());
  // Entries are not fsync'ed: after a reboot none is trusted.
  const std::string boot = BootId();
  std::string stored;
  {
    std::ifstream in(dir / "BOOT_ID");
    std::getline(in, stored);
  }
  const bool rebooted = stored != boot;
  struct Found {
    fs::file_time_type mtime;
    fs::path path;
    fs::path segment;
    std::string source;
    std::shared_ptr<arrow::Schema> schema;
  };
  std::vector<Found> found;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const fs::path& p = it->path();
    if (p.filename() == "BOOT_ID") continue;
    // <dir>/<dataset>/<table>/<segment>.parquet.arrow -> its segment.
    fs::path segment = cache->options_.data_dir / fs::relative(p, dir, ec);
    segment.replace_extension();
    const std::string source = SourceIdentity(segment);  // empty: the segment is gone
    std::shared_ptr<arrow::Schema> schema;
    if (!rebooted && p.extension() == ".arrow" && !source.empty()) {
      auto file = arrow::io::ReadableFile::Open(p.string());
      if (file.ok()) {
        auto opened = arrow::ipc::RecordBatchFileReader::Open(*file);
        if (opened.ok()) schema = (*opened)->schema();
      }
    }
    // Its source must still be the file it was made from.
    auto md = schema ? schema->metadata() : nullptr;
    if (!md || !md->Contains(kSourceKey) || *md->Get(kSourceKey) != source) {
      fs::remove(p, ec);
      continue;
    }
    found.push_back({fs::last_write_time(p, ec), p, segment, source, schema});
  }
  if (ec) return arrow::Status::IOError("scan cache: cannot list ", dir.string(), ": ", ec.message());
  {
    std::ofstream out(dir / "BOOT_ID", std::ios::trunc);
    out << boot << "\n";
  }
  // Oldest first: least recently used at the back.
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  std::lock_guard<std::mutex> lock(cache->mu_);
  for (auto& f : found) {
    const auto bytes = static_cast<int64_t>(fs::file_size(f.path, ec));
    cache->lru_.push_front(f.path);
    // Entries from before the start are idle (evictable) at once.
    cache->entries_[f.path] = Entry{f.segment, bytes, cache->lru_.begin(),
                                    std::chrono::steady_clock::time_point{},
                                    std::move(f.source), std::move(f.schema)};
    cache->bytes_ += bytes;
  }
  cache->MakeRoom(0);  // (entries from before the start are all idle)
  common::ServerMetrics::Get().scan_cache_bytes().Set(cache->bytes_);
  return cache;
}

fs::path ScanCache::EntryPath(const fs::path& segment) const {
  // <data_dir>/<dataset>/<table>/<file> -> <dir>/<dataset>/<table>/<file>.arrow
  fs::path table = segment.parent_path();
  fs::path dataset = table.parent_path();
  return options_.dir / dataset.filename() / table.filename() /
         (segment.filename().string() + ".arrow");
}

arrow::Result<std::shared_ptr<arrow::ipc::RecordBatchFileReader>> ScanCache::Find(
    const fs::path& segment, const arrow::Schema& wanted) {
  const fs::path path = EntryPath(segment);
  const std::string current = SourceIdentity(segment);
  std::shared_ptr<arrow::Schema> schema;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(path);
    if (it == entries_.end()) return nullptr;
    if (it->second.source != current) {  // another file by now
      Remove(path);
      return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second.lru);  // most recently used
    it->second.used = std::chrono::steady_clock::now();
    schema = it->second.schema;
  }
  auto options = arrow::ipc::IpcReadOptions::Defaults();
  options.use_threads = false;
  int last = -1;
  for (const auto& f : wanted.fields()) {
    int i = schema->GetFieldIndex(f->name());
    // Fields come back in the entry's order: `wanted` must follow it.
    if (i <= last || !schema->field(i)->type()->Equals(*f->type())) return nullptr;
    options.included_fields.push_back(i);
    last = i;
  }
  auto file = arrow::io::ReadableFile::Open(path.string());
  if (!file.ok()) return nullptr;  // evicted meanwhile
  auto opened = arrow::ipc::RecordBatchFileReader::Open(*file, options);
  if (!opened.ok()) return nullptr;
  return *opened;
}

std::unique_ptr<ScanCacheWriter> ScanCache::Begin(const fs::path& segment,
                                                  std::shared_ptr<arrow::Schema> schema) {
  if (options_.max_bytes <= 0) return nullptr;
  const std::string source = SourceIdentity(segment);
  if (source.empty()) return nullptr;
  std::error_code ec;
  // About what the entry will take: Parquet of hashes and addresses barely
  // compresses, so the Arrow form is a small multiple of it.
  const auto estimate = static_cast<int64_t>(fs::file_size(segment, ec)) * 3;
  const fs::path path = EntryPath(segment);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.count(path) || writing_.count(segment)) return nullptr;
    // Admitted on the second full read: a segment read once may never be again.
    if (seen_.insert(segment).second) {
      if (seen_.size() > kMaxSeen) seen_ = {segment};
      return nullptr;
    }
    if (estimate > options_.max_bytes) return nullptr;
    struct statvfs st {};
    fs::create_directories(path.parent_path(), ec);
    if (ec || statvfs(path.parent_path().c_str(), &st) != 0) return nullptr;
    const auto free_bytes = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
    if (free_bytes - estimate < options_.min_free_bytes) return nullptr;
    if (!MakeRoom(estimate)) return nullptr;
    writing_.insert(segment);
  }
  std::unique_ptr<ScanCacheWriter> w(new ScanCacheWriter());
  w->cache_ = shared_from_this();
  w->segment_ = segment;
  w->path_ = path;
  w->tmp_ = fs::path(path.string() + ".tmp");
  auto out = arrow::io::FileOutputStream::Open(w->tmp_.string());
  if (!out.ok()) return nullptr;  // ~ScanCacheWriter forgets the segment
  w->out_ = *out;
  w->source_ = source;
  w->schema_ = schema->WithMetadata(arrow::key_value_metadata({kSourceKey}, {source}));
  auto writer = arrow::ipc::MakeFileWriter(w->out_, w->schema_);
  if (!writer.ok()) return nullptr;
  w->writer_ = *writer;
  return w;
}

void ScanCache::Published(const fs::path& segment, const fs::path& path, int64_t bytes,
                          std::string source, std::shared_ptr<arrow::Schema> schema) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_.erase(segment);
  if (entries_.count(path)) Remove(path);
  if (!MakeRoom(bytes)) {  // larger than estimated, and no room: not kept
    std::error_code ec;
    fs::remove(path, ec);
    return;
  }
  lru_.push_front(path);
  entries_[path] = Entry{segment, bytes, lru_.begin(), std::chrono::steady_clock::now(),
                         std::move(source), std::move(schema)};
  bytes_ += bytes;
  common::ServerMetrics::Get().scan_cache_bytes().Set(bytes_);
}

void ScanCache::Abandoned(const fs::path& segment) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_.erase(segment);
  seen_.insert(segment);  // a scan that stopped still counts as a read
}

bool ScanCache::MakeRoom(int64_t incoming) {
  if (bytes_ + incoming <= options_.max_bytes) return true;
  // Entries of segments that are gone (compacted, reorged out) are useless.
  std::vector<fs::path> gone;
  for (const auto& [path, e] : entries_) {
    std::error_code ec;
    if (!fs::exists(e.segment, ec)) gone.push_back(path);
  }
  for (const auto& p : gone) Remove(p);
  const auto idle_since = std::chrono::steady_clock::now() - options_.min_residency;
  while (!lru_.empty() && bytes_ + incoming > options_.max_bytes &&
         entries_.at(lru_.back()).used <= idle_since) {
    Remove(lru_.back());
  }
  return bytes_ + incoming <= options_.max_bytes;
}

void ScanCache::Remove(const fs::path& path) {
  auto it = entries_.find(path);
  if (it == entries_.end()) return;
  std::error_code ec;
  fs::remove(path, ec);  // a scan reading it keeps its open file
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
  common::ServerMetrics::Get().scan_cache_bytes().Set(bytes_);
}

int64_t ScanCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t ScanCache::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace sluice::sql
