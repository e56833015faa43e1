#include "common/server_metrics.h"

namespace sluice::common {

namespace {
const char* OutcomeName(QueryOutcome outcome) {
  switch (outcome) {
    case QueryOutcome::kOk:
      return "ok";
    case QueryOutcome::kError:
      return "error";
    case QueryOutcome::kCancelled:
      return "cancelled";
  }
  return "error";
}
}  // namespace

const char* QueryKindName(QueryKind kind) {
  switch (kind) {
    case QueryKind::kBatch:
      return "batch";
    case QueryKind::kStream:
      return "stream";
    case QueryKind::kJsonl:
      return "jsonl";
  }
  return "batch";
}

QueryOutcome OutcomeOf(const arrow::Status& status) {
  if (status.ok()) return QueryOutcome::kOk;
  if (status.IsCancelled()) return QueryOutcome::kCancelled;
  return QueryOutcome::kError;
}

ServerMetrics& ServerMetrics::Get() {
  static ServerMetrics* metrics = new ServerMetrics();
  return *metrics;
}

ServerMetrics::ServerMetrics() {
  auto& r = Registry::Default();
  for (int k = 0; k < 3; ++k) {
    std::string kind = QueryKindName(static_cast<QueryKind>(k));
    for (int o = 0; o < 3; ++o) {
      queries_[k][o] = &r.GetCounter(
          "sluice_queries_total",
          "Queries ended, by kind (batch, stream: Arrow Flight; jsonl: JSON Lines over HTTP) "
          "and outcome (ok, error, cancelled)",
          {{"kind", kind}, {"outcome", OutcomeName(static_cast<QueryOutcome>(o))}});
    }
    rows_sent_[k] = &r.GetCounter("sluice_rows_sent_total", "Result rows sent to clients",
                                  {{"kind", kind}});
    bytes_sent_[k] = &r.GetCounter(
        "sluice_bytes_sent_total",
        "Bytes of results sent to clients (Flight: IPC messages and app_metadata; JSON Lines: "
        "the body as sent)",
        {{"kind", kind}});
  }
  active_streams_ = &r.GetGauge("sluice_active_streams", "Streaming queries open now");
  microbatches_ = &r.GetCounter("sluice_microbatches_total",
                                "Microbatches sent by streaming queries (computed or shared)");
  direct_scans_ = &r.GetCounter(
      "sluice_direct_scans_total",
      "Queries answered by reading chain-table segments directly, without the SQL engine");
  for (int c = 0; c < 2; ++c) {
    scan_segments_[c] = &r.GetCounter("sluice_scan_segments_total",
                                      "Segment files read by direct scans, by source (parquet: "
                                      "decoded; cache: the scan cache's Arrow copy)",
                                      {{"source", c ? "cache" : "parquet"}});
  }
  for (int c = 0; c < 2; ++c) {
    scan_row_groups_[c] = &r.GetCounter(
        "sluice_scan_row_groups_total",
        "Row groups of segment files that direct scans with equality filters (needle "
        "queries) read or skipped (by bloom filter or statistics)",
        {{"outcome", c ? "skipped" : "read"}});
  }
  scan_cache_bytes_ = &r.GetGauge("sluice_scan_cache_bytes",
                                  "Bytes on disk of the scan cache's entries");
  for (int c = 0; c < 2; ++c) {
    query_checks_[c] = &r.GetCounter(
        "sluice_query_checks_total",
        "Queries checked by the sandbox, by source (parsed: parsed and checked now; "
        "remembered: the same SQL text was checked before, and a plain scan planned)",
        {{"source", c ? "remembered" : "parsed"}});
  }
}

std::vector<double> ReorgDepthBuckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024}; }

}  // namespace sluice::common
