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
#include <condition_variable>
#include <mutex>
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
  /// The datasets the query streams over, one per network, in name order.
  std::vector<storage::BlockStore*> stores;
  std::string table;                    ///< kScan: the one table the query reads
  enum class Mode { kScan, kDelta };
  Mode mode = Mode::kScan;              ///< see the header comment
  std::string delta_sql;                ///< kDelta: sql::StreamingCheck::delta_sql
  bool ordered = false;                 ///< kDelta: its last column is the rows' block
  /// kDelta: run block by block (rows may qualify late, sql::IncrementalInfo::
  /// late_rows): the rows between two BlockCompletes are the second block's.
  bool per_block = false;
  /// Continue after these blocks, by network (a network the cursor does not
  /// name starts at its first stored block).
  Cursor resume;
};

/// \brief Wakes the streams over several datasets when any of them stores blocks
/// (a stream over one dataset waits on its store). Subscribe it to every store
/// once, before serving.
class StoreWatch {
 public:
  void Notify();
  /// \brief Block until Notify after `version`, or `timeout`; the current version.
  uint64_t Wait(uint64_t version, std::chrono::milliseconds timeout);
  uint64_t version();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t version_ = 0;
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
      std::shared_ptr<arrow::Schema> schema, const arrow::flight::ServerCallContext* context,
      std::shared_ptr<StoreWatch> watch = nullptr);
  ~StreamingQuery() override;

  std::shared_ptr<arrow::Schema> schema() override { return schema_; }
  arrow::Result<arrow::flight::FlightPayload> GetSchemaPayload() override;
  arrow::Result<arrow::flight::FlightPayload> Next() override;

 private:
  // Where the stream stands on one network. Microbatches advance one network at a
  // time; the others keep their position (protocol.md, "Several networks").
  struct NetworkState {
    storage::BlockStore* store = nullptr;
    std::string dataset;
    std::optional<uint64_t> next_block;    // first block of its next microbatch
    std::optional<CursorPosition> cursor;  // last block completely sent
    std::optional<RangeInfo> last_range;   // of its last finished microbatch
    bool pending_reorg = false;
  };
  struct Microbatch {
    size_t network = 0;  // the network it advances (index into networks_)
    RangeInfo range;
    std::map<std::string, std::shared_ptr<const storage::Snapshot>> snapshots;
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

  // kScan: the query planned once as a direct scan (sql::Session::PlanDirectScan),
  // if it is one; planned on the first microbatch.
  bool direct_planned_ = false;
  std::optional<sql::Session::PlannedScan> direct_;

  StreamingQuery() = default;
  arrow::Status StartMicrobatch(
      std::map<std::string, std::shared_ptr<const storage::Snapshot>> snapshots, size_t network,
      storage::BlockRange numbers, bool is_reorg);
  arrow::Status Advance();  // make progress; may enqueue messages
  void FinishMicrobatch(size_t network, const RangeInfo& range);
  arrow::Status CheckReorg(NetworkState& net, const storage::Snapshot& snapshot);
  // The end of a catch-up microbatch of a plain scan [start, end]: moved down to
  // where a row group of the table ends (RowGroupBlockEnds), when one ends in the
  // range, so that no row group is decoded for two microbatches.
  uint64_t AlignedEnd(const storage::Snapshot& snapshot, uint64_t start, uint64_t end) const;
  // The session's ranges of network `i` for the microbatch: Δ = `delta`, history up
  // to its cursor (or before `delta`).
  arrow::Status SetRanges(sql::Session* session, size_t i, const storage::Snapshot& snapshot,
                          std::optional<storage::BlockRange> delta);
  std::vector<RangeInfo> Ranges() const;  // every network's range for a message
  nlohmann::json CursorJson() const;      // every network's cursor
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

  std::vector<NetworkState> networks_;
  size_t next_network_ = 0;  // where the search for new blocks starts (round robin)
  std::shared_ptr<StoreWatch> watch_;
  std::unique_ptr<Microbatch> microbatch_;
  std::deque<arrow::flight::FlightPayload> queue_;
  std::deque<int64_t> queue_rows_;  // rows of each message in queue_
  std::unique_ptr<common::ActiveStream> active_;
  bool counted_ = false;
  std::chrono::steady_clock::time_point last_sent_;
};

}  // namespace sluice::flight
