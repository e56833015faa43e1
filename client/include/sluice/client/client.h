// The sluice C++ client: a connection to a sluice server (docs/cpp-client.md).
//
// sluice answers SQL over live Ethereum data as Arrow record batches over Arrow
// Flight (docs/protocol.md). This library wraps arrow::flight::FlightClient:
//
//   - Client::Query: a batch query, read record batch by record batch (a
//     QueryReader, an arrow::RecordBatchReader) or all at once into a table;
//     fetch size, page limit, page callback, timeout, cancellation.
//   - Client::Stream: a streaming query as typed events (stream.h) with resume
//     cursors, optionally kept in a CursorStore (a file by default).
//
// Errors are values (arrow::Status / arrow::Result), never exceptions. The
// server's refusals come back as the Flight status it sent, mapped by Arrow:
// INVALID_ARGUMENT (bad SQL, a refused statement or cursor, NonIncrementalOp)
// is StatusCode::Invalid with the server's message; UNAVAILABLE (no server),
// DEADLINE_EXCEEDED (past a timeout) and CANCELLED are IOError/Cancelled with an
// arrow::flight::FlightStatusDetail; IsTimedOut() and IsUnavailable() below
// tell them apart.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrow/flight/client.h"
#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/table.h"
#include "sluice/client/query.h"
#include "sluice/client/stream.h"

namespace sluice::client {

/// \brief Where `sluice serve` listens by default (Flight over plaintext gRPC).
inline constexpr const char* kDefaultFlightUrl = "grpc://localhost:1602";

/// \brief The environment variable that overrides kDefaultFlightUrl.
inline constexpr const char* kFlightUrlEnv = "SLUICE_FLIGHT_URL";

/// \brief gRPC headers: (name, value) pairs; names are lower case.
using Headers = std::vector<std::pair<std::string, std::string>>;

/// \brief How to reach the server.
struct ClientOptions {
  /// \brief The server's Flight location, `grpc://host:port` (`grpc+tls://`
  /// for TLS). Empty: the environment variable SLUICE_FLIGHT_URL if set, else
  /// grpc://localhost:1602.
  std::string flight_url;
  /// \brief Sent on every call as `authorization: Bearer <api_key>` when not
  /// empty. Today's server accepts any key and none.
  std::string api_key;
  /// \brief Extra gRPC headers sent on every call.
  Headers headers;
  /// \brief Default deadline of a call: for Query the whole answer
  /// (GetFlightInfo, then DoGet until its last record batch), for Stream only
  /// GetFlightInfo. nullopt: none. QueryOptions::timeout overrides it.
  std::optional<std::chrono::milliseconds> timeout;
};

/// \brief A connection to a sluice server. Thread-safe: several threads may run
/// queries and streams on one Client at once. Connecting is lazy in gRPC: an
/// unreachable server shows at the first call (IsUnavailable()). The readers
/// and streams it returns must not outlive it.
class Client {
 public:
  /// \brief Connect to `options.flight_url`. Invalid for a malformed URL.
  static arrow::Result<std::unique_ptr<Client>> Connect(ClientOptions options = {});

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// \brief Run the batch query `sql` and return its answer as it streams in.
  ///
  /// Sends GetFlightInfo (with header `sluice-fetch-size` when
  /// options.fetch_size is set), then DoGet on the answer's endpoint. With
  /// options.parameters, runs `sql` as a Flight SQL prepared statement whose
  /// `?` / `$1` placeholders the server binds to the values (query.h).
  ///
  /// A query ending in `SETTINGS stream = true` never ends: use Stream().
  ///
  /// \return a QueryReader once the server started its answer (its schema
  /// arrived). A query that computes long before its first record batch (an
  /// aggregate over much data) makes Query() wait that long: bound it with
  /// `timeout` (the server then interrupts the query); Cancel() applies from
  /// the reader's return on.
  /// Invalid: options out of range (fetch_size, max_pages) or the server
  /// refused the SQL (INVALID_ARGUMENT, with its message); IOError with
  /// IsUnavailable(): no server; IsTimedOut(): past the timeout.
  arrow::Result<std::unique_ptr<QueryReader>> Query(const std::string& sql,
                                                    const QueryOptions& options = {});

  /// \brief Query(sql, options), then QueryReader::ReadAll(): the whole answer
  /// in memory.
  arrow::Result<std::shared_ptr<arrow::Table>> QueryTable(const std::string& sql,
                                                          const QueryOptions& options = {});

  /// \brief Start the streaming query `sql` and return its events.
  ///
  /// Sends `amp-stream: true` (so `SETTINGS stream = true` is optional) and, to
  /// resume, `amp-resume: <cursor>`: options.cursor, else the cursor in
  /// options.cursor_store (or the file options.cursor_file) if it holds one.
  ///
  /// \return a Stream, already connected. Invalid: the server refused the query
  /// (bad SQL, `NonIncrementalOp: …`) or the cursor (malformed, another
  /// network, a block not extracted yet or on no fork it knows); the cursor
  /// store cannot be read.
  arrow::Result<std::unique_ptr<sluice::client::Stream>> Stream(const std::string& sql,
                                                                StreamOptions options = {});

  /// \brief The Flight location connected to.
  const std::string& flight_url() const { return flight_url_; }

  /// \brief The underlying Arrow Flight client (for calls this API lacks).
  arrow::flight::FlightClient* flight_client() { return flight_.get(); }

  /// \brief Close the connection. Readers still open fail afterwards. Idempotent.
  arrow::Status Close();

 private:
  Client(ClientOptions options, std::unique_ptr<arrow::flight::FlightClient> flight);
  arrow::flight::FlightCallOptions CallOptions(
      const Headers& extra, std::optional<std::chrono::milliseconds> timeout) const;

  ClientOptions options_;
  std::string flight_url_;
  std::unique_ptr<arrow::flight::FlightClient> flight_;
  bool closed_ = false;
};

/// \brief The call failed because its deadline passed (gRPC DEADLINE_EXCEEDED).
bool IsTimedOut(const arrow::Status& status);

/// \brief The server could not be reached (gRPC UNAVAILABLE).
bool IsUnavailable(const arrow::Status& status);

/// \brief The call was cancelled (QueryReader::Cancel, Stream::Close, or the
/// server's CANCELLED).
bool IsCancelled(const arrow::Status& status);

}  // namespace sluice::client
