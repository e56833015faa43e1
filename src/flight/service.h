// The Arrow Flight service (protocol.md §2): GetFlightInfo plans a query and
// hands out a signed ticket; DoGet redeems it and streams the result from the
// engine to the wire, with app_metadata on every message (§4).
#pragma once

#include <memory>
#include <string>

#include "arrow/flight/server.h"
#include "flight/ticket.h"
#include "sql/engine.h"

namespace sluice::flight {

/// \brief Options of the service.
struct ServiceOptions {
  int64_t rows_per_batch = 65536;  ///< rows per record batch sent
};

/// \brief The Flight service. Thread-safe: gRPC calls it from many threads.
class FlightService : public arrow::flight::FlightServerBase {
 public:
  FlightService(sql::Engine* engine, TicketSigner signer, ServiceOptions options);

  /// \brief Plan a query: the descriptor is CMD with SQL text or a Flight SQL
  /// CommandStatementQuery. Answers the result schema and one endpoint whose
  /// ticket DoGet accepts. INVALID_ARGUMENT for SQL errors and sandbox refusals.
  arrow::Status GetFlightInfo(const arrow::flight::ServerCallContext& context,
                              const arrow::flight::FlightDescriptor& request,
                              std::unique_ptr<arrow::flight::FlightInfo>* info) override;

  /// \brief Run the query of a ticket. INVALID_ARGUMENT for a forged, altered or
  /// expired ticket.
  arrow::Status DoGet(const arrow::flight::ServerCallContext& context,
                      const arrow::flight::Ticket& request,
                      std::unique_ptr<arrow::flight::FlightDataStream>* stream) override;

 private:
  arrow::Result<std::string> QueryFromDescriptor(
      const arrow::flight::ServerCallContext& context,
      const arrow::flight::FlightDescriptor& request) const;

  sql::Engine* engine_;
  TicketSigner signer_;
  ServiceOptions options_;
};

}  // namespace sluice::flight
