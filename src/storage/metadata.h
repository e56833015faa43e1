// Where a dataset's published state lives: the segment list per table, the block
// headers, the chain identity and the log of replaced (reorged-out) blocks.
//
// Two backends:
// - the manifest (storage/manifest_metadata.cc): `manifest.json` and
//   `replaced.json` beside the segments, replaced atomically (the single process);
// - PostgreSQL (storage/pg_metadata.h): shared by extract workers and query
//   servers, one transaction per commit, LISTEN/NOTIFY announcing new versions.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "storage/snapshot.h"

namespace sluice::storage {

/// \brief A published file of a segment.
struct FileRecord {
  std::string object;  ///< `<table>/<file>`, see SegmentStore
  int64_t rows = 0;
  int64_t bytes = 0;
};

/// \brief A published segment.
struct SegmentRecord {
  BlockRange range;
  uint64_t seq = 0;
  std::map<std::string, FileRecord> files;  ///< by table
};

/// \brief A published state, whole (Load) or the part of it a reader lacks (Changes).
struct MetadataState {
  uint64_t version = 0;
  uint64_t next_seq = 1;
  std::optional<ChainIdentity> identity;
  std::vector<SegmentRecord> segments;  ///< the whole list, ordered by range
  /// Load: every header, or nullopt when the backend keeps none (the manifest:
  /// they are read from the blocks table's files). Changes: the headers above
  /// `headers_after`.
  std::optional<std::vector<BlockHeader>> headers;
  /// Changes only: the reader keeps its headers up to this block and drops the
  /// rest before appending `headers` (nullopt: drop none).
  std::optional<uint64_t> headers_after;
  /// Replaced blocks, oldest first (Changes: only those the reader has not seen).
  std::vector<BlockHeader> replaced;
  uint64_t replaced_seen = 0;  ///< a cursor into the replaced log, for Changes
  /// Changes only: the reader must drop what it holds and take this state as
  /// whole (its version is older than the backend's log of commits reaches).
  bool full = false;
};

/// \brief One commit: what BlockStore publishes, as a change of the last state.
struct CommitRecord {
  uint64_t base_version = 0;  ///< the version it changes (checked by shared backends)
  uint64_t version = 0;       ///< the new version (base_version + 1)
  uint64_t next_seq = 1;
  std::vector<SegmentRecord> segments;  ///< the whole new list
  std::vector<SegmentRecord> added;     ///< of those, the new ones
  std::vector<uint64_t> removed;        ///< seqs no longer listed
  /// Headers above this block are removed (a reorg) before `appended` is added.
  std::optional<uint64_t> truncate_after;
  std::vector<BlockHeader> appended;
  std::vector<BlockHeader> replaced;  ///< headers of the removed blocks
  std::vector<std::string> retired;   ///< objects no longer listed (for GC)
};

/// \brief A metadata backend. Thread-safe; one writer.
class MetadataStore {
 public:
  virtual ~MetadataStore() = default;
  /// \brief The whole published state (version 0 and nothing when new).
  virtual arrow::Result<MetadataState> Load() = 0;
  /// \brief Publish a commit atomically. Durable when it returns OK; nothing of
  /// it is visible otherwise. Shared backends refuse (Invalid "… moved on …")
  /// when the stored version is not `base_version` (another writer published).
  virtual arrow::Status Commit(const CommitRecord& commit) = 0;
  /// \brief Record the chain identity (with no new version).
  virtual arrow::Status SetIdentity(const ChainIdentity& identity) = 0;
  /// \brief For readers of a shared backend: what changed since `version`, whose
  /// newest header is `head` and which saw the replaced log up to `replaced_seen`;
  /// nullopt when nothing did. Load-only backends answer nullopt.
  virtual arrow::Result<std::optional<MetadataState>> Changes(uint64_t version,
                                                              std::optional<uint64_t> head,
                                                              uint64_t replaced_seen) {
    return std::nullopt;
  }
  /// \brief Objects retired at least `grace` ago, for garbage collection, and
  /// every object still listed or retired more recently (never to be deleted).
  /// Only shared backends answer (a single process deletes on release).
  struct Retired {
    std::vector<std::string> expired;
    std::vector<std::string> keep;
  };
  virtual arrow::Result<Retired> RetiredObjects(std::chrono::seconds grace) {
    return Retired{};
  }
  /// \brief Forget retired objects that were deleted.
  virtual arrow::Status ForgetRetired(const std::vector<std::string>& objects) {
    return arrow::Status::OK();
  }
  /// \brief Shared backends: run `on_change` (on a thread of the backend's) after
  /// each newly published version and whenever the connection comes back (an
  /// error there counts as a lost connection), and
  /// `on_state` with OK or Unavailable as the connection is regained or lost.
  /// Load-only backends never call them.
  virtual arrow::Status Watch(std::function<arrow::Status()> on_change,
                              std::function<void(const arrow::Status&)> on_state) {
    return arrow::Status::OK();
  }
  /// \brief Stop the calls of Watch; returns once none runs.
  virtual void StopWatching() {}
  /// \brief True when several processes share it (PostgreSQL).
  virtual bool shared() const = 0;
  /// \brief Check that the stored tables have these schemas, recording them when
  /// the dataset is new. Invalid naming the table when one differs.
  virtual arrow::Status CheckTables(const std::vector<TableDef>& tables) = 0;
  /// \brief For logs.
  virtual std::string Describe() const = 0;
};

/// \brief Options of the manifest backend.
struct ManifestOptions {
  std::filesystem::path dir;  ///< `<data_dir>/<dataset>`
  std::string dataset;
  std::string network;
  std::vector<std::string> table_dirs;  ///< fsync'ed with the manifest (new files' entries)
  bool fsync = true;
  size_t replaced_log_blocks = 4096;
};

/// \brief manifest.json + replaced.json in the dataset's directory.
arrow::Result<std::shared_ptr<MetadataStore>> MakeManifestMetadata(ManifestOptions options);

}  // namespace sluice::storage
