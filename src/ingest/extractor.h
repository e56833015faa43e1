// The extractor: follows an EVM chain through a JSON-RPC node and appends its
// blocks, transactions and logs to a BlockStore, in block order, following
// reorganisations.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/util/cancel.h"
#include "ingest/node_client.h"
#include "ingest/poll_pacer.h"
#include "storage/block_store.h"

namespace sluice::ingest {

class RpcClient;
class EvmDecoder;

/// \brief How the node's receipts are fetched.
enum class ReceiptsMode {
  kAuto,         ///< kBlock when every endpoint has eth_getBlockReceipts (asked at start)
  kBlock,        ///< eth_getBlockReceipts(n): one call per block
  kTransaction,  ///< eth_getTransactionReceipt(hash): one call per transaction
};

/// \brief Up to which block of the node extraction goes (with finality_depth).
enum class FinalityTag {
  kLatest,     ///< the head (`eth_getBlockByNumber("latest")`)
  kSafe,       ///< the node's `safe` block
  kFinalized,  ///< the node's `finalized` block
};

/// \brief Options of an Extractor. Validated by Extractor::Make.
struct ExtractorOptions {
  /// The node's JSON-RPC HTTP endpoint(s) (failover order, ingest/node_client.h),
  /// timeouts, rate and batch limits.
  NodeOptions node;
  /// How receipts are fetched.
  ReceiptsMode receipts = ReceiptsMode::kAuto;
  /// First block to extract into an empty store (default 0). Ignored when the
  /// store has blocks: extraction resumes at the stored head + 1.
  std::optional<uint64_t> start_block;
  /// Blocks per JSON-RPC batch request (2 calls per block:
  /// eth_getBlockByNumber(n, true) and eth_getBlockReceipts(n)). >= 1.
  uint32_t batch_blocks = 50;
  /// Concurrent batch requests during backfill (one thread and one HTTP
  /// connection each). >= 1.
  uint32_t max_in_flight = 4;
  /// Head polling interval (eth_getBlockByNumber("latest")) once caught up.
  /// Around the time the next block is due (PollPacer) the head is polled ten
  /// times as often.
  std::chrono::milliseconds poll_interval{50};
  /// During backfill, publish (Append) at least this often ...
  std::chrono::milliseconds commit_interval{250};
  /// ... and at the latest every this many blocks. >= 1.
  uint32_t commit_blocks = 1000;
  /// Deepest reorganisation followed. A deeper one stops the extractor with an
  /// error (see Extractor::failed()).
  uint32_t max_reorg_depth = 256;
  /// Retry delay after a failed RPC call: doubles per consecutive failure from
  /// backoff_initial up to backoff_max, reset by a success.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10000};
  /// While caught up, re-check the stored head's hash against the node this
  /// often, so a reorganisation that keeps the chain's height is noticed before
  /// the next block arrives.
  std::chrono::milliseconds head_recheck_interval{1000};
  /// How long Start waits for the node's answer to the start checks. An
  /// unreachable or slow node does not fail Start; the checks are retried.
  std::chrono::milliseconds start_timeout{5000};
  /// Stop extracting once this block is stored (inclusive); nullopt: follow
  /// the head forever.
  std::optional<uint64_t> stop_at;
  /// Finality: extract only blocks at least this many below the node's head
  /// (polled with `eth_getBlockByNumber("latest")`), so that reorgs shallower than that never reach the store.
  uint64_t finality_depth = 0;
  /// Finality: extract only up to the node's block of this tag
  /// (`eth_getBlockByNumber("safe" | "finalized")`). A node that does not know the
  /// tag fails Start (checked on every endpoint before its first use).
  FinalityTag finality = FinalityTag::kLatest;
  /// Verify every fetched block before storing it (verify/block_verifier.h:
  /// block hash, transactions and receipts roots, logs bloom, recomputed from
  /// the decoded rows). A mismatch stops the extractor with an error naming the
  /// block (see failed(), last_error()); the blocks stored before stay.
  bool verify = false;

  /// \brief Invalid when a field is out of range.
  arrow::Status Validate() const;
};

/// \brief Extracts one dataset from one node into one store.
///
/// Lifecycle: Make, Start (checks the chain identity, spawns the threads),
/// Stop (joins). Start may be called again after Stop; it resumes at the stored
/// head + 1.
///
/// Behaviour:
/// - Start checks, on each endpoint before its first use: `eth_chainId` and the
///   hash of block 0 form the ChainIdentity; a store holding another chain's data
///   is refused (Start returns Invalid; on an endpoint checked later, extraction
///   stops), a store without identity gets this one (BlockStore::SetIdentity).
///   With ReceiptsMode::kAuto, `eth_getBlockReceipts("latest")` tells whether the
///   node has that method; if one endpoint lacks it receipts are fetched per
///   transaction from then on. With a finality tag, `eth_getBlockByNumber(tag)`
///   must not be refused (else Start returns Invalid).
/// - Backfill: while the stored head is more than batch_blocks behind the
///   node's head, max_in_flight batch requests are in flight; results are
///   appended strictly in block order, in ranges of up to commit_blocks blocks,
///   at least every commit_interval.
/// - Head: the node's head is polled every poll_interval, and every
///   poll_interval / 10 around the time the next block is due (PollPacer); new
///   blocks are fetched and appended at once.
/// - Continuity and reorgs: a block is appended only if its parent hash is the
///   stored head's hash. Otherwise the extractor walks back (at most
///   max_reorg_depth blocks) to the newest block whose stored hash equals the
///   node's, truncates the store above it and continues from there. When the
///   node's chain is shorter than the store, it waits and deletes nothing.
/// - Failures: failed calls fail over to the next endpoint (NodeClient), and are
///   retried with exponential backoff, at least as long as a rate-limiting node
///   asked (Retry-After), counted and logged (warn, rate-limited). The extractor
///   never throws; it stops only on Stop(), a refused identity or finality tag, a
///   reorg deeper than max_reorg_depth, a block that fails verification (with
///   `verify`), or stop_at.
class Extractor {
 public:
  /// \brief Create an extractor writing into `store` (not owned; must outlive
  /// the extractor). The store must have been opened with EvmTables().
  /// Invalid on bad options.
  static arrow::Result<std::unique_ptr<Extractor>> Make(ExtractorOptions options,
                                                        storage::BlockStore* store);
  /// \brief Stops and joins.
  ~Extractor();

  /// \brief Start extracting on background threads, after checking the node's
  /// chain identity against the store's (waiting at most start_timeout for it).
  ///
  /// Errors: Invalid when the node serves another chain than the store holds
  /// (the message names both chain ids and genesis hashes); Invalid when
  /// already running. An unreachable or slow node is not an error: the identity
  /// check is retried in the background (see last_error(), rpc_errors()).
  arrow::Status Start();

  /// \brief Stop extracting and join the threads. Returns within about 100 ms
  /// plus the time of an Append in progress, even while a request is in
  /// flight or the extractor is backing off. Idempotent.
  void Stop();

  /// \brief The node's head as last polled (eth_getBlockByNumber("latest")), if ever polled.
  std::optional<uint64_t> node_head() const;
  /// \brief The newest stored block.
  std::optional<uint64_t> stored_head() const;
  /// \brief The last error (RPC failure, refused identity, too deep reorg), or
  /// empty if none happened since Start.
  std::string last_error() const;
  /// \brief The node's endpoints: their state and what was learnt of them.
  std::vector<EndpointStatus> endpoints() const { return endpoints_->Status(); }
  /// \brief Failovers, rate-limited answers and batch splits so far.
  NodeCounters node_counters() const { return endpoints_->counters(); }
  /// \brief How receipts are fetched now: kBlock or kTransaction.
  ReceiptsMode receipts_mode() const {
    return block_receipts_.load() ? ReceiptsMode::kBlock : ReceiptsMode::kTransaction;
  }
  /// \brief Failed RPC attempts (calls and batches, including undecodable
  /// answers) since Make.
  uint64_t rpc_errors() const { return rpc_errors_.load(); }
  /// \brief Reorganisations followed (store truncations) since Make.
  uint64_t reorgs() const { return reorgs_.load(); }
  /// \brief Extraction steps that failed in a row (0 once one succeeds): how
  /// long the node has been failing, e.g. unreachable. See last_error().
  uint64_t consecutive_failures() const { return consecutive_failures_.load(); }
  /// \brief True between Start and Stop while the extraction thread runs.
  bool running() const { return running_.load(); }
  /// \brief True when extraction stopped on an error it cannot retry (refused
  /// identity, reorg deeper than max_reorg_depth, a block failing verification).
  /// See last_error().
  bool failed() const { return failed_.load(); }
  /// \brief Blocks fetched and verified (with `verify`) since Make.
  uint64_t verified_blocks() const { return verified_blocks_.load(); }
  /// \brief Fetched ranges that failed verification since Make (each stops the extractor).
  uint64_t verification_failures() const { return verification_failures_.load(); }
  /// \brief True when stop_at was reached.
  bool finished() const { return finished_.load(); }

  const ExtractorOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  Extractor(ExtractorOptions options, storage::BlockStore* store);

  struct Job {
    uint64_t generation;
    uint64_t first, last;
  };

  void Run();
  void WorkerLoop(NodeClient* client, EvmDecoder* decoder);

  /// The start checks of one endpoint (NodeEndpoints::Check): identity, receipts
  /// method, finality tag. Sets fatal_ on what cannot be retried.
  arrow::Status CheckEndpoint(RpcClient* client, size_t endpoint);
  arrow::Status CheckIdentity(RpcClient* client, const std::string& url);
  arrow::Status Step();
  arrow::Status VerifyStoredHead(uint64_t node_head);
  arrow::Status FollowHead(uint64_t first, uint64_t last);
  arrow::Status Backfill(uint64_t first, uint64_t last);
  arrow::Status HandleReorg();
  arrow::Status Commit(std::vector<storage::BlockRangeData>* pending);
  arrow::Result<storage::BlockRangeData> FetchRange(NodeClient* client, EvmDecoder* decoder,
                                                   uint64_t first, uint64_t last);
  /// The node's newest block (`eth_getBlockByNumber("latest", false)`): its
  /// number and hash in one call, so a reorg that keeps the height is seen at once.
  arrow::Result<storage::BlockHeader> FetchLatest();
  void AbortRound();

  /// Remember `st` as the error that stops extraction (the first one wins) and
  /// pass it on. Any thread.
  arrow::Status Fatal(arrow::Status st);
  /// Count a failed RPC attempt (not a cancellation) and pass the status on.
  arrow::Status CountRpc(arrow::Status st);
  template <typename T>
  arrow::Result<T> CountRpc(arrow::Result<T> r) {
    if (!r.ok() && !r.status().IsCancelled()) rpc_errors_.fetch_add(1);
    return r;
  }
  /// Remember `st` as the last error and log it (warn, rate-limited).
  void RecordError(const arrow::Status& st);
  void JoinThreads();
  /// Sleep up to `d`; false when stopping.
  bool SleepFor(std::chrono::milliseconds d);
  bool stopping() const { return stopping_.load(); }

  ExtractorOptions options_;
  storage::BlockStore* store_;

  std::unique_ptr<arrow::StopSource> stop_source_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;
  std::shared_ptr<NodeEndpoints> endpoints_;
  std::unique_ptr<NodeClient> client_;  // the extraction thread's
  std::unique_ptr<EvmDecoder> decoder_;
  std::vector<std::unique_ptr<NodeClient>> worker_clients_;
  std::vector<std::unique_ptr<EvmDecoder>> worker_decoders_;

  // Backfill work queue and results (guarded by mu_).
  std::mutex mu_;
  std::condition_variable work_cv_;    // workers wait for jobs
  std::condition_variable result_cv_;  // the extraction thread waits for results
  std::condition_variable sleep_cv_;   // interruptible sleeps
  std::deque<Job> jobs_;
  std::map<uint64_t, arrow::Result<storage::BlockRangeData>> results_;  // by first block
  uint64_t generation_ = 0;

  // The first identity check's outcome, for Start (guarded by mu_).
  enum class IdentityState { kPending, kDone };
  IdentityState identity_state_ = IdentityState::kPending;
  arrow::Status identity_status_;
  std::condition_variable identity_cv_;

  // State of the extraction thread.
  bool identity_checked_ = false;
  Clock::time_point last_head_check_{};
  bool verify_head_ = true;
  std::atomic<bool> fatal_{false};  // set by any thread's start checks too
  std::atomic<bool> block_receipts_{true};
  std::optional<uint64_t> restart_from_;  // after a reorg removed every stored block
  Clock::time_point last_behind_log_{};
  PollPacer pacer_;

  // Status.
  static constexpr uint64_t kNone = UINT64_MAX;
  std::atomic<uint64_t> node_head_{kNone};
  std::atomic<uint64_t> stored_head_{kNone};
  std::atomic<uint64_t> rpc_errors_{0};
  std::atomic<uint64_t> reorgs_{0};
  std::atomic<uint64_t> verified_blocks_{0};
  std::atomic<uint64_t> verification_failures_{0};
  std::atomic<uint64_t> consecutive_failures_{0};
  std::atomic<bool> running_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> finished_{false};
  mutable std::mutex error_mu_;
  std::string last_error_;
  arrow::Status fatal_status_;  // what stopped extraction (guarded by error_mu_)
  // Rate limit of warnings (guarded by error_mu_).
  Clock::time_point last_warn_{};
  uint64_t suppressed_warns_ = 0;
};

}  // namespace sluice::ingest
