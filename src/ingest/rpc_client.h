// A JSON-RPC 2.0 client over HTTP(S) for an Ethereum node (libcurl, simdjson).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/util/cancel.h"

namespace sluice::ingest {

class RpcResponseParser;

/// \brief Options of an RpcClient.
struct RpcClientOptions {
  /// The node's HTTP endpoint, e.g. "http://127.0.0.1:8545".
  std::string url;
  /// Time allowed to establish the TCP (and TLS) connection.
  std::chrono::milliseconds connect_timeout{2000};
  /// Time allowed for a whole request, connection included.
  std::chrono::milliseconds request_timeout{30000};
  /// When stop is requested, a request in progress is abandoned within about
  /// 20 ms and returns Cancelled; new requests return Cancelled at once.
  arrow::StopToken stop_token = arrow::StopToken::Unstoppable();
};

/// \brief One call of a batch: a method and its params as a JSON array text.
struct RpcRequest {
  std::string method;
  std::string params = "[]";  ///< e.g. R"(["0x1a",true])"
};

/// \brief A JSON-RPC 2.0 client. Keeps one HTTP connection alive between calls
/// (one curl easy handle). Not thread-safe: use one client per thread.
///
/// A call's answer is the raw JSON text of the response's `result` member,
/// exactly as the node sent it (`"0x1a"`, `{...}`, `[...]`, `null`), with
/// simdjson::SIMDJSON_PADDING bytes of spare capacity so it can be parsed
/// without a copy. A node answers `null` for a block it does not have.
///
/// Errors (the message names the method, and the params when short, and the
/// URL cut to its scheme and host, RedactUrl):
/// - IOError: transport failure (connection refused, timeout, TLS), an HTTP
///   status other than 200, or a JSON-RPC error object (its code and message);
/// - Invalid: a response that is not JSON, or lacks `result`/`error` or an id;
/// - Cancelled: the stop token was triggered.
/// Every failure but Cancelled carries an RpcErrorDetail (ingest/rpc_error.h):
/// what kind of failure it was (rate limited with the Retry-After asked for, batch
/// too large, method not found, ...).
class RpcClient {
 public:
  /// \brief Create a client. Invalid on an empty url; IOError if curl cannot
  /// be initialised. Does not connect.
  static arrow::Result<std::unique_ptr<RpcClient>> Make(RpcClientOptions options);
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  /// \brief Call `method` with `params_json` (a JSON array text) in one HTTP POST.
  /// Returns the raw JSON text of the result.
  arrow::Result<std::string> Call(std::string_view method, std::string_view params_json = "[]");

  /// \brief Send `requests` as one JSON-RPC batch (one HTTP POST of a JSON
  /// array). Responses are matched by id, whatever their order. Returns the raw
  /// results in request order; fails as a whole if any call failed (the status
  /// names the first failed call).
  arrow::Result<std::vector<std::string>> CallBatch(const std::vector<RpcRequest>& requests);

  /// \brief The raw body of the last HTTP response (for diagnostics).
  const std::string& last_response() const { return response_; }

  const RpcClientOptions& options() const { return options_; }

 private:
  explicit RpcClient(RpcClientOptions options);
  arrow::Status Init();
  /// POST body_; on success response_ holds the body (padded for simdjson).
  arrow::Status Post(std::string_view what);

  RpcClientOptions options_;
  void* easy_ = nullptr;   // CURL*
  void* multi_ = nullptr;  // CURLM*
  void* headers_ = nullptr;  // curl_slist*
  std::string body_;
  std::string response_;
  std::string retry_after_;  // the Retry-After header of the last response
  std::string redacted_url_;
  uint64_t next_id_ = 1;
  std::unique_ptr<RpcResponseParser> parser_;
};

/// \brief True when a raw result is JSON `null`.
bool IsNullResult(std::string_view raw);

/// \brief The string inside a raw JSON string result (`"0x1a"` -> `0x1a`).
/// Invalid if `raw` is not a JSON string without escapes.
arrow::Result<std::string_view> UnquoteResult(std::string_view raw);

}  // namespace sluice::ingest
