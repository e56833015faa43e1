// A dataset's node: one or more JSON-RPC endpoints of the same chain (a local
// node, hosted providers), used the way hosted providers require
// (docs/datasets.md, "What hosted providers do"):
//
//   - failover: the endpoints are used in the configured order; one that fails
//     (no answer, HTTP 5xx, an error object, a malformed answer) is left aside for
//     `failback` and the call goes on with the next; once `failback` has passed it
//     is preferred again. When every endpoint has failed the least recently failed
//     one is still tried, so extraction resumes as soon as any answers;
//   - rate limits: an endpoint answering "rate limited" (HTTP 429, JSON-RPC 429 /
//     -32005 / -32007) is not asked again before its Retry-After (at most
//     `retry_after_max`; 1 s when it gave none). When every endpoint is limited the
//     call fails at once with a kRateLimited status whose retry_after says how long
//     until one may be asked: the caller waits that long (nothing blocks or spins);
//   - batch limits: a batch refused for its size ("batch too large", HTTP 413, a
//     partial answer) is split, and the size that the endpoint accepted is
//     remembered for every later batch to it; `max_batch_calls` (0: none) caps
//     batches from the start, 1 sends no batches at all;
//   - a request budget: at most `max_requests_per_sec` HTTP requests per second,
//     all threads together (0: no limit).
//
// NodeEndpoints is the shared state (thread-safe); each thread calls through its
// own NodeClient (one HTTP connection per endpoint).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/util/cancel.h"
#include "ingest/rpc_client.h"
#include "ingest/rpc_error.h"

namespace sluice::ingest {

/// \brief Options of a dataset's node.
struct NodeOptions {
  /// Endpoints in order of preference, e.g. {"http://127.0.0.1:8545"}. >= 1.
  std::vector<std::string> urls;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{30000};
  /// How long an endpoint that failed is left aside (with several endpoints).
  std::chrono::milliseconds failback{30000};
  /// The longest Retry-After honoured; longer ones are cut to this.
  std::chrono::milliseconds retry_after_max{60000};
  /// The wait after a "rate limited" answer without Retry-After.
  std::chrono::milliseconds retry_after_default{1000};
  /// Most calls per batch request (0: no limit until the node refuses one; 1: no
  /// batches, one call per request).
  uint32_t max_batch_calls = 0;
  /// Most HTTP requests per second to the node (0: no limit).
  double max_requests_per_sec = 0;

  /// \brief Invalid when a field is out of range.
  arrow::Status Validate() const;
};

/// \brief What the admin API shows of one endpoint (never its full URL).
struct EndpointStatus {
  std::string url;  ///< RedactUrl of the endpoint
  /// "up", "down" (failed; left aside until failback) or "rate_limited".
  std::string state;
  std::string last_error;  ///< empty when none
  uint32_t batch_limit = 0;  ///< calls per batch learnt or configured (0: none)
  uint64_t requests = 0;     ///< HTTP requests sent
  uint64_t failures = 0;     ///< requests that failed (all kinds)
  uint64_t rate_limited = 0;  ///< "rate limited" answers
};

/// \brief Counters of a node's endpoints together (for metrics).
struct NodeCounters {
  uint64_t failovers = 0;     ///< calls that moved on to another endpoint after a failure
  uint64_t rate_limited = 0;  ///< "rate limited" answers
  uint64_t batch_splits = 0;  ///< batches split after a "too large" answer
};

class NodeClient;

/// \brief The shared state of a dataset's endpoints. Thread-safe.
class NodeEndpoints {
 public:
  using Clock = std::chrono::steady_clock;

  /// \brief Check on first use of an endpoint, before any other call to it (the
  /// extractor checks the chain identity and the node's methods there). A failure
  /// fails the call that triggered it; the check runs again on the next use.
  using Check = std::function<arrow::Status(RpcClient* client, size_t endpoint)>;

  static arrow::Result<std::shared_ptr<NodeEndpoints>> Make(NodeOptions options);

  void set_check(Check check) { check_ = std::move(check); }
  const NodeOptions& options() const { return options_; }
  size_t size() const { return options_.urls.size(); }

  /// \brief The endpoints' state, in configured order.
  std::vector<EndpointStatus> Status() const;
  NodeCounters counters() const;
  /// \brief Forget what was learnt about failures and rate limits (not batch
  /// limits), and that the endpoints were checked: on a restart of the extractor.
  void Reset();

 private:
  friend class NodeClient;
  struct Endpoint {
    std::string url;
    std::string redacted;
    bool checked = false;
    std::optional<Clock::time_point> down_until;  // failed: left aside until then
    Clock::time_point failed_at{};
    std::optional<Clock::time_point> limited_until;  // rate limited until then
    uint32_t batch_limit = 0;
    std::string last_error;
    uint64_t requests = 0, failures = 0, rate_limited = 0;
  };
  explicit NodeEndpoints(NodeOptions options);

  /// The endpoint to use now among those not in `tried`: the first up, else the
  /// least recently failed. nullopt when every untried one is rate limited (then
  /// `*wait` is the time until the first may be asked) or all were tried.
  std::optional<size_t> Pick(const std::vector<bool>& tried, Clock::duration* wait);
  void Succeeded(size_t i);
  void Failed(size_t i, const arrow::Status& st);
  void RateLimited(size_t i, const arrow::Status& st);
  uint32_t BatchLimit(size_t i);
  void LowerBatchLimit(size_t i, uint32_t calls, const arrow::Status& why);
  bool NeedsCheck(size_t i);
  void MarkChecked(size_t i);
  /// Wait for the request budget; Cancelled when `stop` is requested meanwhile.
  arrow::Status Throttle(const arrow::StopToken& stop);

  NodeOptions options_;
  Check check_;
  mutable std::mutex mu_;
  std::vector<Endpoint> endpoints_;
  std::mutex check_mu_;  // one check at a time
  NodeCounters counters_;
  // Request budget (token bucket, guarded by mu_).
  double tokens_ = 0;
  Clock::time_point refilled_{};
};

/// \brief One thread's access to a dataset's node. Not thread-safe.
///
/// Errors are those of RpcClient, after failover: the last endpoint's error. A
/// kRateLimited status means every endpoint is rate limited; its RpcErrorDetail
/// retry_after is the time until one may be asked.
class NodeClient {
 public:
  static arrow::Result<std::unique_ptr<NodeClient>> Make(std::shared_ptr<NodeEndpoints> endpoints,
                                                         arrow::StopToken stop_token);

  /// \brief One call (RpcClient::Call) on the preferred endpoint, failing over.
  arrow::Result<std::string> Call(std::string_view method, std::string_view params_json = "[]");

  /// \brief A batch (RpcClient::CallBatch), split to the endpoint's batch limit
  /// (sent as several requests, or as single calls when the limit is 1), failing
  /// over. Results in request order.
  arrow::Result<std::vector<std::string>> CallBatch(const std::vector<RpcRequest>& requests);

  /// \brief Make sure the preferred endpoint passed the check (NodeEndpoints::Check).
  arrow::Status EnsureChecked();

  NodeEndpoints& endpoints() { return *endpoints_; }

 private:
  NodeClient(std::shared_ptr<NodeEndpoints> endpoints, arrow::StopToken stop_token);
  arrow::Result<RpcClient*> Client(size_t i);
  /// Run `op` on the preferred endpoint, failing over; `op` gets the endpoint.
  template <typename T>
  arrow::Result<T> WithFailover(const std::function<arrow::Result<T>(size_t)>& op);
  arrow::Result<std::vector<std::string>> BatchOn(size_t i, const std::vector<RpcRequest>& requests);

  std::shared_ptr<NodeEndpoints> endpoints_;
  arrow::StopToken stop_token_;
  std::vector<std::unique_ptr<RpcClient>> clients_;  // by endpoint, made on first use
};

}  // namespace sluice::ingest
