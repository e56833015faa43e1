// Where segment files live: a local directory (the single process, or several
// processes sharing one filesystem) or an S3-compatible object store reached
// through Arrow's S3 filesystem, read through a bounded local cache.
//
// Objects are named relative to the store's root, `<table>/<file>`, and are
// immutable: written once (Put), read any number of times, deleted by garbage
// collection once no published version names them.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"

namespace arrow::fs {
class FileSystem;
}

namespace sluice::storage {

class SegmentCache;

/// \brief An object of a segment store, as listed.
struct ObjectInfo {
  std::string object;  ///< `<table>/<file>`
  int64_t bytes = 0;
  /// When written (local: modification time; S3: LastModified).
  std::chrono::system_clock::time_point written;
};

/// \brief The segment store interface (thread-safe).
class SegmentStore {
 public:
  virtual ~SegmentStore() = default;

  /// \brief Where a new object's file is written before Put: the final file of a
  /// local store; a file in the local cache for an object store.
  virtual std::filesystem::path StagingPath(const std::string& object) const = 0;
  /// \brief Whether StagingPath files must be fsync'ed (a local store's are the
  /// data; an object store's are only a cached copy).
  virtual bool sync_staged() const = 0;

  /// \brief Publish written objects so that every process can Fetch them: a local
  /// store makes their directory entries durable (unless the manifest does it,
  /// see LocalSegmentStore); an object store uploads them, side by side. OK means
  /// durable. IOError names the object that failed.
  virtual arrow::Status Put(const std::vector<std::string>& objects) = 0;

  /// \brief Where an object is read (see SegmentFile::path).
  virtual std::filesystem::path LocalPath(const std::string& object) const = 0;

  /// \brief Make objects readable at LocalPath until the returned pin is
  /// released. Null pin for a local store (always readable).
  virtual arrow::Result<std::shared_ptr<void>> Fetch(const std::vector<std::string>& objects) = 0;

  /// \brief A retired SegmentFile's last reference went away (see SegmentFile).
  virtual void Released(const std::string& object) = 0;

  /// \brief Delete objects from the store (and any local copy). Missing ones are
  /// not an error.
  virtual arrow::Status Delete(const std::vector<std::string>& objects) = 0;

  /// \brief Every object under the root (segment files only; not `empty.parquet`
  /// nor temporary files).
  virtual arrow::Result<std::vector<ObjectInfo>> List() = 0;

  /// \brief True for an object store (reads go through the local cache).
  virtual bool remote() const = 0;
  /// \brief For logs: the directory or `s3://bucket/prefix`.
  virtual std::string Describe() const = 0;
};

/// \brief Options of a local directory store.
struct LocalSegmentStoreOptions {
  std::filesystem::path root;  ///< `<data_dir>/<dataset>`
  bool fsync = true;
  /// Put fsyncs the table directories. Off when the manifest does it side by
  /// side with its own fsync (storage/manifest_metadata.h): the single process.
  bool sync_dirs_on_put = false;
  /// Delete a retired file when its last reader is gone (the single process).
  /// Off when several processes read the directory: garbage collection after
  /// the grace period deletes it (storage/gc.cc).
  bool delete_on_release = true;
};

/// \brief Segment files in a local directory: `<root>/<table>/<file>`.
arrow::Result<std::shared_ptr<SegmentStore>> MakeLocalSegmentStore(LocalSegmentStoreOptions options);

/// \brief Options of an object store.
struct ObjectStoreOptions {
  /// `s3://bucket/prefix?endpoint_override=host:port&scheme=http&region=…`, the
  /// form of Arrow's S3Options::FromUri; credentials from the URL's user info,
  /// from access_key/secret_key, or else the AWS environment (AWS_ACCESS_KEY_ID …).
  std::string url;
  std::string access_key;
  std::string secret_key;
  std::string dataset;  ///< objects live under `<prefix>/<dataset>/`
  /// Seconds to connect and for one request, and total attempts per request.
  double connect_timeout_secs = 3;
  double request_timeout_secs = 10;
  int max_attempts = 3;
  /// The local cache of downloaded (and written) segments.
  std::shared_ptr<SegmentCache> cache;
};

/// \brief Segment files in an S3-compatible object store (Arrow's S3FileSystem).
/// Invalid for a malformed URL; IOError when the bucket cannot be reached.
arrow::Result<std::shared_ptr<SegmentStore>> MakeObjectSegmentStore(ObjectStoreOptions options);

/// \brief Start Arrow's S3 support once per process (idempotent).
arrow::Status EnsureS3Initialized();

/// \brief Finalize Arrow's S3 support if it was started: call once at the end of
/// main, after every object store is gone (Arrow requires it before exit).
void ShutdownS3();

}  // namespace sluice::storage
