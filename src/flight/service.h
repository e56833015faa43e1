// The Arrow Flight service (protocol.md §2): GetFlightInfo plans a query and
// hands out a signed ticket; DoGet redeems it and streams the result from the
// engine to the wire, with app_metadata on every message (§4).
//
// Metrics (common/server_metrics.h): a query counts once in sluice_queries_total
// {kind="batch"|"stream"}, when it ends: refused by GetFlightInfo, failed in
// DoGet, or when its stream ends (ok, error, or cancelled by the client).
#pragma once

#include <memory>
#include <string>

#include "arrow/flight/server.h"
#include "common/limits.h"
#include "flight/prepared_statements.h"
#include "flight/running_queries.h"
#include "flight/streaming_query.h"
#include "flight/ticket.h"
#include "sql/engine.h"

namespace sluice::flight {

/// \brief Options of the service.
struct ServiceOptions {
  int64_t rows_per_batch = 65536;  ///< rows per record batch sent
  StreamOptions stream;            ///< streaming queries
  /// Admission and timeouts of DoGet (flight/limits.h); not owned; null: none.
  common::Limits* limits = nullptr;
  /// Split answers (flight/endpoints.h): ranges of at most this many blocks
  /// (0: one endpoint), each naming these Flight URIs (empty: none, i.e. this server).
  uint64_t endpoint_max_blocks = 0;
  std::vector<std::string> endpoint_locations;
};

/// \brief The Flight service. Thread-safe: gRPC calls it from many threads.
class FlightService : public arrow::flight::FlightServerBase {
 public:
  FlightService(sql::Engine* engine, TicketSigner signer, ServiceOptions options);

  /// \brief Plan a query: the descriptor is CMD with SQL text or a Flight SQL
  /// CommandStatementQuery or CommandPreparedStatementQuery (its bound parameters go
  /// into the ticket), or a Flight SQL metadata command (flight/flight_sql.h). Answers the result schema and one endpoint whose
  /// ticket DoGet accepts. A streaming query (trailing `SETTINGS stream = true`
  /// or header `amp-stream: true`, the header winning) must be incrementalizable
  /// and may carry an `amp-resume` cursor header. INVALID_ARGUMENT for SQL
  /// errors, sandbox refusals, `NonIncrementalOp: …` and bad cursors.
  arrow::Status GetFlightInfo(const arrow::flight::ServerCallContext& context,
                              const arrow::flight::FlightDescriptor& request,
                              std::unique_ptr<arrow::flight::FlightInfo>* info) override;

  /// \brief The answer's schema of what GetFlightInfo would plan for `request`
  /// (a statement, a prepared statement or a metadata command), without a
  /// ticket. A prepared statement whose parameters are not bound yet is described
  /// as DuckDB types it without them (Invalid when its schema depends on them).
  /// Errors as GetFlightInfo.
  arrow::Status GetSchema(const arrow::flight::ServerCallContext& context,
                          const arrow::flight::FlightDescriptor& request,
                          std::unique_ptr<arrow::flight::SchemaResult>* schema) override;

  /// \brief GetFlightInfo's answer as a finished PollInfo (no retry descriptor,
  /// progress 1): sluice plans at once and runs the query in DoGet.
  arrow::Status PollFlightInfo(const arrow::flight::ServerCallContext& context,
                               const arrow::flight::FlightDescriptor& request,
                               std::unique_ptr<arrow::flight::PollInfo>* info) override;

  /// \brief Run the query of a ticket. INVALID_ARGUMENT for a forged, altered or
  /// expired ticket; UNAVAILABLE "RESOURCE_EXHAUSTED: …" beyond
  /// max_concurrent_queries (batch) or max_concurrent_streams (flight/limits.h);
  /// DEADLINE_EXCEEDED past query_timeout_secs (batch).
  arrow::Status DoGet(const arrow::flight::ServerCallContext& context,
                      const arrow::flight::Ticket& request,
                      std::unique_ptr<arrow::flight::FlightDataStream>* stream) override;

  /// \brief Actions (docs/protocol.md, "Flight SQL"): `CreatePreparedStatement` (body an
  /// Any of ActionCreatePreparedStatementRequest; answers an Any of
  /// ActionCreatePreparedStatementResult with the handle, the result schema when
  /// DuckDB knows it before binding, and the parameter schema: a field per
  /// placeholder, type null where unknown), `ClosePreparedStatement`, Flight's
  /// `CancelFlightInfo` (body a CancelFlightInfoRequest; answers a
  /// CancelFlightInfoResult, CANCELLED) and Flight SQL's `CancelQuery` (Any of
  /// ActionCancelQueryRequest; answers an Any of ActionCancelQueryResult): the
  /// DoGet calls of the FlightInfo's tickets stop with CANCELLED and later ones
  /// are refused. Invalid for a FlightInfo none of whose tickets is this server's
  /// or running. NotImplemented for other actions; a prepared streaming query is
  /// Invalid.
  arrow::Status DoAction(const arrow::flight::ServerCallContext& context,
                         const arrow::flight::Action& action,
                         std::unique_ptr<arrow::flight::ResultStream>* result) override;

  /// \brief The actions DoAction answers.
  arrow::Status ListActions(const arrow::flight::ServerCallContext& context,
                            std::vector<arrow::flight::ActionType>* actions) override;

  /// \brief Bind parameters to a prepared statement: the descriptor is a
  /// CommandPreparedStatementQuery, the data one row (column i = placeholder i+1).
  /// Answers a DoPutPreparedStatementResult with the same handle. Invalid for more
  /// than one row; NotImplemented for any other DoPut (sluice is read-only).
  arrow::Status DoPut(const arrow::flight::ServerCallContext& context,
                      std::unique_ptr<arrow::flight::FlightMessageReader> reader,
                      std::unique_ptr<arrow::flight::FlightMetadataWriter> writer) override;

 private:
  arrow::Result<StreamPlan> PlanStream(sql::Session* session, const std::string& sql,
                                       const std::string& resume) const;
  // GetFlightInfo and DoGet without counting refused queries; *stream says the
  // query's kind as soon as it is known.
  arrow::Status Plan(const arrow::flight::ServerCallContext& context,
                     const arrow::flight::FlightDescriptor& request,
                     std::unique_ptr<arrow::flight::FlightInfo>* info, bool* stream);
  // The answer's schema and the ticket's payload of a request. `schema_only`
  // (GetSchema): a prepared statement without bound parameters is described
  // without their types. `session_out` (when not null) receives the session a
  // query was described in (left null for a metadata command).
  arrow::Status Describe(const arrow::flight::ServerCallContext& context,
                         const arrow::flight::FlightDescriptor& request,
                         std::shared_ptr<arrow::Schema>* schema, TicketPayload* payload,
                         bool* stream, bool schema_only,
                         std::unique_ptr<sql::Session>* session_out = nullptr);
  // CancelFlightInfo / CancelQuery of `info`.
  arrow::Status Cancel(const arrow::flight::FlightInfo& info);
  arrow::Status Open(const arrow::flight::ServerCallContext& context,
                     const arrow::flight::Ticket& request,
                     std::unique_ptr<arrow::flight::FlightDataStream>* stream, bool* streaming);

  sql::Engine* engine_;
  TicketSigner signer_;
  ServiceOptions options_;
  std::shared_ptr<StoreWatch> watch_;  // wakes streams over several datasets
  PreparedStatements prepared_;
  RunningQueries running_;
};

}  // namespace sluice::flight
