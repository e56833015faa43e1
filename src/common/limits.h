// Limits on the queries a server runs at once and on how long a batch query
// may take (docs/security.md), shared by Arrow Flight and JSON Lines.
//
// - Admission: a batch query (Flight DoGet of a batch ticket, a JSON Lines
//   request) takes one of `max_concurrent_queries` slots, a streaming query one
//   of `max_concurrent_streams`, for as long as it runs; beyond, it is refused at
//   once with a ResourceExhausted status (gRPC RESOURCE_EXHAUSTED, HTTP 429).
// - Watch: a running batch query is watched by one background thread, which
//   interrupts it (once) when its deadline `query_timeout` passes, or when its
//   client has gone away (cancelled the call, disconnected). The query then
//   fails with a DeadlineExceeded status (gRPC DEADLINE_EXCEEDED, HTTP 504) or
//   ends as cancelled.
//
// Metrics: gauge sluice_running_queries (batch queries holding a slot), counter
// sluice_limit_refusals_total{limit="concurrent_queries"|"concurrent_streams"|
// "query_timeout"}.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "arrow/result.h"
#include "arrow/status.h"
#include "common/metrics.h"

namespace sluice::common {

/// \brief Which limit a status reports, for the transports to pick their code.
enum class LimitKind {
  kResourceExhausted,  ///< too many queries or streams; retry later
  kDeadlineExceeded,   ///< the query ran past query_timeout
  kUnavailable,        ///< a service the data comes from is unreachable (a query
                       ///< server's PostgreSQL); retry shortly
};

/// \brief A status reporting a limit: CapacityError (resource exhausted),
/// ExecutionError (deadline exceeded) or IOError (unavailable), with a detail
/// saying which.
arrow::Status LimitStatus(LimitKind kind, const std::string& message);

/// \brief The limit a status reports, if it is one of LimitStatus's.
std::optional<LimitKind> LimitOf(const arrow::Status& status);

/// \brief Options of the limits, from the settings of the same names.
struct LimitsOptions {
  int64_t max_concurrent_queries = 0;  ///< 0: no limit
  int64_t max_concurrent_streams = 0;  ///< 0: no limit
  std::chrono::milliseconds query_timeout{0};  ///< 0: none
  /// How often the watch thread checks deadlines and clients.
  std::chrono::milliseconds poll_interval{50};
};

class Limits;

/// \brief A held admission slot (move-only); destroying it frees the slot.
class Admission {
 public:
  Admission() = default;
  Admission(Admission&& other) noexcept { *this = std::move(other); }
  Admission& operator=(Admission&& other) noexcept;
  ~Admission() { Release(); }
  void Release();

 private:
  friend class Limits;
  std::atomic<int64_t>* counter_ = nullptr;
};

/// \brief One watched query. Destroying it stops the watch; once the destructor
/// returns, the interrupt callback is not running and never will.
class Watch {
 public:
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  /// \brief Whether the deadline passed (the query was, or is being, interrupted).
  bool timed_out() const { return timed_out_.load(); }

  /// \brief The status a query should end with, given the one it got: a
  /// DeadlineExceeded status if the deadline passed (whatever `status` says, as
  /// an interrupted query reports Cancelled), else `status`.
  arrow::Status Explain(arrow::Status status) const;

 private:
  friend class Limits;
  Watch() = default;
  Limits* limits_ = nullptr;
  std::chrono::steady_clock::time_point deadline_;
  bool has_deadline_ = false;
  std::function<bool()> cancelled_;
  std::function<void()> interrupt_;
  bool fired_ = false;  // guarded by Limits::mu_
  std::atomic<bool> timed_out_{false};
  std::chrono::milliseconds timeout_{0};
};

/// \brief The limits of one server. Thread-safe.
class Limits {
 public:
  explicit Limits(LimitsOptions options);
  /// \brief Stops the watch thread. Every Watch must be gone.
  ~Limits();
  Limits(const Limits&) = delete;
  Limits& operator=(const Limits&) = delete;

  /// \brief A slot for a batch query, or a ResourceExhausted status naming the limit.
  arrow::Result<Admission> AdmitQuery();
  /// \brief A slot for a streaming query, or a ResourceExhausted status.
  arrow::Result<Admission> AdmitStream();

  /// \brief Watch a batch query that starts now: `interrupt` is called once,
  /// from the watch thread, when query_timeout passes or `cancelled` (may be
  /// null; called from the watch thread) returns true. `interrupt` must be quick
  /// and must not destroy the Watch.
  std::unique_ptr<Watch> WatchQuery(std::function<bool()> cancelled,
                                    std::function<void()> interrupt);

  const LimitsOptions& options() const { return options_; }
  int64_t running_queries() const { return queries_.load(); }
  int64_t running_streams() const { return streams_.load(); }

 private:
  friend class Watch;
  void Run();
  void Remove(Watch* watch);

  LimitsOptions options_;
  std::atomic<int64_t> queries_{0};
  std::atomic<int64_t> streams_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<Watch*> watches_;
  bool stopping_ = false;
  std::thread thread_;
  CallbackRegistration running_gauge_;
};

}  // namespace sluice::common
