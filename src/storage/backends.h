// Building a dataset store's backends from the deployment's settings
// (docs/deploy.md): the single process (manifest + local directory), or the
// distributed roles over PostgreSQL metadata and local or S3 segments.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "arrow/result.h"
#include "storage/block_store.h"
#include "storage/pg_metadata.h"
#include "storage/segment_cache.h"

namespace sluice::storage {

/// \brief Who opens the store.
enum class StoreRole {
  kSingle,  ///< `sluice serve`: extracts and serves; PostgreSQL optional
  kWriter,  ///< `sluice extract`: writes under the dataset's lease
  kReader,  ///< `sluice serve --no-extract` over PostgreSQL: reads, follows notifications
};

/// \brief The storage settings (see SLUICE_SETTINGS in common/config.h).
struct BackendOptions {
  /// PostgreSQL URL of the metadata; empty: manifest.json in data_dir.
  std::string postgres_url;
  /// `s3://bucket/prefix?endpoint_override=…&scheme=http`; empty: segments in data_dir.
  std::string object_store_url;
  std::string object_store_access_key;
  std::string object_store_secret_key;
  /// The local segment cache of an object store, in data_dir/.segment_cache.
  int64_t segment_cache_max_mb = 8192;
  /// Garbage collection of retired objects (shared metadata only).
  std::chrono::seconds gc_grace{600};
  std::chrono::seconds gc_interval{30};
  std::chrono::seconds connect_timeout{5};
  /// FOR TESTS ONLY, see PgMetadataOptions::testing_commit_pause.
  std::chrono::milliseconds testing_commit_pause{0};
};

/// \brief A store's backends, ready for BlockStore::Open.
struct Backends {
  std::shared_ptr<MetadataStore> metadata;
  std::shared_ptr<SegmentStore> segments;
  /// The PostgreSQL backend when there is one (writers take the lease through it).
  std::shared_ptr<PgMetadata> postgres;
  /// The object store's cache when there is one.
  std::shared_ptr<SegmentCache> cache;
};

/// \brief Connect the backends of `store` (its data_dir, dataset, network) for
/// `role` and put them into `store`. Invalid for a role the settings do not allow
/// (a writer or reader without postgres_url); IOError when a service is unreachable.
arrow::Result<Backends> MakeBackends(const BackendOptions& options, StoreRole role,
                                     StoreOptions* store);

}  // namespace sluice::storage
