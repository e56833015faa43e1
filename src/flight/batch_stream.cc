#include "flight/batch_stream.h"

#include "flight/app_metadata.h"
#include "flight/microbatch_cache.h"

namespace fl = arrow::flight;

namespace sluice::flight {

using common::QueryKind;
using common::QueryOutcome;
using common::ServerMetrics;

BatchQueryStream::BatchQueryStream(std::unique_ptr<sql::Session> session,
                                   std::unique_ptr<sql::ResultReader> reader)
    : session_(std::move(session)), reader_(std::move(reader)) {
  auto ranges = SessionRanges(session_->snapshots(), session_->DatasetsRead());
  data_metadata_ = arrow::Buffer::FromString(MakeAppMetadata(ranges, false, false, "data").dump());
  end_metadata_ = arrow::Buffer::FromString(MakeAppMetadata(ranges, true, false, "end").dump());
  producer_ = std::thread([this] { Produce(); });
}

BatchQueryStream::~BatchQueryStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  space_.notify_all();
  // A client that went away mid-answer: stop the engine's work.
  if (!finished_) session_->Interrupt();
  producer_.join();
  if (!counted_) ServerMetrics::Get().CountQuery(QueryKind::kBatch, QueryOutcome::kCancelled);
}

arrow::Result<fl::FlightPayload> BatchQueryStream::GetSchemaPayload() {
  fl::FlightPayload payload;
  arrow::ipc::DictionaryFieldMapper mapper(*reader_->schema());
  ARROW_RETURN_NOT_OK(arrow::ipc::GetSchemaPayload(*reader_->schema(), ipc_options_, mapper,
                                                   &payload.ipc_message));
  return payload;
}

arrow::Result<fl::FlightPayload> BatchQueryStream::Next() {
  if (finished_) return fl::FlightPayload();  // null metadata: end of stream
  auto payload = NextPayload();
  if (!payload.ok()) {
    finished_ = true;  // the error ends the call
    Count(common::OutcomeOf(payload.status()));
  } else if (finished_) {
    Count(QueryOutcome::kOk);
  }
  return payload;
}

void BatchQueryStream::Produce() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      space_.wait(lock, [this] { return stopping_ || ready_.size() < kPrefetch; });
      if (stopping_) return;
    }
    std::shared_ptr<arrow::RecordBatch> batch;
    arrow::Status st = reader_->ReadNext(&batch);
    bool last = !st.ok() || batch == nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.push_back({std::move(st), std::move(batch)});
    }
    filled_.notify_one();
    if (last) return;
  }
}

arrow::Result<fl::FlightPayload> BatchQueryStream::NextPayload() {
  fl::FlightPayload payload;
  std::shared_ptr<arrow::RecordBatch> batch;
  {
    std::unique_lock<std::mutex> lock(mu_);
    filled_.wait(lock, [this] { return !ready_.empty(); });
    auto [st, b] = std::move(ready_.front());
    ready_.pop_front();
    ARROW_RETURN_NOT_OK(st);
    batch = std::move(b);
  }
  space_.notify_one();
  if (batch) {
    payload.app_metadata = data_metadata_;
  } else {
    ARROW_ASSIGN_OR_RAISE(batch, arrow::RecordBatch::MakeEmpty(reader_->schema()));
    payload.app_metadata = end_metadata_;
    finished_ = true;
  }
  ARROW_RETURN_NOT_OK(arrow::ipc::GetRecordBatchPayload(*batch, ipc_options_,
                                                        &payload.ipc_message));
  ServerMetrics::Get().CountSent(QueryKind::kBatch, batch->num_rows(), PayloadBytes(payload));
  return payload;
}

void BatchQueryStream::Count(QueryOutcome outcome) {
  if (counted_) return;
  counted_ = true;
  ServerMetrics::Get().CountQuery(QueryKind::kBatch, outcome);
}

}  // namespace sluice::flight
