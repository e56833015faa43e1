// The metrics sluice exports on the admin API's GET /metrics (docs/http.md), all
// declared here: names, help texts, labels, buckets. They live in
// Registry::Default().
//
// Queries (updated by the Flight service and the JSON Lines endpoint):
//   sluice_queries_total{kind, outcome}   counter  kind: batch | stream | jsonl;
//                                                  outcome: ok | error | cancelled
//   sluice_rows_sent_total{kind}          counter  rows sent to clients
//   sluice_bytes_sent_total{kind}         counter  bytes sent (Flight: IPC bodies, IPC
//                                                  metadata and app_metadata; JSON Lines:
//                                                  response body as sent, after gzip)
//   sluice_active_streams                 gauge    streaming queries open now
//   sluice_microbatches_total             counter  microbatches sent by streams
// Direct scans (sql/scan.h; updated by the engine):
//   sluice_direct_scans_total             counter  queries answered from the segments
//                                                  without the SQL engine
//   sluice_scan_segments_total{source}    counter  segment files direct scans read;
//                                                  source: parquet | cache
//   sluice_scan_row_groups_total{outcome} counter  row groups needle scans (equality
//                                                  filters) read | skipped
//   sluice_scan_cache_bytes               gauge    disk the scan cache's entries take
//   sluice_query_checks_total{source}     counter  queries checked by the sandbox:
//                                                  source: parsed | remembered (the
//                                                  same SQL checked before: sql/query_cache.h)
// Datasets (read at each scrape from the store and the extractor; label dataset):
//   sluice_stored_head_block              gauge    newest stored (queryable) block
//   sluice_node_head_block                gauge    the node's head as last polled
//   sluice_head_lag_blocks                gauge    node head - stored head (>= 0)
//   sluice_reorgs_total                   counter  reorgs followed
//   sluice_reorg_depth_blocks             histogram blocks each reorg replaced
//   sluice_rpc_errors_total               counter  failed JSON-RPC attempts
//   sluice_rpc_failovers_total            counter  moves to the next endpoint after a failure
//   sluice_rpc_rate_limited_total         counter  "rate limited" answers (HTTP 429, …)
//   sluice_rpc_batch_splits_total         counter  batches split after a "too large" answer
//   sluice_verified_blocks_total          counter  blocks verified at extraction (verify)
//   sluice_verification_failures_total    counter  fetched ranges that failed verification
#pragma once

#include <string>
#include <vector>

#include "arrow/status.h"
#include "common/metrics.h"

namespace sluice::common {

/// \brief How a query was asked: a Flight batch query, a Flight streaming query,
/// or a JSON Lines request.
enum class QueryKind { kBatch = 0, kStream = 1, kJsonl = 2 };

/// \brief How a query ended: every row sent; an error (planning or execution);
/// or cancelled (the client went away or cancelled; the server shut down).
enum class QueryOutcome { kOk = 0, kError = 1, kCancelled = 2 };

/// \brief OK -> kOk, Cancelled -> kCancelled, any other status -> kError.
QueryOutcome OutcomeOf(const arrow::Status& status);

/// \brief The query metrics of the process (see the header comment), created
/// in Registry::Default() on first use, every label combination at 0.
class ServerMetrics {
 public:
  static ServerMetrics& Get();

  /// \brief Count one query that ended.
  void CountQuery(QueryKind kind, QueryOutcome outcome) {
    queries_[static_cast<int>(kind)][static_cast<int>(outcome)]->Increment();
  }
  /// \brief Count rows and bytes sent to a client.
  void CountSent(QueryKind kind, int64_t rows, int64_t bytes) {
    if (rows > 0) rows_sent_[static_cast<int>(kind)]->Increment(static_cast<uint64_t>(rows));
    if (bytes > 0) bytes_sent_[static_cast<int>(kind)]->Increment(static_cast<uint64_t>(bytes));
  }
  Counter& queries(QueryKind kind, QueryOutcome outcome) {
    return *queries_[static_cast<int>(kind)][static_cast<int>(outcome)];
  }
  Gauge& active_streams() { return *active_streams_; }
  Counter& microbatches() { return *microbatches_; }
  Counter& direct_scans() { return *direct_scans_; }
  /// \brief Segment files read by direct scans: from the scan cache or Parquet.
  Counter& scan_segments(bool cached) { return *scan_segments_[cached ? 1 : 0]; }
  /// Row groups of segment files a direct scan with equality filters read, or
  /// skipped by their bloom filters or statistics.
  Counter& scan_row_groups(bool skipped) { return *scan_row_groups_[skipped ? 1 : 0]; }
  Gauge& scan_cache_bytes() { return *scan_cache_bytes_; }
  /// \brief Queries checked: parsed now, or remembered from an earlier check.
  Counter& query_checks(bool remembered) { return *query_checks_[remembered ? 1 : 0]; }

 private:
  ServerMetrics();
  Counter* queries_[3][3];
  Counter* rows_sent_[3];
  Counter* bytes_sent_[3];
  Gauge* active_streams_;
  Counter* microbatches_;
  Counter* direct_scans_;
  Counter* scan_segments_[2];
  Counter* scan_row_groups_[2];
  Gauge* scan_cache_bytes_;
  Counter* query_checks_[2];
};

/// \brief "batch", "stream" or "jsonl".
const char* QueryKindName(QueryKind kind);

/// Names and help of the per-dataset metrics (label `dataset`), registered as
/// callbacks by the admin API.
inline constexpr const char* kStoredHeadBlock = "sluice_stored_head_block";
inline constexpr const char* kStoredHeadBlockHelp = "Newest block stored and queryable";
inline constexpr const char* kNodeHeadBlock = "sluice_node_head_block";
inline constexpr const char* kNodeHeadBlockHelp =
    "The node's head block as last polled (eth_getBlockByNumber(\"latest\"))";
inline constexpr const char* kHeadLagBlocks = "sluice_head_lag_blocks";
inline constexpr const char* kHeadLagBlocksHelp =
    "Blocks the stored head is behind the node's head";
inline constexpr const char* kReorgsTotal = "sluice_reorgs_total";
inline constexpr const char* kReorgsTotalHelp =
    "Chain reorganizations followed (store truncations)";
inline constexpr const char* kReorgDepthBlocks = "sluice_reorg_depth_blocks";
inline constexpr const char* kReorgDepthBlocksHelp =
    "Blocks replaced by each reorganization (stored head - common ancestor)";
inline constexpr const char* kRpcErrorsTotal = "sluice_rpc_errors_total";
inline constexpr const char* kRpcErrorsTotalHelp =
    "Failed JSON-RPC attempts to the node (calls and batches, retried)";
inline constexpr const char* kVerifiedBlocksTotal = "sluice_verified_blocks_total";
inline constexpr const char* kVerifiedBlocksTotalHelp =
    "Blocks whose hash, roots and bloom were recomputed and matched before storing (verify)";
inline constexpr const char* kVerificationFailuresTotal = "sluice_verification_failures_total";
inline constexpr const char* kVerificationFailuresTotalHelp =
    "Fetched block ranges that failed verification (each stops the dataset's extraction)";

inline constexpr const char* kRpcFailoversTotal = "sluice_rpc_failovers_total";
inline constexpr const char* kRpcFailoversTotalHelp =
    "Times extraction moved on to the next JSON-RPC endpoint after one failed";
inline constexpr const char* kRpcRateLimitedTotal = "sluice_rpc_rate_limited_total";
inline constexpr const char* kRpcRateLimitedTotalHelp =
    "Answers of the node saying it is rate limited (HTTP 429, JSON-RPC 429/-32005/-32007)";
inline constexpr const char* kRpcBatchSplitsTotal = "sluice_rpc_batch_splits_total";
inline constexpr const char* kRpcBatchSplitsTotalHelp =
    "JSON-RPC batches split after the node refused them for their size";

/// \brief The buckets of sluice_reorg_depth_blocks: 1, 2, 4, … 256 (the default
/// max_reorg_depth), 1024.
std::vector<double> ReorgDepthBuckets();

}  // namespace sluice::common
