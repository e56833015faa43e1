#include "app_metadata_internal.h"
#include "sluice/client/query.h"

namespace sluice::client {

QueryReader::QueryReader(std::unique_ptr<arrow::flight::FlightStreamReader> reader,
                         std::shared_ptr<arrow::Schema> schema, QueryOptions options)
    : reader_(std::move(reader)),
      schema_(std::move(schema)),
      max_pages_(options.max_pages),
      page_callback_(std::move(options.page_callback)) {}

QueryReader::~QueryReader() {
  // An abandoned answer must not leave the server computing.
  if (!done_) Finish(/*cancel_call=*/true);
}

void QueryReader::Finish(bool cancel_call) {
  if (cancel_call && !complete_ && !call_cancelled_.exchange(true)) reader_->Cancel();
  done_ = true;
}

void QueryReader::Cancel() {
  if (complete_ || cancelled_.exchange(true)) return;
  if (!call_cancelled_.exchange(true)) reader_->Cancel();
}

arrow::Status QueryReader::Close() {
  if (!done_) Finish(/*cancel_call=*/true);
  return arrow::Status::OK();
}

arrow::Status QueryReader::ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) {
  *batch = nullptr;
  if (cancelled_.load()) return arrow::Status::Cancelled("query cancelled by the client");
  if (done_) return arrow::Status::OK();
  while (true) {
    auto next = reader_->Next();
    if (!next.ok()) {
      done_ = true;
      if (cancelled_.load()) return arrow::Status::Cancelled("query cancelled by the client");
      return next.status();
    }
    auto& chunk = *next;
    if (chunk.app_metadata) {
      app_metadata_ = chunk.app_metadata->ToString();
      auto meta = internal::ParseMetadata(app_metadata_);
      if (meta.ok()) {
        if (!range_) range_ = internal::MessageRange(*meta);
        if (meta->value("kind", std::string()) == "end" || meta->value("ranges_complete", false)) {
          complete_ = true;
        }
      }
    }
    if (!chunk.data) {  // end of the stream
      done_ = true;
      return arrow::Status::OK();
    }
    const int64_t rows = chunk.data->num_rows();
    if (rows == 0) continue;  // metadata only
    ++page_number_;
    total_rows_ += rows;
    if (page_callback_) page_callback_(page_number_, rows);
    *batch = std::move(chunk.data);
    // The last page allowed: stop the server now, not when the reader is dropped.
    if (max_pages_ && page_number_ >= *max_pages_) Finish(/*cancel_call=*/true);
    return arrow::Status::OK();
  }
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> QueryReader::Next() {
  std::shared_ptr<arrow::RecordBatch> batch;
  ARROW_RETURN_NOT_OK(ReadNext(&batch));
  return batch;
}

arrow::Result<std::shared_ptr<arrow::Table>> QueryReader::ReadAll() {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto batch, Next());
    if (!batch) break;
    batches.push_back(std::move(batch));
  }
  return arrow::Table::FromRecordBatches(schema_, std::move(batches));
}

}  // namespace sluice::client
