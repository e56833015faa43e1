#include "flight/microbatch_cache.h"

namespace sluice::flight {

int64_t PayloadBytes(const arrow::flight::FlightPayload& p) {
  int64_t n = p.ipc_message.body_length;
  if (p.ipc_message.metadata) n += p.ipc_message.metadata->size();
  if (p.app_metadata) n += p.app_metadata->size();
  return n;
}

bool SharedMicrobatch::Add(const arrow::flight::FlightPayload& payload, int64_t rows) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kPending) return false;
  bytes_ += PayloadBytes(payload);
  if (bytes_ > max_bytes_) {
    state_ = State::kAbandoned;
    payloads_.clear();
    rows_.clear();
    cv_.notify_all();
    return false;
  }
  payloads_.push_back(payload);
  rows_.push_back(rows);
  return true;
}

void SharedMicrobatch::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kPending) state_ = State::kDone;
  cv_.notify_all();
}

void SharedMicrobatch::Abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kPending) {
    state_ = State::kAbandoned;
    payloads_.clear();
    rows_.clear();
  }
  cv_.notify_all();
}

const std::vector<arrow::flight::FlightPayload>* SharedMicrobatch::Wait(
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return state_ != State::kPending; });
  return state_ == State::kDone ? &payloads_ : nullptr;
}

std::shared_ptr<SharedMicrobatch> MicrobatchCache::Acquire(const std::string& key, bool* owner) {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  // Forget old entries (bounded count and age).
  while (!order_.empty() &&
         (order_.size() > max_entries_ || now - entries_[order_.front()]->created_ > ttl_)) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    std::lock_guard<std::mutex> entry_lock(it->second->mu_);
    if (it->second->state_ != SharedMicrobatch::State::kAbandoned) {
      *owner = false;
      return it->second;
    }
  }
  auto entry = std::make_shared<SharedMicrobatch>();
  entry->max_bytes_ = max_bytes_;
  entry->created_ = now;
  if (it != entries_.end()) {
    it->second = entry;
  } else {
    entries_[key] = entry;
    order_.push_back(key);
  }
  *owner = true;
  return entry;
}

}  // namespace sluice::flight
