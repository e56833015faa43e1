// The streaming queries open now, as the admin API's GET /streams lists them.
//
// A stream registers when it starts and holds the returned ActiveStream for its
// life (RAII): destroying it removes the entry and decrements the
// sluice_active_streams gauge. The stream's thread updates its entry; the admin
// API's threads read a copy (List).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/metrics.h"

namespace sluice::common {

/// \brief What GET /streams shows of one stream.
struct StreamInfo {
  uint64_t id = 0;                                 ///< unique in the process, from 1
  std::string query;                               ///< SQL, SETTINGS clause removed
  std::string dataset;                             ///< the dataset it streams over
  std::chrono::system_clock::time_point started;  ///< when the stream started
  /// The last block completely sent (the resume cursor), if any yet.
  std::optional<uint64_t> cursor_block;
  std::string cursor_hash;  ///< 0x-hex hash of cursor_block, when set
  /// The microbatch being sent [start, end], if one is.
  std::optional<std::pair<uint64_t, uint64_t>> microbatch;
  uint64_t rows_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t microbatches = 0;  ///< microbatches completely sent
};

class StreamRegistry;

/// \brief One registered stream. Updated by its stream only; not copyable.
class ActiveStream {
 public:
  ~ActiveStream();
  ActiveStream(const ActiveStream&) = delete;
  ActiveStream& operator=(const ActiveStream&) = delete;

  void AddSent(int64_t rows, int64_t bytes);
  /// \brief A microbatch over blocks [start, end] starts.
  void StartMicrobatch(uint64_t start, uint64_t end);
  /// \brief The microbatch ended: every block through `block` (hash `hash`) is sent.
  void FinishMicrobatch(uint64_t block, std::string hash);

 private:
  friend class StreamRegistry;
  ActiveStream(StreamRegistry* registry, StreamInfo info)
      : registry_(registry), info_(std::move(info)) {}
  StreamInfo Snapshot() const;

  StreamRegistry* registry_;
  mutable std::mutex mu_;
  StreamInfo info_;
};

/// \brief The registry of open streams. Thread-safe.
class StreamRegistry {
 public:
  /// \brief `active`: a gauge kept equal to the number of registered streams (may be null).
  explicit StreamRegistry(Gauge* active = nullptr) : active_(active) {}

  /// \brief The process's registry (keeps sluice_active_streams).
  static StreamRegistry& Default();

  /// \brief Register a stream; it stays listed while the result lives.
  std::unique_ptr<ActiveStream> Register(std::string query, std::string dataset);

  /// \brief The open streams, oldest first.
  std::vector<StreamInfo> List() const;

 private:
  friend class ActiveStream;
  void Remove(ActiveStream* stream);

  Gauge* active_;
  mutable std::mutex mu_;
  std::set<ActiveStream*> streams_;
  uint64_t next_id_ = 1;
};

}  // namespace sluice::common
