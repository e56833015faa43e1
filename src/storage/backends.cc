#include "storage/backends.h"

#include <map>
#include <mutex>

#include "common/log.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

// One cache per directory and process, shared by the datasets of a server.
Result<std::shared_ptr<SegmentCache>> SharedCache(const fs::path& dir, int64_t max_bytes) {
  static std::mutex mu;
  static std::map<fs::path, std::weak_ptr<SegmentCache>> caches;
  std::lock_guard<std::mutex> lock(mu);
  if (auto cache = caches[dir].lock()) return cache;
  SegmentCacheOptions options;
  options.dir = dir;
  options.max_bytes = max_bytes;
  ARROW_ASSIGN_OR_RAISE(auto cache, SegmentCache::Open(std::move(options)));
  caches[dir] = cache;
  return cache;
}

}  // namespace

Result<Backends> MakeBackends(const BackendOptions& options, StoreRole role, StoreOptions* store) {
  Backends out;
  const bool postgres = !options.postgres_url.empty();
  if (role != StoreRole::kSingle && !postgres) {
    return Status::Invalid(role == StoreRole::kWriter ? "sluice extract" : "a query server",
                           " needs postgres_url: the metadata the roles share");
  }
  if (postgres) {
    PgMetadataOptions pg;
    pg.url = options.postgres_url;
    pg.dataset = store->dataset;
    pg.network = store->network;
    pg.connect_timeout = options.connect_timeout;
    pg.replaced_log_blocks = store->replaced_log_blocks;
    pg.testing_commit_pause = options.testing_commit_pause;
    ARROW_ASSIGN_OR_RAISE(out.postgres,
                          PgMetadata::Connect(std::move(pg), role != StoreRole::kReader));
    out.metadata = out.postgres;
  }
  const fs::path dir = store->data_dir / store->dataset;
  if (!options.object_store_url.empty()) {
    if (options.segment_cache_max_mb <= 0) {
      return Status::Invalid("segment_cache_max_mb must be > 0 with an object store");
    }
    ARROW_ASSIGN_OR_RAISE(out.cache, SharedCache(fs::absolute(store->data_dir) / ".segment_cache",
                                                 options.segment_cache_max_mb << 20));
    ObjectStoreOptions s3;
    s3.url = options.object_store_url;
    s3.access_key = options.object_store_access_key;
    s3.secret_key = options.object_store_secret_key;
    s3.dataset = store->dataset;
    s3.cache = out.cache;
    ARROW_ASSIGN_OR_RAISE(out.segments, MakeObjectSegmentStore(std::move(s3)));
  } else {
    LocalSegmentStoreOptions local;
    local.root = dir;
    local.fsync = store->fsync;
    local.sync_dirs_on_put = postgres;
    local.delete_on_release = !postgres;
    ARROW_ASSIGN_OR_RAISE(out.segments, MakeLocalSegmentStore(std::move(local)));
  }
  if (!out.metadata) {
    ManifestOptions manifest;
    manifest.dir = dir;
    manifest.dataset = store->dataset;
    manifest.network = store->network;
    for (const auto& t : store->tables) manifest.table_dirs.push_back(t.name);
    manifest.fsync = store->fsync;
    manifest.replaced_log_blocks = store->replaced_log_blocks;
    ARROW_ASSIGN_OR_RAISE(out.metadata, MakeManifestMetadata(std::move(manifest)));
  }
  store->metadata = out.metadata;
  store->segments = out.segments;
  store->read_only = role == StoreRole::kReader;
  store->gc_grace = options.gc_grace;
  store->gc_interval = options.gc_interval;
  LOG_INFO("dataset {}: metadata in {}, segments in {}", store->dataset, out.metadata->Describe(),
           out.segments->Describe());
  return out;
}

}  // namespace sluice::storage
