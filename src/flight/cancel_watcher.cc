#include "flight/cancel_watcher.h"

#include <chrono>
#include <vector>

namespace sluice::flight {

CancelWatcher& CancelWatcher::Default() {
  static CancelWatcher watcher;
  return watcher;
}

CancelWatcher::~CancelWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<CancelWatcher::Registration> CancelWatcher::Watch(
    const arrow::flight::ServerCallContext* context, std::function<void()> on_cancel) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  const uint64_t id = next_id_++;
  calls_.emplace(id, Entry{context, std::move(on_cancel)});
  cv_.notify_all();
  return std::unique_ptr<Registration>(new Registration(this, id));
}

CancelWatcher::Registration::~Registration() { watcher_->Unwatch(id_); }

void CancelWatcher::Unwatch(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.erase(id);
}

void CancelWatcher::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (calls_.empty()) {
      cv_.wait(lock, [this] { return stopping_ || !calls_.empty(); });
      continue;
    }
    // Callbacks run under the lock, so a registration being destroyed waits for
    // its callback to finish (Session::Interrupt only sets a flag in DuckDB).
    for (auto it = calls_.begin(); it != calls_.end();) {
      if (it->second.context->is_cancelled()) {
        it->second.on_cancel();
        it = calls_.erase(it);
      } else {
        ++it;
      }
    }
    cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; });
  }
}

}  // namespace sluice::flight
