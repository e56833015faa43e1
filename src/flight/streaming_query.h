// A streaming query (seed 001, protocol.md §3): the query runs in a loop of
// microbatches, each over a block range [start, end] of at most
// `microbatch_max_blocks` blocks, from the query's earliest block (or the resume
// cursor) to the chain head, then one microbatch per arrival of new blocks, for
// ever. Every message is a record batch with app_metadata (flight/app_metadata.h
// lists the kinds).
//
// How a microbatch is computed (StreamPlan::Mode):
//   - kScan, a query reading one table without grouping: runs once with the table
//     restricted to the microbatch's blocks. Its rows come out in block order (the
//     files are scanned in order), so BlockComplete follows the rows when the
//     result has a `block_num` column, else comes at the end;
//   - kPerBlock (several tables without a join, e.g. UNION ALL; joins that
//     equate block_num, whose rows never span blocks; GROUP BY block_num): runs
//     once per block with every table restricted to that block, so rows are
//     delivered in block order and each block's groups are whole;
//   - kDeltaJoin, a query joining tables on anything else: runs block by block;
//     for block b and tables T1..Tn, Δ(T1 ⋈ … ⋈ Tn) is the union, over every
//     non-empty set S of tables, of the query with the tables in S restricted to block b and the
//     others to the blocks before b (protocol.md §3). A joined row thus appears
//     exactly once, in the microbatch of the greater of its sides' blocks.
//
// Waiting for new blocks is a wait on the block store's condition variable
// (BlockStore::WaitForVersion), woken by the writer: no polling, and one
// extraction however many streams follow the chain.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrow/flight/server.h"
#include "arrow/ipc/writer.h"
#include "common/server_metrics.h"
#include "common/stream_registry.h"
#include "flight/app_metadata.h"
#include "flight/cursor.h"
#include "flight/microbatch_cache.h"
#include "sql/engine.h"

namespace sluice::flight {

/// \brief Options of streaming queries (protocol.md §7).
struct StreamOptions {
  int64_t rows_per_batch = 65536;
  /// Record batches of wide rows end at about this many bytes (sql::ResultReader);
  /// 0 when the client asked for a fetch size, which is then kept exactly.
  int64_t soft_batch_bytes = sql::kDefaultBatchBytes;
  uint64_t microbatch_max_blocks = 1000;  ///< server_microbatch_max_interval
  std::chrono::milliseconds keep_alive{30000};
  /// Shares microbatch results between streams of the same query (may be null).
  std::shared_ptr<MicrobatchCache> cache;
};

/// \brief What a streaming query reads and where it starts.
struct StreamPlan {
  std::string sql;                      ///< SETTINGS clause removed
  storage::BlockStore* store = nullptr;  ///< the dataset the query streams over
  std::vector<std::string> tables;      ///< its tables the query reads (each once)
  enum class Mode { kScan, kPerBlock, kDeltaJoin };
  Mode mode = Mode::kScan;              ///< see the header comment
  std::optional<CursorPosition> resume;  ///< continue after this block
};

/// \brief Where a stream resuming after `resume` continues: the cursor itself
/// when its block is canonical, else the common ancestor of its fork and the
/// canonical chain (`reorged` true: the next microbatch is flagged is_reorg).
/// Invalid when the block is not extracted yet, below the stored range, or on a
/// fork this server never stored.
arrow::Result<CursorPosition> ResolveResume(const storage::BlockStore& store,
                                            const storage::Snapshot& snapshot,
                                            const CursorPosition& resume, bool* reorged);

/// \brief The FlightDataStream of a streaming query. Never ends by itself; ends
/// when the client cancels (checked between messages and while waiting).
///
/// While it lives it is listed in common::StreamRegistry::Default() (GET
/// /streams, gauge sluice_active_streams); it counts its microbatches, rows and
/// bytes sent, and itself in sluice_queries_total{kind="stream"} when it ends.
class StreamingQuery : public arrow::flight::FlightDataStream {
 public:
  static arrow::Result<std::unique_ptr<StreamingQuery>> Make(
      sql::Engine* engine, StreamPlan plan, StreamOptions options,
      std::shared_ptr<arrow::Schema> schema, const arrow::flight::ServerCallContext* context);
  ~StreamingQuery() override;

  std::shared_ptr<arrow::Schema> schema() override { return schema_; }
  arrow::Result<arrow::flight::FlightPayload> GetSchemaPayload() override;
  arrow::Result<arrow::flight::FlightPayload> Next() override;

 private:
  // One engine run of a microbatch: table ranges, and the block through which
  // every row has been sent once it is done (join queries run block by block).
  struct Execution {
    std::map<std::string, sql::TableRange> ranges;
    std::optional<uint64_t> completes_block;
  };
  struct Microbatch {
    RangeInfo range;
    std::shared_ptr<const storage::Snapshot> snapshot;
    std::unique_ptr<sql::Session> session;
    std::vector<Execution> executions;
    size_t next_execution = 0;
    std::unique_ptr<sql::ResultReader> reader;
    uint64_t complete_from = 0;  // first block not yet announced complete
    bool is_reorg = false;
    std::chrono::steady_clock::time_point started;
    std::shared_ptr<SharedMicrobatch> shared;  // set while this stream computes it for others
    ~Microbatch() {
      if (shared) shared->Abandon();
    }
  };

  StreamingQuery() = default;
  arrow::Status StartMicrobatch(std::shared_ptr<const storage::Snapshot> snapshot,
                                storage::BlockRange numbers, bool is_reorg);
  arrow::Status Advance();  // make progress; may enqueue messages
  void FinishMicrobatch(const RangeInfo& range);
  arrow::Status CheckReorg(const storage::Snapshot& snapshot, bool* reorged);
  void Enqueue(std::shared_ptr<arrow::RecordBatch> batch, nlohmann::json metadata);
  void Count(common::QueryOutcome outcome);
  void EnqueueBlockComplete(uint64_t start, uint64_t end);
  nlohmann::json Metadata(const std::string& kind, bool ranges_complete) const;

  sql::Engine* engine_ = nullptr;
  StreamPlan plan_;
  StreamOptions options_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::RecordBatch> empty_;
  const arrow::flight::ServerCallContext* context_ = nullptr;
  arrow::ipc::IpcWriteOptions ipc_options_ = arrow::ipc::IpcWriteOptions::Defaults();
  int block_num_column_ = -1;

  std::optional<uint64_t> next_block_;        // first block of the next microbatch
  std::optional<CursorPosition> cursor_;      // last block completely sent
  std::optional<RangeInfo> last_range_;       // of the last finished microbatch (keep-alives)
  bool pending_reorg_ = false;
  std::unique_ptr<Microbatch> microbatch_;
  std::deque<arrow::flight::FlightPayload> queue_;
  std::deque<int64_t> queue_rows_;  // rows of each message in queue_
  std::unique_ptr<common::ActiveStream> active_;
  bool counted_ = false;
  std::chrono::steady_clock::time_point last_sent_;
};

}  // namespace sluice::flight
