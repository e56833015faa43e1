#include "flight/streaming_query.h"

#include <algorithm>

#include "arrow/array.h"
#include "arrow/scalar.h"
#include "common/log.h"
#include "common/server_metrics.h"

namespace fl = arrow::flight;

namespace sluice::flight {

namespace {
constexpr auto kWaitSlice = std::chrono::milliseconds(200);
}

arrow::Result<CursorPosition> ResolveResume(const storage::BlockStore& store,
                                            const storage::Snapshot& snapshot,
                                            const CursorPosition& resume, bool* reorged) {
  *reorged = false;
  auto ancestor = store.CommonAncestor(snapshot, resume.block_number, resume.hash);
  if (!ancestor) {
    if (!snapshot.range || resume.block_number > snapshot.range->end) {
      return arrow::Status::Invalid(
          "amp-resume cursor names block ", resume.block_number, " of network ", snapshot.network,
          ", which is not extracted yet (stored head: ",
          snapshot.range ? std::to_string(snapshot.range->end) : std::string("none"), ")");
    }
    if (resume.block_number < snapshot.range->start) {
      return arrow::Status::Invalid("amp-resume cursor names block ", resume.block_number,
                                    ", below the first stored block ", snapshot.range->start);
    }
    return arrow::Status::Invalid(
        "amp-resume cursor block ", resume.block_number, " hash ", storage::HashToHex(resume.hash),
        " is not on the canonical chain, nor on a fork this server replaced; restart the stream "
        "without a cursor");
  }
  if (*ancestor == resume.block_number) return resume;
  *reorged = true;
  return CursorPosition{*ancestor, snapshot.Header(*ancestor)->hash};
}

arrow::Result<std::unique_ptr<StreamingQuery>> StreamingQuery::Make(
    sql::Engine* engine, StreamPlan plan, StreamOptions options,
    std::shared_ptr<arrow::Schema> schema, const fl::ServerCallContext* context) {
  std::unique_ptr<StreamingQuery> q(new StreamingQuery());
  q->engine_ = engine;
  q->plan_ = std::move(plan);
  q->options_ = options;
  q->schema_ = std::move(schema);
  q->context_ = context;
  ARROW_ASSIGN_OR_RAISE(q->empty_, arrow::RecordBatch::MakeEmpty(q->schema_));
  if (q->plan_.mode == StreamPlan::Mode::kScan) {
    int idx = q->schema_->GetFieldIndex("block_num");
    if (idx >= 0 && arrow::is_integer(q->schema_->field(idx)->type()->id())) {
      q->block_num_column_ = idx;
    }
  }
  auto snapshot = q->plan_.store->snapshot();
  if (q->plan_.resume) {
    bool reorged = false;
    ARROW_ASSIGN_OR_RAISE(q->cursor_,
                          ResolveResume(*q->plan_.store, *snapshot, *q->plan_.resume, &reorged));
    q->next_block_ = q->cursor_->block_number + 1;
    q->pending_reorg_ = reorged;
  }
  q->last_sent_ = std::chrono::steady_clock::now();
  q->active_ = common::StreamRegistry::Default().Register(q->plan_.sql,
                                                          q->plan_.store->options().dataset);
  return q;
}

StreamingQuery::~StreamingQuery() {
  if (microbatch_ && microbatch_->session) microbatch_->session->Interrupt();
  // A stream never ends by itself: gone without an error, its client left.
  // (Not registered: Make failed, and DoGet counts the error.)
  if (active_) Count(common::QueryOutcome::kCancelled);
}

void StreamingQuery::Count(common::QueryOutcome outcome) {
  if (counted_) return;
  counted_ = true;
  common::ServerMetrics::Get().CountQuery(common::QueryKind::kStream, outcome);
}

arrow::Result<fl::FlightPayload> StreamingQuery::GetSchemaPayload() {
  fl::FlightPayload payload;
  arrow::ipc::DictionaryFieldMapper mapper(*schema_);
  ARROW_RETURN_NOT_OK(
      arrow::ipc::GetSchemaPayload(*schema_, ipc_options_, mapper, &payload.ipc_message));
  return payload;
}

nlohmann::json StreamingQuery::Metadata(const std::string& kind, bool ranges_complete) const {
  bool reorg = microbatch_->is_reorg && kind == "microbatch_start";
  return MakeAppMetadata({microbatch_->range}, ranges_complete, reorg, kind);
}

void StreamingQuery::Enqueue(std::shared_ptr<arrow::RecordBatch> batch, nlohmann::json metadata) {
  fl::FlightPayload payload;
  payload.app_metadata = arrow::Buffer::FromString(metadata.dump());
  auto st = arrow::ipc::GetRecordBatchPayload(*batch, ipc_options_, &payload.ipc_message);
  if (!st.ok()) {
    LOG_ERROR("cannot serialize a record batch: {}", st.ToString());
    return;
  }
  if (microbatch_ && microbatch_->shared && !microbatch_->shared->Add(payload, batch->num_rows())) {
    microbatch_->shared.reset();  // too large to share: the others compute it
  }
  queue_.push_back(std::move(payload));
  queue_rows_.push_back(batch->num_rows());
}

void StreamingQuery::EnqueueBlockComplete(uint64_t start, uint64_t end) {
  if (start > end) return;
  auto m = Metadata("block_complete", false);
  m["block_complete"] = {{"start", start}, {"end", end}};
  Enqueue(empty_, std::move(m));
  microbatch_->complete_from = end + 1;
}

void StreamingQuery::FinishMicrobatch(const RangeInfo& range) {
  last_range_ = range;
  cursor_ = CursorPosition{range.numbers.end, range.hash};
  next_block_ = range.numbers.end + 1;
  common::ServerMetrics::Get().microbatches().Increment();
  if (active_) active_->FinishMicrobatch(range.numbers.end, storage::HashToHex(range.hash));
}

arrow::Status StreamingQuery::StartMicrobatch(std::shared_ptr<const storage::Snapshot> snapshot,
                                              storage::BlockRange numbers, bool is_reorg) {
  auto range = MakeRange(*snapshot, numbers);
  if (active_) active_->StartMicrobatch(numbers.start, numbers.end);
  std::shared_ptr<SharedMicrobatch> shared;
  if (options_.cache) {
    std::string key = plan_.sql + '\0' + std::to_string(static_cast<int>(plan_.mode)) + '/' +
                      std::to_string(numbers.start) + '/' + std::to_string(numbers.end) + '/' +
                      storage::HashToHex(range.hash) + '/' + storage::HashToHex(range.prev_hash) +
                      '/' + std::to_string(options_.rows_per_batch) + '/' +
                      std::to_string(options_.soft_batch_bytes) + (is_reorg ? "/reorg" : "");
    bool owner = false;
    shared = options_.cache->Acquire(key, &owner);
    if (!owner) {
      if (const auto* payloads = shared->Wait(std::chrono::seconds(60))) {
        // Another stream of the same query computed this microbatch.
        queue_.insert(queue_.end(), payloads->begin(), payloads->end());
        queue_rows_.insert(queue_rows_.end(), shared->rows().begin(), shared->rows().end());
        FinishMicrobatch(range);
        return arrow::Status::OK();
      }
      shared.reset();  // abandoned: compute it here
    }
  }
  auto mb = std::make_unique<Microbatch>();
  mb->started = std::chrono::steady_clock::now();
  mb->shared = std::move(shared);
  mb->range = range;
  mb->snapshot = snapshot;
  mb->is_reorg = is_reorg;
  mb->complete_from = numbers.start;
  ARROW_ASSIGN_OR_RAISE(mb->session,
                        engine_->OpenSession({{plan_.store->options().dataset, snapshot}}));
  const uint64_t first = snapshot->range->start;
  if (plan_.mode == StreamPlan::Mode::kScan) {
    Execution e;
    for (const auto& t : plan_.tables) e.ranges[t] = {numbers.start, numbers.end};
    mb->executions.push_back(std::move(e));
  } else if (plan_.mode == StreamPlan::Mode::kPerBlock) {
    for (uint64_t b = numbers.start; b <= numbers.end; ++b) {
      Execution e;
      for (const auto& t : plan_.tables) e.ranges[t] = {b, b};
      e.completes_block = b;
      mb->executions.push_back(std::move(e));
    }
  } else {
    const size_t n = plan_.tables.size();
    for (uint64_t b = numbers.start; b <= numbers.end; ++b) {
      for (uint32_t mask = 1; mask < (1u << n); ++mask) {
        Execution e;
        bool empty = false;
        for (size_t i = 0; i < n; ++i) {
          if (mask & (1u << i)) {
            e.ranges[plan_.tables[i]] = {b, b};
          } else if (b == first) {
            empty = true;  // no blocks before the first
          } else {
            e.ranges[plan_.tables[i]] = {first, b - 1};
          }
        }
        if (empty) continue;
        mb->executions.push_back(std::move(e));
      }
      if (!mb->executions.empty()) mb->executions.back().completes_block = b;
    }
  }
  microbatch_ = std::move(mb);
  Enqueue(empty_, Metadata("microbatch_start", false));
  return arrow::Status::OK();
}

arrow::Status StreamingQuery::CheckReorg(const storage::Snapshot& snapshot, bool* reorged) {
  *reorged = false;
  if (!cursor_) return arrow::Status::OK();
  const auto* header = snapshot.Header(cursor_->block_number);
  if (header != nullptr && header->hash == cursor_->hash) return arrow::Status::OK();
  // The block we ended on was replaced: continue after the common ancestor.
  auto ancestor = plan_.store->CommonAncestor(snapshot, cursor_->block_number, cursor_->hash);
  if (!ancestor) {
    return arrow::Status::Invalid("the chain reorganized below block ", cursor_->block_number,
                                  " deeper than this server remembers; restart the stream");
  }
  LOG_INFO("stream: reorg replaced block {}, common ancestor {}", cursor_->block_number,
           *ancestor);
  cursor_ = CursorPosition{*ancestor, snapshot.Header(*ancestor)->hash};
  next_block_ = *ancestor + 1;
  *reorged = true;
  return arrow::Status::OK();
}

arrow::Status StreamingQuery::Advance() {
  if (microbatch_) {
    auto& mb = *microbatch_;
    if (mb.reader) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(mb.reader->ReadNext(&batch));
      if (!batch) {
        mb.reader.reset();
        const auto& done = mb.executions[mb.next_execution - 1];
        if (done.completes_block) EnqueueBlockComplete(mb.complete_from, *done.completes_block);
        return arrow::Status::OK();
      }
      if (batch->num_rows() == 0) return arrow::Status::OK();
      Enqueue(batch, Metadata("data", false));
      if (block_num_column_ >= 0) {
        // Rows arrive in block order: blocks below the last row's are complete.
        auto col = batch->column(block_num_column_);
        ARROW_ASSIGN_OR_RAISE(auto last, col->GetScalar(batch->num_rows() - 1));
        if (last->is_valid) {
          ARROW_ASSIGN_OR_RAISE(auto as_u64, last->CastTo(arrow::uint64()));
          uint64_t k = std::static_pointer_cast<arrow::UInt64Scalar>(as_u64)->value;
          if (k > mb.complete_from && k <= mb.range.numbers.end) {
            EnqueueBlockComplete(mb.complete_from, k - 1);
          }
        }
      }
      return arrow::Status::OK();
    }
    if (mb.next_execution < mb.executions.size()) {
      const auto& e = mb.executions[mb.next_execution++];
      for (const auto& t : plan_.tables) {
        auto it = e.ranges.find(t);
        sql::TableRange r = it != e.ranges.end() ? it->second : sql::TableRange{1, 0};
        ARROW_RETURN_NOT_OK(
            mb.session->SetTableRange(plan_.store->options().dataset, t, r));
      }
      ARROW_ASSIGN_OR_RAISE(mb.reader, mb.session->Execute(plan_.sql, options_.rows_per_batch,
                                                                nullptr, options_.soft_batch_bytes));
      return arrow::Status::OK();
    }
    // Every execution done: the microbatch is complete.
    EnqueueBlockComplete(mb.complete_from, mb.range.numbers.end);
    auto end = Metadata("microbatch_end", true);
    end["cursor"] = MakeCursor(mb.range);
    Enqueue(empty_, std::move(end));
    if (mb.shared) {
      mb.shared->Finish();
      mb.shared.reset();
    }
    FinishMicrobatch(mb.range);
    LOG_DEBUG("stream: microbatch {}..{} computed in {} us", mb.range.numbers.start,
              mb.range.numbers.end,
              std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - mb.started)
                  .count());
    microbatch_.reset();
    return arrow::Status::OK();
  }

  // Between microbatches: start the next one, or wait for blocks.
  auto snapshot = plan_.store->snapshot();
  bool reorged = false;
  ARROW_RETURN_NOT_OK(CheckReorg(*snapshot, &reorged));
  pending_reorg_ = pending_reorg_ || reorged;
  if (snapshot->range) {
    if (!next_block_) next_block_ = snapshot->range->start;
    if (snapshot->range->end >= *next_block_) {
      uint64_t end = std::min(snapshot->range->end,
                              *next_block_ + options_.microbatch_max_blocks - 1);
      bool is_reorg = pending_reorg_;
      pending_reorg_ = false;
      return StartMicrobatch(snapshot, {*next_block_, end}, is_reorg);
    }
  }
  auto since = std::chrono::steady_clock::now() - last_sent_;
  if (since >= options_.keep_alive) {
    // The ranges of the last finished microbatch ([] before the first): Amp's
    // client keeps the last ranges it saw as its baseline for detecting a reorg.
    std::vector<RangeInfo> ranges;
    if (last_range_) ranges.push_back(*last_range_);
    nlohmann::json m = MakeAppMetadata(ranges, false, false, "keep_alive");
    Enqueue(empty_, std::move(m));
    return arrow::Status::OK();
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(options_.keep_alive - since);
  plan_.store->WaitForVersion(snapshot->version, std::min<std::chrono::milliseconds>(left, kWaitSlice));
  return arrow::Status::OK();
}

arrow::Result<fl::FlightPayload> StreamingQuery::Next() {
  // A microbatch shared with other streams is computed eagerly, so that they
  // do not wait for this stream's client to read.
  while (queue_.empty() || (microbatch_ && microbatch_->shared)) {
    arrow::Status st;
    if (context_ != nullptr && context_->is_cancelled()) {
      st = arrow::Status::Cancelled("stream cancelled by the client");
    } else {
      st = Advance();
    }
    if (!st.ok()) {
      Count(common::OutcomeOf(st));
      return st;
    }
  }
  auto payload = std::move(queue_.front());
  queue_.pop_front();
  int64_t rows = 0;
  if (!queue_rows_.empty()) {
    rows = queue_rows_.front();
    queue_rows_.pop_front();
  }
  const int64_t bytes = PayloadBytes(payload);
  common::ServerMetrics::Get().CountSent(common::QueryKind::kStream, rows, bytes);
  if (active_) active_->AddSent(rows, bytes);
  last_sent_ = std::chrono::steady_clock::now();
  return payload;
}

}  // namespace sluice::flight
