// A streaming query (seed 001, protocol.md §3): the query runs in a loop of
// microbatches, each over a block range [start, end] of at most
// `microbatch_max_blocks` blocks, from the query's earliest block (or the resume
// cursor) to the chain head, then one microbatch per arrival of new blocks, for
// ever. Every message is a record batch with app_metadata (flight/app_metadata.h
// lists the kinds).
//
// How a microbatch is computed (StreamPlan::Mode):
//   - kScan, a query reading one table without grouping: runs as written, once,
//     with the table restricted to the microbatch's blocks. Its rows come out in
//     block order (the files are scanned in order), so BlockComplete follows the
//     rows when the result has a `block_num` column, else comes at the end;
//   - kDelta, any other query (joins, self-joins, UNION ALL, EXISTS/IN subqueries,
//     GROUP BY block): runs its delta query (sql/delta_rewrite.h) once, with the
//     tables read as the microbatch's blocks (Δ), the blocks before them (H) or
//     both (N). A joined row appears exactly once, in the microbatch of the later
//     of its blocks (protocol.md §3). The delta's rows come in block order with the
//     block as a last column, which BlockComplete follows and the client never sees.
//     A query whose rows may qualify in a later block than their own (EXISTS/IN over
//     chain tables) runs block by block instead, each run followed by its block's
//     BlockComplete: a row belongs to the block whose BlockComplete follows it.
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
  std::string table;                    ///< kScan: the one table the query reads
  enum class Mode { kScan, kDelta };
  Mode mode = Mode::kScan;              ///< see the header comment
  std::string delta_sql;                ///< kDelta: sql::StreamingCheck::delta_sql
  bool ordered = false;                 ///< kDelta: its last column is the rows' block
  /// kDelta: run block by block (rows may qualify late, sql::IncrementalInfo::
  /// late_rows): the rows between two BlockCompletes are the second block's.
  bool per_block = false;
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
  struct Microbatch {
    RangeInfo range;
    std::shared_ptr<const storage::Snapshot> snapshot;
    std::unique_ptr<sql::Session> session;
    bool started_query = false;
    uint64_t next_block = 0;  // per_block: the block the next run computes
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
  int block_num_column_ = -1;  // the column BlockComplete follows, -1: none
  bool drop_block_column_ = false;  // kDelta: the last column is the block, not sent

  std::optional<uint64_t> next_block_;        // first block of the next microbatch
  std::optional<CursorPosition> cursor_;      // last block completely sent
  bool pending_reorg_ = false;
  std::unique_ptr<Microbatch> microbatch_;
  std::deque<arrow::flight::FlightPayload> queue_;
  std::deque<int64_t> queue_rows_;  // rows of each message in queue_
  std::unique_ptr<common::ActiveStream> active_;
  bool counted_ = false;
  std::chrono::steady_clock::time_point last_sent_;
};

}  // namespace sluice::flight
