// The admin API (protocol.md §1, docs/http.md): health, readiness, metrics and
// JSON views of the datasets and the open streams, over HTTP.
//
//   GET /health    200 {"status":"ok"} while the process serves
//   GET /ready     200 {"status":"ready","datasets":{name: "ready"|"not_ready"}}
//                  when every dataset's store is open and its extractor runs, has
//                  reached the node, and the node is not failing; else 503
//                  {"status":"not_ready","reason":"…","datasets":{…}} (e.g. the
//                  extractor's last error when the node is unreachable)
//   GET /ready/<dataset>  the same verdict for one dataset (404 for an unknown one):
//                  a probe of one chain, whatever the others do
//   GET /metrics   every metric of common::Registry::Default() in the Prometheus
//                  text format (names: common/server_metrics.h)
//   GET /datasets  {"datasets":[{name, network, tables, blocks: {start, end}, head,
//                  node_head, lag, ready, receipts, endpoints: [{url, state, …}], …}]}
//   GET /datasets/<dataset>  one dataset's object (404 for an unknown one)
//   GET /streams   {"streams":[{id, query, dataset, started_at, cursor, microbatch,
//                  rows_sent, bytes_sent, microbatches}]}
//
// With API keys configured (ListenOptions::auth, docs/security.md), /health and
// /ready stay open for probes (without credentials /ready omits its reason and
// the datasets' verdicts);
// every other path needs a key or token, else 401 UNAUTHENTICATED.
//
// The per-dataset metrics (stored head, node head, lag, reorgs, reorg depths, RPC
// errors) are registered by Make as callbacks that read the store and the
// extractor at each scrape, and removed when the server is destroyed.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "common/metrics.h"
#include "common/stream_registry.h"
#include "http/http_server.h"
#include "nlohmann/json.hpp"
#include "storage/block_store.h"

namespace sluice::http {

/// \brief One JSON-RPC endpoint of a dataset (ingest::EndpointStatus).
struct EndpointInfo {
  std::string url;    ///< scheme://host[:port] only: never the path, where API keys live
  std::string state;  ///< "up", "down" or "rate_limited"
  std::string last_error;
  uint32_t batch_limit = 0;  ///< most calls per batch, learnt or configured (0: none)
  uint64_t requests = 0, failures = 0, rate_limited = 0;
};

/// \brief What the admin API reads of a dataset's extraction (ingest::Extractor's
/// accessors), at each request.
struct ExtractionStatus {
  bool running = false;  ///< the extraction thread runs
  bool failed = false;   ///< stopped on an error it cannot retry
  std::optional<uint64_t> node_head;  ///< the node's head as last polled
  std::string last_error;             ///< empty when none
  uint64_t rpc_errors = 0;            ///< failed JSON-RPC attempts
  uint64_t reorgs = 0;                ///< reorganizations followed
  uint64_t consecutive_failures = 0;  ///< failed extraction steps in a row
  std::string receipts;  ///< the receipts method in use, e.g. "eth_getBlockReceipts"
  uint64_t failovers = 0;     ///< moves to another endpoint after a failure
  uint64_t rate_limited = 0;  ///< "rate limited" answers (HTTP 429, …)
  uint64_t batch_splits = 0;  ///< batches split after a "too large" answer
  std::vector<EndpointInfo> endpoints;
  uint64_t verified_blocks = 0;        ///< blocks verified before storing (verify)
  uint64_t verification_failures = 0;  ///< fetched ranges that failed verification
};

/// \brief A dataset the admin API reports on.
struct AdminDataset {
  storage::BlockStore* store = nullptr;  ///< not owned; outlives the server
  /// The extractor's state; empty when the dataset is served without
  /// extraction (`extract = false`), which is always ready.
  std::function<ExtractionStatus()> extraction;
};

/// \brief Options of the admin API.
struct AdminOptions {
  ListenOptions listen;
  /// /ready says not ready after this many failed extraction steps in a row
  /// (the extractor retries with backoff: 3 is about 0.7 s of failures).
  uint64_t max_consecutive_failures = 3;
  /// The registries shown; null: the process's (Registry::Default(),
  /// StreamRegistry::Default()).
  common::Registry* registry = nullptr;
  common::StreamRegistry* streams = nullptr;
};

/// \brief The admin HTTP server. Thread-safe.
class AdminServer {
 public:
  /// \brief Bind the address (IOError when taken) and register the datasets'
  /// metrics; serve after Start.
  static arrow::Result<std::unique_ptr<AdminServer>> Make(AdminOptions options,
                                                          std::vector<AdminDataset> datasets);
  ~AdminServer();

  int port() const { return http_->port(); }
  /// \brief "https" with TLS, else "http".
  const char* scheme() const { return http_->scheme(); }
  void Start() { http_->Start(); }
  /// \brief Stop accepting, join. Idempotent.
  void Stop() { http_->Stop(); }

  /// \brief The /ready verdict: nullopt when ready, else the reason.
  std::optional<std::string> NotReadyReason() const;

 private:
  AdminServer() = default;
  /// The /ready verdict of one dataset: nullopt when ready, else the reason.
  std::optional<std::string> NotReadyReason(const AdminDataset& d) const;
  nlohmann::ordered_json DatasetJson(const AdminDataset& d) const;
  const AdminDataset* Find(const std::string& name) const;
  std::string DatasetsJson() const;
  std::string StreamsJson() const;

  AdminOptions options_;
  std::vector<AdminDataset> datasets_;
  std::unique_ptr<HttpServer> http_;
  std::vector<common::CallbackRegistration> callbacks_;
};

}  // namespace sluice::http
