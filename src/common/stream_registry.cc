#include "common/stream_registry.h"

#include <algorithm>

#include "common/server_metrics.h"

namespace sluice::common {

ActiveStream::~ActiveStream() { registry_->Remove(this); }

void ActiveStream::AddSent(int64_t rows, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  info_.rows_sent += static_cast<uint64_t>(std::max<int64_t>(rows, 0));
  info_.bytes_sent += static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
}

void ActiveStream::StartMicrobatch(uint64_t start, uint64_t end) {
  std::lock_guard<std::mutex> lock(mu_);
  info_.microbatch = std::make_pair(start, end);
}

void ActiveStream::FinishMicrobatch(uint64_t block, std::string hash) {
  std::lock_guard<std::mutex> lock(mu_);
  info_.microbatch.reset();
  info_.cursor_block = block;
  info_.cursor_hash = std::move(hash);
  ++info_.microbatches;
}

StreamInfo ActiveStream::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return info_;
}

StreamRegistry& StreamRegistry::Default() {
  static StreamRegistry* registry = new StreamRegistry(&ServerMetrics::Get().active_streams());
  return *registry;
}

std::unique_ptr<ActiveStream> StreamRegistry::Register(std::string query, std::string dataset) {
  StreamInfo info;
  info.query = std::move(query);
  info.dataset = std::move(dataset);
  info.started = std::chrono::system_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  info.id = next_id_++;
  std::unique_ptr<ActiveStream> stream(new ActiveStream(this, std::move(info)));
  streams_.insert(stream.get());
  if (active_ != nullptr) active_->Add(1);
  return stream;
}

void StreamRegistry::Remove(ActiveStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_.erase(stream) > 0 && active_ != nullptr) active_->Add(-1);
}

std::vector<StreamInfo> StreamRegistry::List() const {
  std::vector<StreamInfo> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto* s : streams_) out.push_back(s->Snapshot());
  }
  std::sort(out.begin(), out.end(),
            [](const StreamInfo& a, const StreamInfo& b) { return a.id < b.id; });
  return out;
}

}  // namespace sluice::common
