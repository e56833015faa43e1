// What went wrong with a JSON-RPC request, as far as the extractor needs to know
// to react: attached to the arrow::Status of RpcClient's failures as a
// StatusDetail (RpcErrorOf reads it back).
//
// Hosted providers signal the same few conditions in several ways; they are
// classified here, once (docs/datasets.md, "What hosted providers do"):
//   rate limited       HTTP 429 (with or without Retry-After); a JSON-RPC error with
//                      code 429, -32005 or -32007, or whose message says "rate
//                      limit", "too many requests", "exceeded ... capacity"
//   batch too large    HTTP 413; a batch answered by one error saying "batch too
//                      large" / "batch size" / "too many requests in batch" (geth:
//                      -32600 "batch too large"); a partial answer: some calls
//                      answered "response too large" (geth -32003) or not at all
//   method not found   JSON-RPC -32601, or a message saying the method does not
//                      exist / is not supported / is not available
//   transport          no HTTP answer (refused, reset, timeout, TLS)
//   http               another HTTP status than 200
//   rpc                any other JSON-RPC error object
//   malformed          a body that is not the JSON-RPC answer asked for
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "arrow/status.h"

namespace sluice::ingest {

enum class RpcErrorKind {
  kTransport,
  kHttp,
  kRpc,
  kMalformed,
  kRateLimited,
  kBatchTooLarge,
  kMethodNotFound,
};

/// \brief "transport", "http", "rpc", "malformed", "rate_limited",
/// "batch_too_large" or "method_not_found".
const char* RpcErrorKindName(RpcErrorKind kind);

/// \brief The detail of a failed JSON-RPC request.
class RpcErrorDetail : public arrow::StatusDetail {
 public:
  static constexpr const char* kTypeId = "sluice::ingest::RpcErrorDetail";

  explicit RpcErrorDetail(RpcErrorKind kind) : kind(kind) {}
  const char* type_id() const override { return kTypeId; }
  std::string ToString() const override { return std::string("rpc_error=") + RpcErrorKindName(kind); }

  RpcErrorKind kind;
  int http_status = 0;   ///< the HTTP status when there was one (0: none)
  int64_t rpc_code = 0;  ///< the JSON-RPC error code when there was one
  /// How long the node asked to wait (HTTP Retry-After), when it said.
  std::optional<std::chrono::milliseconds> retry_after;
  /// Batch too large, partial answer: how many leading calls were answered
  /// before the node gave up (0: unknown / none).
  size_t answered = 0;
};

/// \brief The detail of `st`, or null when it has none (not an RPC failure).
const RpcErrorDetail* RpcErrorOf(const arrow::Status& st);

/// \brief `st` with `detail` attached (OK stays OK).
arrow::Status WithRpcError(arrow::Status st, std::shared_ptr<RpcErrorDetail> detail);

/// \brief The kind of a JSON-RPC error object, from its code and message
/// (see the header comment): rate limited, batch too large, method not found or rpc.
RpcErrorKind ClassifyRpcError(int64_t code, std::string_view message);

/// \brief An HTTP Retry-After value: delay-seconds, or an HTTP-date (then the
/// time until it, 0 when past). nullopt when it is neither.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value);

/// \brief `url` cut to scheme://host[:port], with "/…" when it had more: hosted
/// providers put the API key in the path or query, and messages must not show it.
std::string RedactUrl(std::string_view url);

}  // namespace sluice::ingest
