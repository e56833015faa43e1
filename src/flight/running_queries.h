// Queries running under a ticket, so that a client can cancel them: Flight's
// CancelFlightInfo action and Flight SQL's older CancelQuery name a FlightInfo,
// whose endpoints' tickets identify the DoGet calls to stop (docs/protocol.md,
// "Flight SQL").
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "arrow/flight/server.h"
#include "arrow/result.h"

namespace sluice::flight {

/// \brief The DoGet calls running now, by ticket. Thread-safe.
class RunningQueries {
 public:
  /// \brief A cancelled ticket is remembered for `remember` (the ticket lifetime):
  /// a DoGet of it that starts after the cancel is refused.
  explicit RunningQueries(std::chrono::seconds remember) : remember_(remember) {}

  /// \brief One running DoGet; unregisters itself when destroyed.
  class Registration {
   public:
    ~Registration();
    /// \brief Whether the query was cancelled (CancelFlightInfo / CancelQuery).
    bool cancelled() const { return cancelled_.load(); }

   private:
    friend class RunningQueries;
    RunningQueries* owner_ = nullptr;
    std::string ticket_;
    std::function<void()> interrupt_;
    std::atomic<bool> cancelled_{false};
  };

  /// \brief Register a DoGet of `ticket`; `interrupt` (quick, any thread) stops
  /// its engine work. CANCELLED when the ticket was cancelled already. The
  /// registration must be destroyed before what `interrupt` touches.
  arrow::Result<std::unique_ptr<Registration>> Start(const std::string& ticket,
                                                     std::function<void()> interrupt);

  /// \brief Cancel every DoGet of `ticket` (flag it, interrupt its engine work)
  /// and, when `remember`, refuse later ones. Returns how many were running.
  size_t Cancel(const std::string& ticket, bool remember);

 private:
  using Clock = std::chrono::steady_clock;
  void Remove(Registration* r);
  void ExpireLocked(Clock::time_point now);

  std::chrono::seconds remember_;
  std::mutex mu_;
  std::multimap<std::string, Registration*> running_;
  std::map<std::string, Clock::time_point> cancelled_;  // ticket -> forget after
};

/// \brief `inner` (a DoGet's stream) ending with CANCELLED "query cancelled by a
/// CancelFlightInfo request" once its registration is cancelled: at once for a
/// batch query (its engine is interrupted), at its next message for a stream.
/// Destroys the registration before `inner`.
class CancellableStream : public arrow::flight::FlightDataStream {
 public:
  CancellableStream(std::unique_ptr<arrow::flight::FlightDataStream> inner,
                    std::unique_ptr<RunningQueries::Registration> registration)
      : inner_(std::move(inner)), registration_(std::move(registration)) {}
  ~CancellableStream() override { registration_.reset(); }

  std::shared_ptr<arrow::Schema> schema() override { return inner_->schema(); }
  arrow::Result<arrow::flight::FlightPayload> GetSchemaPayload() override {
    return inner_->GetSchemaPayload();
  }
  arrow::Result<arrow::flight::FlightPayload> Next() override;
  arrow::Status Close() override { return inner_->Close(); }

 private:
  std::unique_ptr<arrow::flight::FlightDataStream> inner_;
  std::unique_ptr<RunningQueries::Registration> registration_;  // last: destroyed first
};

/// \brief The status of a cancelled query.
arrow::Status CancelledStatus();

}  // namespace sluice::flight
