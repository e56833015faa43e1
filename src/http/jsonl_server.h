// The JSON Lines endpoint (protocol.md §6, docs/http.md): `POST /` with the SQL
// text as the body answers 200, `content-type: application/x-ndjson`, one JSON
// object per row (http/json_lines.h), streamed as the engine produces rows.
//
// - The answer is sent with chunked transfer encoding, one record batch at a
//   time (`rows_per_batch` rows read from the engine, converted, written): the
//   server never holds more than about one batch, so an answer of any size
//   starts at once and memory stays flat.
// - `Accept-Encoding: gzip` gets a gzip body (`Content-Encoding: gzip`), flushed
//   after every batch so the client can decode as rows arrive.
// - Errors before the first row: a 4xx/5xx status and the body
//   `{"error_code": "…", "error_message": "…"}` — 400 INVALID_ARGUMENT for SQL
//   errors and sandbox refusals (DuckDB's message), 400 STREAMING_NOT_SUPPORTED for
//   a streaming query (`SETTINGS stream = true` or header `amp-stream: true`),
//   500 INTERNAL, … (http::HttpStatusOf). An error after rows were sent ends the
//   answer with that object as its last line.
// - A client that disconnects mid-answer interrupts the engine (the next write
//   fails). The sandbox is the engine's, as for Flight.
// - `POST /v1/sql` is Spice's HTTP API (what spice.js falls back to when a
//   Flight call fails): the same query, auth, limits and encodings, answered
//   200 `content-type: application/json; charset=utf-8` with one JSON array of the row objects
//   (`[]` for none), streamed the same way. The body is the SQL text, or with
//   `Content-Type: application/json` the object `{"sql": "…"}`. Errors before the
//   first row are the same statuses and error body as `POST /`; an error after
//   rows were sent leaves the array unclosed, adds the error object on a line of
//   its own and closes the connection without the last chunk.
// - `GET /health` answers 200 `{"status":"ok"}`, without credentials; with API
//   keys configured, `POST /` and `POST /v1/sql` need one (http_server.h,
//   docs/security.md).
//
// Each request counts in sluice_queries_total{kind="jsonl"} and the rows and
// bytes it sends in sluice_rows_sent_total / sluice_bytes_sent_total.
#pragma once

#include <memory>
#include <mutex>
#include <set>

#include "arrow/result.h"
#include "common/limits.h"
#include "http/http_server.h"
#include "sql/engine.h"

namespace sluice::http {

/// \brief Options of the JSON Lines endpoint.
struct JsonLinesOptions {
  ListenOptions listen;           ///< jsonl_addr (default 0.0.0.0:1603, set by `sluice serve`)
  int64_t rows_per_batch = 8192;  ///< rows read from the engine per write
  /// Admission and timeouts (common/limits.h), shared with Flight; not owned;
  /// null: none. A request beyond max_concurrent_queries gets 429
  /// RESOURCE_EXHAUSTED; one past query_timeout_secs 504 DEADLINE_EXCEEDED (or
  /// that error as its last line once rows were sent).
  common::Limits* limits = nullptr;
};

/// \brief The JSON Lines HTTP server. Thread-safe.
class JsonLinesServer {
 public:
  /// \brief Bind the address (IOError when taken); serve after Start. The engine
  /// must outlive the server.
  static arrow::Result<std::unique_ptr<JsonLinesServer>> Make(sql::Engine* engine,
                                                              JsonLinesOptions options);
  ~JsonLinesServer();

  int port() const { return http_->port(); }
  /// \brief "https" with TLS, else "http".
  const char* scheme() const { return http_->scheme(); }
  void Start() { http_->Start(); }
  /// \brief Interrupt the queries running (their answers end with a CANCELLED
  /// line), stop accepting, join. Idempotent.
  void Stop();

  struct Query;  // one answer in progress (jsonl_server.cc)

 private:
  JsonLinesServer() = default;
  enum class Answer { kJsonLines, kJsonArray };  // POST / or POST /v1/sql
  void Handle(const httplib::Request& req, httplib::Response* res, Answer answer);
  bool stopping();
  void Register(Query* q);
  void Unregister(Query* q);

  sql::Engine* engine_ = nullptr;
  JsonLinesOptions options_;
  std::unique_ptr<HttpServer> http_;
  std::mutex mu_;
  std::set<Query*> running_;
  bool stopping_ = false;
};

/// \brief Whether an Accept-Encoding header value accepts gzip (a `gzip` or
/// `x-gzip` coding whose q is not 0).
bool AcceptsGzip(const std::string& accept_encoding);

}  // namespace sluice::http
