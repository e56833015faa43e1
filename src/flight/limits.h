// The limits of common/limits.h on the Flight service (docs/security.md):
// admission of DoGet calls, the watch that stops a batch query when its client
// goes away or its time is up, and the gRPC codes of limit errors.
#pragma once

#include <memory>

#include "arrow/flight/server.h"
#include "common/limits.h"

namespace sluice::sql {
class Session;
}

namespace sluice::flight {

/// \brief `status` with the Flight code a client should see for the limits
/// (common::LimitStatus): a deadline -> DEADLINE_EXCEEDED (FlightStatusCode
/// TimedOut); too many queries -> UNAVAILABLE with a message starting
/// "RESOURCE_EXHAUSTED: " (Arrow Flight's gRPC transport cannot send gRPC's
/// RESOURCE_EXHAUSTED; UNAVAILABLE is the retryable code; pyarrow raises
/// FlightUnavailableError). Any other status is returned unchanged.
arrow::Status ToFlightStatus(arrow::Status status);

/// \brief What a running DoGet holds: its admission slot and, for a batch
/// query, its watch. Null `limits`: nothing is limited.
struct QueryAdmission {
  common::Admission slot;
  std::unique_ptr<common::Watch> watch;
};

/// \brief Admit a DoGet: a stream slot for a streaming query, a query slot for a
/// batch query. ResourceExhausted (already in Flight form) when full.
arrow::Result<QueryAdmission> Admit(common::Limits* limits, bool streaming);

/// \brief Watch the batch query of `session` for the call `context`: the session
/// is interrupted when the client cancels or disconnects, or when
/// query_timeout passes. Call before running the query. The session and the
/// context must outlive `admission->watch` (QueryStream keeps that order).
void WatchBatchQuery(common::Limits* limits, const arrow::flight::ServerCallContext& context,
                     sql::Session* session, QueryAdmission* admission);

/// \brief A DoGet's stream holding its admission for its life. Its Next()
/// reports a passed deadline as DEADLINE_EXCEEDED (also between batches, for a
/// client that reads slowly), and converts errors with ToFlightStatus.
/// Destroying it destroys the watch, then the inner stream (which interrupts
/// its engine work), then frees the slot.
class QueryStream : public arrow::flight::FlightDataStream {
 public:
  QueryStream(std::unique_ptr<arrow::flight::FlightDataStream> inner, QueryAdmission admission);
  ~QueryStream() override;

  std::shared_ptr<arrow::Schema> schema() override { return inner_->schema(); }
  arrow::Result<arrow::flight::FlightPayload> GetSchemaPayload() override;
  arrow::Result<arrow::flight::FlightPayload> Next() override;
  arrow::Status Close() override { return inner_->Close(); }

 private:
  common::Admission slot_;  // declared first: freed last
  std::unique_ptr<arrow::flight::FlightDataStream> inner_;
  std::unique_ptr<common::Watch> watch_;  // declared last: destroyed first
};

}  // namespace sluice::flight
