// Server configuration. Every setting is declared once, in SLUICE_SETTINGS (the
// server's) or SLUICE_DATASET_SETTINGS (each dataset's) below: its name (the TOML
// key), type, default and description. The config file parser, the environment
// (AMP_CONFIG_<KEY>), the command-line flags (--key-with-dashes) and
// `sluice serve --help` all follow from those lists.
//
// Precedence: defaults < .amp/config.toml (or --config FILE) < environment < flags.
//
// Datasets (docs/datasets.md). The file lists them as an array of tables:
//
//   [[datasets]]
//   name = "mainnet"                    # the dataset (SQL schema); key `dataset` elsewhere
//   network = "mainnet"
//   rpc_url = ["https://a.example/KEY", "https://b.example/KEY"]   # failover order
//   finalized_only = true
//
// Without [[datasets]], the dataset keys at the top level (rpc_url, dataset,
// network, start_block, ...) describe the one dataset served: the shorthand of a
// single chain. With [[datasets]], top-level values of dataset keys (file,
// environment, flags) are defaults that every [[datasets]] table may override,
// except `dataset`, `network` and `rpc_url`, which each table gives itself.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"

namespace sluice {

/// \brief A setting holding several strings: a TOML array of strings (or one
/// string); as a flag or environment value, comma-separated.
using StringList = std::vector<std::string>;

// X(name, type, default, description): the server's settings.
#define SLUICE_SETTINGS(X)                                                                      \
  X(data_dir, std::string, "data", "Directory holding the Parquet segments of every dataset")   \
  X(flight_addr, std::string, "0.0.0.0:1602", "Arrow Flight listen address, host:port")         \
  X(jsonl_addr, std::string, "0.0.0.0:1603", "JSON Lines over HTTP listen address, host:port")  \
  X(admin_api_addr, std::string, "0.0.0.0:1610",                                               \
    "Admin API (health, readiness, metrics) listen address, host:port")                        \
  X(rows_per_batch, int64_t, 65536, "Rows per Arrow record batch sent to clients")              \
  X(query_threads, int64_t, 0, "Engine threads (0: one per core)")                              \
  X(query_max_mem_mb, int64_t, 0, "Engine memory limit in MiB (0: engine default)")              \
  X(direct_scan, bool, true,                                                                   \
    "Answer plain scans of chain tables from the segments without the SQL engine")             \
  X(scan_cache_max_mb, int64_t, 8192,                                                          \
    "Disk (MiB) for segments kept as Arrow IPC for direct scans, in data_dir/.scan_cache; 0: off") \
  X(postgres_url, std::string, "",                                                             \
    "PostgreSQL URL of the metadata shared by extract workers and query servers "              \
    "(docs/deploy.md); empty: manifest.json in data_dir (the single process)")                 \
  X(object_store_url, std::string, "",                                                         \
    "Segments in an S3-compatible object store: s3://bucket/prefix?endpoint_override="         \
    "host:port&scheme=http (credentials: object_store_access_key/_secret_key or the AWS "       \
    "environment); empty: segments in data_dir")                                               \
  X(object_store_access_key, std::string, "", "Access key of object_store_url")                \
  X(object_store_secret_key, std::string, "",                                                  \
    "Secret key of object_store_url (prefer AMP_CONFIG_OBJECT_STORE_SECRET_KEY to a flag)")    \
  X(segment_cache_max_mb, int64_t, 8192,                                                       \
    "Disk (MiB) for segments fetched from the object store, in data_dir/.segment_cache, "      \
    "least recently used evicted first")                                                       \
  X(gc_grace_secs, int64_t, 600,                                                               \
    "Seconds a compacted or reorged-away segment stays in the shared store before the "        \
    "extract worker deletes it (queries older than that may fail and are retried)")           \
  X(lease_poll_secs, double, 0.5,                                                              \
    "Seconds between a standby extract worker's attempts to take its dataset's lease")         \
  X(endpoint_locations, std::string, "",                                                       \
    "Comma-separated Flight URIs of the query servers sharing this store, named as the "       \
    "locations of every endpoint of a FlightInfo split by endpoint_max_blocks")                \
  X(endpoint_max_blocks, int64_t, 0,                                                           \
    "Split a batch query that can be split by block range into endpoints of at most this "     \
    "many blocks, read in parallel by clients (0: one endpoint)")                              \
  X(testing_commit_pause_ms, int64_t, 0,                                                       \
    "FOR TESTS ONLY: an extract worker's commit waits this long inside its PostgreSQL "        \
    "transaction before COMMIT (0: no pause)")                                                 \
  X(ticket_ttl_secs, int64_t, 300, "Seconds a ticket from GetFlightInfo stays valid")           \
  X(ticket_secret, std::string, "",                                                            \
    "Hex key that signs tickets (empty: random per process; set it to share tickets "           \
    "between servers)")                                                                         \
  X(server_microbatch_max_interval, int64_t, 1000, "Most blocks in one streaming microbatch")   \
  X(keep_alive_interval, int64_t, 30, "Seconds between keep-alive messages (minimum 30)")      \
  X(testing_keep_alive_interval_ms, int64_t, 0,                                                \
    "FOR TESTS ONLY: keep-alive interval in milliseconds, overriding keep_alive_interval "     \
    "and its minimum (0: unused)")                                                             \
  X(log_level, std::string, "info", "trace, debug, info, warn or error")                      \
  X(api_keys_file, std::string, "",                                                            \
    "File of API keys, one per line; with api_keys (config file) and SLUICE_API_KEYS "          \
    "(environment), any key turns authentication on (docs/security.md)")                       \
  X(auth_token_ttl_secs, int64_t, 0,                                                           \
    "Seconds a bearer token from the Flight Handshake stays valid (0: as long as its API "     \
    "key is configured, so clients that handshake once, like spicepy, keep working)")         \
  X(tls_cert_file, std::string, "",                                                            \
    "PEM certificate chain: serve Flight (grpc+tls), JSON Lines and admin API (https) "         \
    "over TLS (with tls_key_file)")                                                            \
  X(tls_key_file, std::string, "", "PEM private key of tls_cert_file")                         \
  X(max_concurrent_queries, int64_t, 64,                                                       \
    "Batch queries (Flight and JSON Lines) running at once; more are refused at once "         \
    "(Flight UNAVAILABLE 'RESOURCE_EXHAUSTED: …', HTTP 429) (0: no limit)")                    \
  X(max_concurrent_streams, int64_t, 1024,                                                     \
    "Streaming queries open at once; more are refused at once (Flight UNAVAILABLE "            \
    "'RESOURCE_EXHAUSTED: …') (0: no limit)")                                                  \
  X(query_timeout_secs, double, 300,                                                           \
    "Longest a batch query may run, from DoGet or the JSON Lines request to its last row; "    \
    "longer ones stop with DEADLINE_EXCEEDED / HTTP 504 (0: no limit). Below spicepy's own "   \
    "600 s client timeout, so its users see the server's message")                             \
  X(eth_call_timeout_secs, double, 10,                                                         \
    "Longest wait for the node's answer to one eth_call request from SQL (a JSON-RPC batch "   \
    "of up to 64 calls); longer fails the query")                                              \
  X(eth_call_max_calls, int64_t, 10000,                                                        \
    "Most calls to the node that eth_call makes in one query (identical calls count once); "   \
    "more fails the query (0: eth_call is off)")


// X(name, type, default, description): each dataset's settings (docs/datasets.md).
// At the top level of the file, as flags and as environment variables they set
// the one dataset of the shorthand, or the defaults of every [[datasets]] table.
#define SLUICE_DATASET_SETTINGS(X)                                                              \
  X(dataset, std::string, "eth_rpc",                                                           \
    "Dataset (SQL schema) name of the extracted tables; in a [[datasets]] table the key "       \
    "`name`")                                                                                   \
  X(network, std::string, "anvil", "Network name reported in app_metadata ranges and cursors")  \
  X(rpc_url, StringList, StringList{"http://127.0.0.1:8545"},                                  \
    "EVM JSON-RPC endpoint(s) to extract from; several (TOML array, or comma-separated) are "    \
    "used in that order, failing over to the next when one fails")                             \
  X(start_block, int64_t, 0, "First block to extract when the dataset is empty")               \
  X(extract, bool, true, "Follow the node; false serves only what is stored")                   \
  X(poll_interval_secs, double, 0.05,                                                          \
    "Seconds between polls of the node's latest block; a tenth of it while the next block "     \
    "is due (a window learnt from the last 8 block intervals)")                                 \
  X(finality_depth, int64_t, 0,                                                                \
    "Serve only blocks at least this many below the node's head (0: up to the head)")          \
  X(finalized_only, bool, false,                                                               \
    "Serve only blocks up to the node's `finalized` block (same as finality_tag = "             \
    "\"finalized\")")                                                                           \
  X(finality_tag, std::string, "latest",                                                       \
    "Serve only blocks up to the node's block of this tag: latest, safe or finalized; a node "  \
    "that does not know the tag is refused at start")                                          \
  X(max_reorg_depth, int64_t, 256, "Deepest reorg followed; deeper stops extraction loudly")   \
  X(verify, bool, false,                                                                       \
    "Recompute each fetched block's hash, transactions root, receipts root and logs bloom "   \
    "from its rows before storing it; a mismatch stops this dataset's extraction loudly"        \
    " (what is verified stays served)")                                                        \
  X(rpc_batch_blocks, int64_t, 50, "Blocks per JSON-RPC batch request during backfill")          \
  X(rpc_max_in_flight, int64_t, 4, "Concurrent JSON-RPC batch requests during backfill")        \
  X(rpc_batch_max_calls, int64_t, 0,                                                           \
    "Most calls in one JSON-RPC batch request (1: no batches; 0: no limit until the node "      \
    "refuses a batch for its size, which is then split and the size remembered)")              \
  X(rpc_receipts, std::string, "auto",                                                         \
    "How receipts are fetched: block (eth_getBlockReceipts), transaction "                      \
    "(eth_getTransactionReceipt per transaction) or auto (block when the node has it, found "   \
    "out at start)")                                                                            \
  X(rpc_failback_secs, double, 30,                                                             \
    "With several rpc_url: seconds a failed endpoint is left aside before it is tried again")  \
  X(rpc_retry_after_max_secs, double, 60,                                                      \
    "Longest wait honoured from a node's HTTP 429 Retry-After (longer ones are cut to this)")   \
  X(rpc_max_requests_per_sec, double, 0,                                                       \
    "Most JSON-RPC HTTP requests per second to the node, all threads together (0: no limit)")   \
  X(rpc_timeout_secs, double, 30, "Longest a JSON-RPC HTTP request may take")

/// \brief One dataset: a chain followed through its node(s) into its own storage,
/// `<data_dir>/<dataset>/`.
struct DatasetConfig {
#define SLUICE_DECLARE_FIELD(name, type, def, desc) type name = def;
  SLUICE_DATASET_SETTINGS(SLUICE_DECLARE_FIELD)
#undef SLUICE_DECLARE_FIELD

  /// \brief Check ranges and combinations. Invalid naming the dataset and the key.
  arrow::Status Validate() const;
  /// \brief The tag extraction stops at: "latest", "safe" or "finalized"
  /// (finalized_only = true means "finalized").
  std::string EffectiveFinalityTag() const {
    return finalized_only ? std::string("finalized") : finality_tag;
  }
};

/// \brief A table defined by SQL over the chain tables (a view), e.g.
/// `eth.nft_transfers`. TOML: an array of tables
///   [[derived_tables]]
///   name = "eth.nft_transfers"
///   sql = "SELECT … FROM eth_rpc.logs WHERE …"
struct DerivedTable {
  std::string name;  ///< "<schema>.<table>"
  std::string sql;   ///< one SELECT; streaming works when it is incrementalizable
};

/// \brief The validated server configuration. Its DatasetConfig part holds the
/// dataset settings given at the top level (file, environment, flags): the one
/// dataset of the shorthand, or the defaults of the [[datasets]] tables.
struct Config : DatasetConfig {
#define SLUICE_DECLARE_FIELD(name, type, def, desc) type name = def;
  SLUICE_SETTINGS(SLUICE_DECLARE_FIELD)
#undef SLUICE_DECLARE_FIELD

  /// Derived tables, from the TOML array `derived_tables` (not a flag).
  std::vector<DerivedTable> derived_tables;

  /// API keys, from the TOML array `api_keys` and the environment variable
  /// SLUICE_API_KEYS (comma-separated); never a flag (command lines are visible
  /// to every user of the machine). See common/auth.h.
  std::vector<std::string> api_keys;

  /// \brief A [[datasets]] table: its values, and which keys it set itself.
  struct DatasetTable {
    DatasetConfig values;
    std::set<std::string> keys;
  };
  /// The [[datasets]] tables, in file order (empty: the shorthand).
  std::vector<DatasetTable> dataset_tables;
  /// The dataset settings set at the top level (file, environment or flags).
  std::set<std::string> top_level_keys;

  /// \brief The datasets to serve: the [[datasets]] tables over the top-level
  /// defaults, or the one dataset of the top-level keys. Not validated.
  std::vector<DatasetConfig> Datasets() const;

  /// \brief Check ranges and combinations, of the server's settings and of every
  /// dataset (unique names and networks). Invalid with the offending key's name.
  arrow::Status Validate() const;
};

/// \brief One declared setting, for parsers and help text.
struct SettingInfo {
  std::string name;         ///< TOML key, e.g. "keep_alive_interval"
  std::string type;         ///< "string", "integer", "float", "boolean" or "list"
  std::string default_str;  ///< the default, printed
  std::string description;
  bool per_dataset = false;  ///< declared in SLUICE_DATASET_SETTINGS
};

/// \brief Every declared setting: the server's, then the datasets', each in
/// declaration order.
const std::vector<SettingInfo>& Settings();

/// \brief Set one setting from its text form (flag or environment value); a
/// dataset setting is set at the top level. Invalid names the key when it is
/// unknown or the value does not parse.
arrow::Status SetFromString(Config* config, const std::string& name, const std::string& value);

/// \brief Apply a TOML file. Invalid names any unknown key (with the file name).
arrow::Status ApplyTomlFile(Config* config, const std::string& path);

/// \brief Apply AMP_CONFIG_<KEY> environment variables, and add the keys of
/// SLUICE_API_KEYS to api_keys.
arrow::Status ApplyEnvironment(Config* config);

}  // namespace sluice
