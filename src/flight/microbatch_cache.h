// Sharing of microbatch results between streams.
//
// Streams that run the same query follow the chain head together: when a block
// arrives, each would compute the same microbatch. The first stream to ask
// computes it (the owner) and publishes its messages; the others wait and send
// the same messages, whose buffers are shared, not copied. A microbatch larger
// than `max_bytes` is not shared: its waiters compute it themselves.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arrow/flight/server.h"

namespace sluice::flight {

/// \brief Bytes of a message on the wire, about: IPC body and metadata plus app_metadata.
int64_t PayloadBytes(const arrow::flight::FlightPayload& payload);

/// \brief One microbatch's messages, being computed or done.
class SharedMicrobatch {
 public:
  /// \brief Owner: add a message holding `rows` rows; false once the result is
  /// too large to share (the entry is then abandoned and waiters compute on
  /// their own).
  bool Add(const arrow::flight::FlightPayload& payload, int64_t rows = 0);
  /// \brief Owner: every message is in.
  void Finish();
  /// \brief Owner: give up (error, too large, cancelled); waiters compute.
  void Abandon();
  /// \brief Waiter: block until the owner finishes or abandons. Returns the
  /// messages, or nullptr when abandoned (or after `timeout`).
  const std::vector<arrow::flight::FlightPayload>* Wait(std::chrono::milliseconds timeout);
  /// \brief The rows of each message Wait returned, in the same order (valid
  /// once Wait returned the messages).
  const std::vector<int64_t>& rows() const { return rows_; }

 private:
  friend class MicrobatchCache;
  enum class State { kPending, kDone, kAbandoned };
  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kPending;
  std::vector<arrow::flight::FlightPayload> payloads_;
  std::vector<int64_t> rows_;  // per payload
  int64_t bytes_ = 0;
  int64_t max_bytes_ = 0;
  std::chrono::steady_clock::time_point created_;
};

/// \brief The microbatches recently computed, by key. Thread-safe.
class MicrobatchCache {
 public:
  explicit MicrobatchCache(int64_t max_bytes = 8 << 20, size_t max_entries = 256,
                           std::chrono::seconds ttl = std::chrono::seconds(30))
      : max_bytes_(max_bytes), max_entries_(max_entries), ttl_(ttl) {}

  /// \brief The entry of `key`; `*owner` is true when the caller created it and
  /// must compute it (then Finish or Abandon).
  std::shared_ptr<SharedMicrobatch> Acquire(const std::string& key, bool* owner);

 private:
  int64_t max_bytes_;
  size_t max_entries_;
  std::chrono::seconds ttl_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<SharedMicrobatch>> entries_;
  std::deque<std::string> order_;
};

}  // namespace sluice::flight
