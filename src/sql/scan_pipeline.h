// The threads of a direct scan (sql/scan.h): a producer that decodes the next
// batches while the last one is sent, and a writer of scan cache entries that
// runs on idle CPU off the answer's path (bench/FIXES.md, issue 16).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "arrow/record_batch.h"
#include "arrow/status.h"

namespace sluice::sql {

class ScanCacheWriter;  // sql/scan_cache.h

/// \brief Writes a segment's scan cache entry on a thread of its own, off the
/// answer's path: the scan hands each batch over and goes on. A writer that falls
/// kMaxQueuedBytes behind (a slow disk, or no idle CPU while the scan runs) gives
/// the entry up rather than hold the scan or more memory; so does one whose write
/// fails (a cache only costs speed). The thread runs at idle priority (SCHED_IDLE).
class BackgroundCacheWriter {
 public:
  static constexpr int64_t kMaxQueuedBytes = int64_t{64} << 20;

  explicit BackgroundCacheWriter(std::unique_ptr<ScanCacheWriter> writer);
  /// Waits for the thread: an entry not committed is deleted.
  ~BackgroundCacheWriter();

  /// Queue a batch of the entry (dropped once the writer has given up).
  void Write(std::shared_ptr<arrow::RecordBatch> batch);
  /// Back to normal priority: whoever waits for this writer (the end of the scan)
  /// waits for its few queued batches, not for the machine to be idle.
  void Hurry();
  /// The segment is complete: publish the entry once everything queued is written.
  void Commit();

 private:
  void Run();

  std::unique_ptr<ScanCacheWriter> writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<arrow::RecordBatch>, int64_t>> queue_;
  int64_t queued_bytes_ = 0;
  bool stop_ = false;
  bool commit_ = false;
  bool failed_ = false;
  std::thread thread_;  // last: starts once the rest is initialized
};

/// \brief Runs a producer of batches on a thread of its own, at most kDepth
/// batches ahead of the consumer: a scan decodes the next batch while the last one
/// is sent. The producer returns a null batch at the end, or an error; it runs on
/// the thread only, so it needs no lock for its own state.
class ReadAhead {
 public:
  static constexpr size_t kDepth = 2;
  using Producer = std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>*)>;

  explicit ReadAhead(Producer produce);
  /// Stops the producer after the batch it is making, and waits for it.
  ~ReadAhead();

  /// The next batch (null at the end), or the producer's error.
  arrow::Status Pop(std::shared_ptr<arrow::RecordBatch>* out);

 private:
  void Run();

  Producer produce_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<arrow::RecordBatch>> queue_;
  arrow::Status status_;
  bool finished_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is initialized
};

}  // namespace sluice::sql
