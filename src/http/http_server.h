// What the HTTP endpoints share (protocol.md §1): an HTTP/1.1 server
// (cpp-httplib) listening on its own thread, and the JSON error body
// `{"error_code": "…", "error_message": "…"}` with the status code of an
// arrow::Status.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "common/auth.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace sluice::http {

/// \brief Where and how an HTTP server listens.
struct ListenOptions {
  std::string host = "0.0.0.0";
  int port = 0;  ///< 0: any free port (see HttpServer::port)
  /// Worker threads: requests served at once (a streaming answer holds one).
  int threads = 8;
  /// Seconds a write may block on a client that does not read before the
  /// connection is dropped (and its query cancelled).
  int write_timeout_secs = 60;
  /// PEM certificate chain and private key files: serve HTTPS (both or neither).
  std::string tls_cert_file;
  std::string tls_key_file;
  /// Authentication (common/auth.h); null or without keys: none. With keys,
  /// every request but those to `open_paths` must carry `Authorization: Bearer
  /// <API key or token>` or `X-API-Key: <API key>`; others get 401
  /// UNAUTHENTICATED (common::kUnauthenticatedMessage, `WWW-Authenticate:
  /// Bearer`), counted in sluice_auth_failures_total{endpoint=<server name>}.
  std::shared_ptr<const common::Authenticator> auth;
  /// Paths served without credentials: exact, or every path below one ending in '/'.
  std::vector<std::string> open_paths;
};

/// \brief An HTTP server on its own thread. Register handlers on server()
/// before Start.
class HttpServer {
 public:
  /// \brief Bind `options.host:options.port`. IOError when the address cannot be
  /// bound (in use, unknown host) or the TLS certificate or key cannot be loaded.
  /// The name appears in errors ("jsonl", "admin").
  static arrow::Result<std::unique_ptr<HttpServer>> Bind(std::string name,
                                                         const ListenOptions& options);
  /// \brief Stops and joins.
  ~HttpServer();

  httplib::Server& server() { return *server_; }
  /// \brief The bound port (the one chosen when asked for port 0).
  int port() const { return port_; }
  /// \brief "https" with TLS, else "http".
  const char* scheme() const { return tls_ ? "https" : "http"; }
  /// \brief Whether `req` carries a valid credential (true when authentication
  /// is off).
  bool Authenticated(const httplib::Request& req) const;

  /// \brief Serve on a new thread.
  void Start();
  /// \brief Stop accepting, wait for requests in progress to return, join.
  /// Idempotent.
  void Stop();

 private:
  HttpServer() = default;
  std::string name_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  bool tls_ = false;
  std::shared_ptr<const common::Authenticator> auth_;
  std::thread thread_;
  std::atomic<bool> exited_{false};
};

/// \brief An error answer's HTTP status and error_code for `status`:
/// Invalid and other client errors -> 400 INVALID_ARGUMENT; NotImplemented -> 501
/// UNIMPLEMENTED; a concurrency limit (common/limits.h) -> 429 RESOURCE_EXHAUSTED;
/// a query timeout -> 504 DEADLINE_EXCEEDED; OutOfMemory, CapacityError -> 503
/// RESOURCE_EXHAUSTED; Cancelled -> 503 CANCELLED; anything else -> 500 INTERNAL.
std::pair<int, std::string> HttpStatusOf(const arrow::Status& status);

/// \brief `{"error_code": code, "error_message": message}` (no newline).
std::string ErrorJson(const std::string& code, const std::string& message);

/// \brief Answer `http_status` with ErrorJson(code, message), as application/json.
void SetError(httplib::Response* response, int http_status, const std::string& code,
              const std::string& message);

}  // namespace sluice::http
