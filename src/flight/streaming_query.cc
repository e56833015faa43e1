#include "flight/streaming_query.h"

#include <algorithm>

#include "arrow/array.h"
#include "arrow/scalar.h"
#include "common/log.h"
#include "common/server_metrics.h"
#include "storage/segment_format.h"

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

void StoreWatch::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++version_;
  }
  cv_.notify_all();
}

uint64_t StoreWatch::Wait(uint64_t version, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return version_ > version; });
  return version_;
}

uint64_t StoreWatch::version() {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

arrow::Result<std::unique_ptr<StreamingQuery>> StreamingQuery::Make(
    sql::Engine* engine, StreamPlan plan, StreamOptions options,
    std::shared_ptr<arrow::Schema> schema, const fl::ServerCallContext* context,
    std::shared_ptr<StoreWatch> watch) {
  std::unique_ptr<StreamingQuery> q(new StreamingQuery());
  q->engine_ = engine;
  q->plan_ = std::move(plan);
  q->options_ = options;
  q->schema_ = std::move(schema);
  q->context_ = context;
  q->watch_ = std::move(watch);
  if (q->plan_.stores.empty()) return arrow::Status::Invalid("a streaming query reads no dataset");
  if (q->plan_.stores.size() > 1 && q->watch_ == nullptr) {
    return arrow::Status::Invalid("a stream over several datasets needs a StoreWatch");
  }
  ARROW_ASSIGN_OR_RAISE(q->empty_, arrow::RecordBatch::MakeEmpty(q->schema_));
  if (q->plan_.mode == StreamPlan::Mode::kScan) {
    int idx = q->schema_->GetFieldIndex("block_num");
    if (idx >= 0 && arrow::is_integer(q->schema_->field(idx)->type()->id())) {
      q->block_num_column_ = idx;
    }
  } else if (q->plan_.ordered) {
    q->block_num_column_ = q->schema_->num_fields();  // the delta's last column
    q->drop_block_column_ = true;
  }
  std::string datasets;
  for (auto* store : q->plan_.stores) {
    NetworkState net;
    net.store = store;
    net.dataset = store->options().dataset;
    auto it = q->plan_.resume.find(store->options().network);
    if (it != q->plan_.resume.end()) {
      bool reorged = false;
      auto snapshot = store->snapshot();
      ARROW_ASSIGN_OR_RAISE(net.cursor, ResolveResume(*store, *snapshot, it->second, &reorged));
      net.next_block = net.cursor->block_number + 1;
      net.pending_reorg = reorged;
    }
    datasets += (datasets.empty() ? "" : ",") + net.dataset;
    q->networks_.push_back(std::move(net));
  }
  q->last_sent_ = std::chrono::steady_clock::now();
  q->active_ = common::StreamRegistry::Default().Register(q->plan_.sql, datasets);
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

std::vector<RangeInfo> StreamingQuery::Ranges() const {
  std::vector<RangeInfo> ranges;
  for (size_t i = 0; i < networks_.size(); ++i) {
    if (microbatch_ && microbatch_->network == i) {
      ranges.push_back(microbatch_->range);
    } else if (networks_[i].last_range) {
      ranges.push_back(*networks_[i].last_range);  // unchanged: not a reorg to clients
    }
  }
  return ranges;
}

nlohmann::json StreamingQuery::CursorJson() const {
  nlohmann::json cursor = nlohmann::json::object();
  for (const auto& net : networks_) {
    if (!net.cursor) continue;
    RangeInfo at;
    at.network = net.store->options().network;
    at.numbers = {net.cursor->block_number, net.cursor->block_number};
    at.hash = net.cursor->hash;
    cursor.update(MakeCursor(at));
  }
  return cursor;
}

nlohmann::json StreamingQuery::Metadata(const std::string& kind, bool ranges_complete) const {
  bool reorg = microbatch_->is_reorg && kind == "microbatch_start";
  return MakeAppMetadata(Ranges(), ranges_complete, reorg, kind);
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

void StreamingQuery::FinishMicrobatch(size_t network, const RangeInfo& range) {
  auto& net = networks_[network];
  net.cursor = CursorPosition{range.numbers.end, range.hash};
  net.next_block = range.numbers.end + 1;
  net.last_range = range;
  common::ServerMetrics::Get().microbatches().Increment();
  if (active_) active_->FinishMicrobatch(range.numbers.end, storage::HashToHex(range.hash));
}

arrow::Status StreamingQuery::SetRanges(sql::Session* session, size_t i,
                                        const storage::Snapshot& snapshot,
                                        std::optional<storage::BlockRange> delta) {
  const auto& net = networks_[i];
  const uint64_t first = snapshot.range ? snapshot.range->start : 0;
  sql::TableRange d{1, 0}, history{1, 0};  // empty
  if (delta) {
    d = {delta->start, delta->end};
    if (delta->start > first) history = {first, delta->start - 1};
  } else if (net.cursor && snapshot.range) {
    history = {first, net.cursor->block_number};  // where this network stands
  }
  return session->SetMicrobatch(net.dataset, d, history);
}

arrow::Status StreamingQuery::StartMicrobatch(
    std::map<std::string, std::shared_ptr<const storage::Snapshot>> snapshots, size_t network,
    storage::BlockRange numbers, bool is_reorg) {
  const auto& snapshot = *snapshots.at(networks_[network].dataset);
  auto range = MakeRange(snapshot, numbers);
  if (active_) active_->StartMicrobatch(numbers.start, numbers.end);
  std::shared_ptr<SharedMicrobatch> shared;
  if (options_.cache) {
    std::string key = plan_.sql + '\0' + std::to_string(static_cast<int>(plan_.mode)) + '/' +
                      std::to_string(numbers.start) + '/' + std::to_string(numbers.end) + '/' +
                      storage::HashToHex(range.hash) + '/' + storage::HashToHex(range.prev_hash) +
                      '/' + std::to_string(options_.rows_per_batch) + '/' +
                      std::to_string(options_.soft_batch_bytes) + (is_reorg ? "/reorg" : "");
    for (size_t i = 0; i < networks_.size(); ++i) {  // where the other networks stand
      const auto& c = networks_[i].cursor;
      key += '/' + networks_[i].dataset + '=' +
             (i == network ? std::string("*")
                           : c ? std::to_string(c->block_number) + storage::HashToHex(c->hash) : "-");
    }
    bool owner = false;
    shared = options_.cache->Acquire(key, &owner);
    if (!owner) {
      if (const auto* payloads = shared->Wait(std::chrono::seconds(60))) {
        // Another stream of the same query computed this microbatch.
        queue_.insert(queue_.end(), payloads->begin(), payloads->end());
        queue_rows_.insert(queue_rows_.end(), shared->rows().begin(), shared->rows().end());
        FinishMicrobatch(network, range);
        return arrow::Status::OK();
      }
      shared.reset();  // abandoned: compute it here
    }
  }
  auto mb = std::make_unique<Microbatch>();
  mb->started = std::chrono::steady_clock::now();
  mb->shared = std::move(shared);
  mb->network = network;
  mb->range = range;
  mb->snapshots = snapshots;
  mb->is_reorg = is_reorg;
  mb->complete_from = numbers.start;
  ARROW_ASSIGN_OR_RAISE(mb->session, engine_->OpenSession(snapshots));
  if (plan_.mode == StreamPlan::Mode::kScan) {
    ARROW_RETURN_NOT_OK(mb->session->SetTableRange(networks_[network].dataset, plan_.table,
                                                   {numbers.start, numbers.end}));
  } else {
    for (size_t i = 0; i < networks_.size(); ++i) {
      const auto& snap = *snapshots.at(networks_[i].dataset);
      ARROW_RETURN_NOT_OK(SetRanges(mb->session.get(), i, snap,
                                    i == network ? std::optional(numbers) : std::nullopt));
    }
    mb->next_block = numbers.start;
  }
  microbatch_ = std::move(mb);
  Enqueue(empty_, Metadata("microbatch_start", false));
  return arrow::Status::OK();
}

arrow::Status StreamingQuery::CheckReorg(NetworkState& net, const storage::Snapshot& snapshot) {
  if (!net.cursor) return arrow::Status::OK();
  const auto* header = snapshot.Header(net.cursor->block_number);
  if (header != nullptr && header->hash == net.cursor->hash) return arrow::Status::OK();
  // The block we ended on was replaced: continue after the common ancestor.
  auto ancestor = net.store->CommonAncestor(snapshot, net.cursor->block_number, net.cursor->hash);
  if (!ancestor) {
    return arrow::Status::Invalid("the chain of network ", snapshot.network,
                                  " reorganized below block ", net.cursor->block_number,
                                  " deeper than this server remembers; restart the stream");
  }
  LOG_INFO("stream: reorg on {} replaced block {}, common ancestor {}", snapshot.network,
           net.cursor->block_number, *ancestor);
  net.cursor = CursorPosition{*ancestor, snapshot.Header(*ancestor)->hash};
  net.next_block = *ancestor + 1;
  net.pending_reorg = true;
  return arrow::Status::OK();
}

uint64_t StreamingQuery::AlignedEnd(const storage::Snapshot& snapshot, uint64_t start,
                                    uint64_t end) const {
  // Segments of an object store are local only once fetched: keep the end.
  if (snapshot.segment_store && snapshot.segment_store->remote()) return end;
  auto segment = std::find_if(snapshot.segments.begin(), snapshot.segments.end(),
                              [&](const storage::Segment& s) {
                                return s.range.start <= end && end <= s.range.end;
                              });
  if (segment == snapshot.segments.end()) return end;
  // The last of: where the segment before ends, where this segment's row groups end.
  std::optional<uint64_t> best;
  if (segment->range.start > start) best = segment->range.start - 1;
  auto file = segment->files.find(plan_.table);
  if (file != segment->files.end()) {
    auto ends = storage::RowGroupBlockEnds(file->second->path());
    if (ends.ok()) {
      for (uint64_t e : *ends) {
        if (e >= start && e <= end) best = std::max(best.value_or(e), e);
      }
    }
  }
  return best.value_or(end);
}

arrow::Status StreamingQuery::Advance() {
  if (microbatch_) {
    auto& mb = *microbatch_;
    if (mb.reader) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(mb.reader->ReadNext(&batch));
      if (!batch) {
        mb.reader.reset();
        if (plan_.per_block) EnqueueBlockComplete(mb.complete_from, mb.next_block - 1);
        return arrow::Status::OK();
      }
      if (batch->num_rows() == 0) return arrow::Status::OK();
      std::optional<uint64_t> last_block;
      if (block_num_column_ >= 0) {
        // Rows arrive in block order: blocks below the last row's are complete.
        auto col = batch->column(block_num_column_);
        ARROW_ASSIGN_OR_RAISE(auto last, col->GetScalar(batch->num_rows() - 1));
        if (last->is_valid) {
          ARROW_ASSIGN_OR_RAISE(auto as_u64, last->CastTo(arrow::uint64()));
          last_block = std::static_pointer_cast<arrow::UInt64Scalar>(as_u64)->value;
        }
      }
      if (drop_block_column_) {
        ARROW_ASSIGN_OR_RAISE(batch, batch->RemoveColumn(batch->num_columns() - 1));
      }
      Enqueue(batch, Metadata("data", false));
      if (last_block && *last_block > mb.complete_from && *last_block <= mb.range.numbers.end) {
        EnqueueBlockComplete(mb.complete_from, *last_block - 1);
      }
      return arrow::Status::OK();
    }
    if (plan_.per_block && mb.next_block <= mb.range.numbers.end) {
      const uint64_t b = mb.next_block++;
      const auto& snap = *mb.snapshots.at(networks_[mb.network].dataset);
      ARROW_RETURN_NOT_OK(SetRanges(mb.session.get(), mb.network, snap, storage::BlockRange{b, b}));
      ARROW_ASSIGN_OR_RAISE(mb.reader, mb.session->Execute(plan_.delta_sql, options_.rows_per_batch,
                                                           nullptr, options_.soft_batch_bytes));
      return arrow::Status::OK();
    }
    if (!plan_.per_block && !mb.started_query) {
      mb.started_query = true;
      if (plan_.mode == StreamPlan::Mode::kScan) {
        // A plain scan is planned once (DuckDB's parse and prepare) and then read
        // directly in every microbatch: catching up costs the scan, not a query
        // per microbatch (bench/FIXES.md).
        if (!direct_planned_) {
          direct_planned_ = true;
          ARROW_ASSIGN_OR_RAISE(direct_, mb.session->PlanDirectScan(plan_.sql));
        }
        if (direct_) {
          ARROW_ASSIGN_OR_RAISE(mb.reader,
                                mb.session->ExecuteDirectScan(*direct_, plan_.sql,
                                                              options_.rows_per_batch,
                                                              options_.soft_batch_bytes));
          return arrow::Status::OK();
        }
      }
      const std::string& sql = plan_.mode == StreamPlan::Mode::kScan ? plan_.sql : plan_.delta_sql;
      ARROW_ASSIGN_OR_RAISE(mb.reader, mb.session->Execute(sql, options_.rows_per_batch, nullptr,
                                                           options_.soft_batch_bytes));
      return arrow::Status::OK();
    }
    // The query is done: the microbatch is complete.
    EnqueueBlockComplete(mb.complete_from, mb.range.numbers.end);
    auto end = Metadata("microbatch_end", true);
    {
      // The cursor: this network at the microbatch's end, the others where they stand.
      auto at = networks_[mb.network].cursor;
      networks_[mb.network].cursor = CursorPosition{mb.range.numbers.end, mb.range.hash};
      end["cursor"] = CursorJson();
      networks_[mb.network].cursor = at;
    }
    Enqueue(empty_, std::move(end));
    if (mb.shared) {
      mb.shared->Finish();
      mb.shared.reset();
    }
    FinishMicrobatch(mb.network, mb.range);
    LOG_DEBUG("stream: microbatch {}..{} computed in {} us", mb.range.numbers.start,
              mb.range.numbers.end,
              std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - mb.started)
                  .count());
    microbatch_.reset();
    return arrow::Status::OK();
  }

  // Between microbatches: the next one advances a network with new blocks (one
  // with a reorg first, else in turn), or wait for blocks.
  const uint64_t watched = watch_ ? watch_->version() : 0;
  std::map<std::string, std::shared_ptr<const storage::Snapshot>> snapshots;
  std::optional<size_t> chosen;
  for (size_t k = 0; k < networks_.size(); ++k) {
    const size_t i = (next_network_ + k) % networks_.size();
    auto& net = networks_[i];
    auto snapshot = net.store->snapshot();
    ARROW_RETURN_NOT_OK(CheckReorg(net, *snapshot));
    if (snapshot->range) {
      if (!net.next_block) net.next_block = snapshot->range->start;
      const bool ready = snapshot->range->end >= *net.next_block;
      if (ready && (!chosen || (net.pending_reorg && !networks_[*chosen].pending_reorg))) chosen = i;
    }
    snapshots[net.dataset] = std::move(snapshot);
  }
  if (chosen) {
    auto& net = networks_[*chosen];
    const auto& snapshot = *snapshots.at(net.dataset);
    uint64_t end = std::min(snapshot.range->end, *net.next_block + options_.microbatch_max_blocks - 1);
    if (plan_.mode == StreamPlan::Mode::kScan && end < snapshot.range->end) {
      end = AlignedEnd(snapshot, *net.next_block, end);
    }
    bool is_reorg = net.pending_reorg;
    net.pending_reorg = false;
    next_network_ = *chosen + 1;
    return StartMicrobatch(std::move(snapshots), *chosen, {*net.next_block, end}, is_reorg);
  }
  auto since = std::chrono::steady_clock::now() - last_sent_;
  if (since >= options_.keep_alive) {
    // The ranges of the last finished microbatches ([] before the first): a client
    // that compares each message's ranges with the last it saw sees no reorg.
    nlohmann::json m = MakeAppMetadata(Ranges(), false, false, "keep_alive");
    Enqueue(empty_, std::move(m));
    return arrow::Status::OK();
  }
  auto left = std::min<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.keep_alive - since),
      kWaitSlice);
  if (networks_.size() == 1) {
    networks_[0].store->WaitForVersion(snapshots.begin()->second->version, left);
  } else {
    watch_->Wait(watched, left);
  }
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
