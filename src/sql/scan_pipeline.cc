#include "sql/scan_pipeline.h"

#include <pthread.h>
#include <sched.h>

#include "arrow/util/byte_size.h"
#include "sql/scan_cache.h"

namespace sluice::sql {

BackgroundCacheWriter::BackgroundCacheWriter(std::unique_ptr<ScanCacheWriter> writer)
    : writer_(std::move(writer)), thread_([this] { Run(); }) {}

BackgroundCacheWriter::~BackgroundCacheWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!commit_) failed_ = true;  // given up: stop at once
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BackgroundCacheWriter::Write(std::shared_ptr<arrow::RecordBatch> batch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_ || stop_) return;
    // The bytes its rows use (a slice of a larger decoded buffer counts its part).
    const int64_t bytes = arrow::util::ReferencedBufferSize(*batch).ValueOr(0);
    if (queued_bytes_ + bytes > kMaxQueuedBytes) {
      failed_ = true;
      queue_.clear();
      queued_bytes_ = 0;
    } else {
      queued_bytes_ += bytes;
      queue_.emplace_back(std::move(batch), bytes);
    }
  }
  cv_.notify_all();
}

void BackgroundCacheWriter::Hurry() {
  sched_param param{};
  (void)pthread_setschedparam(thread_.native_handle(), SCHED_OTHER, &param);
}

void BackgroundCacheWriter::Commit() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    commit_ = true;
    stop_ = true;
  }
  cv_.notify_all();
}

void BackgroundCacheWriter::Run() {
  // Only CPU time nothing else wants: the answer and other queries come first.
  sched_param param{};
  (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return failed_ || stop_ || !queue_.empty(); });
    if (failed_) break;
    if (queue_.empty()) break;  // stopped, all written
    auto [batch, bytes] = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= bytes;
    lock.unlock();
    const bool ok = writer_->Write(*batch).ok();
    batch.reset();
    lock.lock();
    if (!ok) failed_ = true;
  }
  const bool commit = commit_ && !failed_;
  lock.unlock();
  if (commit) (void)writer_->Commit();
  writer_.reset();  // not committed: deletes what it wrote
}

ReadAhead::ReadAhead(Producer produce) : produce_(std::move(produce)), thread_([this] { Run(); }) {}

ReadAhead::~ReadAhead() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

arrow::Status ReadAhead::Pop(std::shared_ptr<arrow::RecordBatch>* out) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || finished_; });
  if (queue_.empty()) {
    out->reset();
    return status_;
  }
  *out = std::move(queue_.front());
  queue_.pop_front();
  cv_.notify_all();
  return arrow::Status::OK();
}

void ReadAhead::Run() {
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    arrow::Status st = produce_(&batch);
    std::unique_lock<std::mutex> lock(mu_);
    if (!st.ok() || !batch) {
      status_ = std::move(st);
      finished_ = true;
      cv_.notify_all();
      return;
    }
    queue_.push_back(std::move(batch));
    cv_.notify_all();
    cv_.wait(lock, [&] { return queue_.size() < kDepth || stop_; });
    if (stop_) return;
  }
}

}  // namespace sluice::sql
