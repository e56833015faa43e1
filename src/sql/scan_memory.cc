#include "sql/scan_memory.h"

#include <bit>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace sluice::sql {

namespace {

constexpr int64_t kMinRecycled = int64_t{64} << 10;

class RecyclingPool final : public arrow::MemoryPool {
 public:
  explicit RecyclingPool(arrow::MemoryPool* base) : base_(base) {}

  ~RecyclingPool() override {
    for (auto& [size, list] : free_) {
      for (auto* p : list) base_->Free(p, size, kAlignment);
    }
  }

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override {
    if (size < kMinRecycled || alignment > kAlignment) return base_->Allocate(size, alignment, out);
    const int64_t cls = Class(size);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        *out = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
        return arrow::Status::OK();
      }
    }
    return base_->Allocate(cls, kAlignment, out);
  }

  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override {
    const bool old_big = old_size >= kMinRecycled && alignment <= kAlignment;
    const bool new_big = new_size >= kMinRecycled && alignment <= kAlignment;
    if (!old_big && !new_big) return base_->Reallocate(old_size, new_size, alignment, ptr);
    if (old_big && new_big && Class(old_size) == Class(new_size)) return arrow::Status::OK();
    uint8_t* fresh = nullptr;
    ARROW_RETURN_NOT_OK(Allocate(new_size, alignment, &fresh));
    std::memcpy(fresh, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
    Free(*ptr, old_size, alignment);
    *ptr = fresh;
    return arrow::Status::OK();
  }

  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override {
    if (size < kMinRecycled || alignment > kAlignment) return base_->Free(buffer, size, alignment);
    const int64_t cls = Class(size);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + cls <= kScanPoolCacheBytes) {
        free_[cls].push_back(buffer);
        cached_ += cls;
        return;
      }
    }
    base_->Free(buffer, cls, kAlignment);
  }

  int64_t bytes_allocated() const override { return base_->bytes_allocated(); }
  int64_t max_memory() const override { return base_->max_memory(); }
  int64_t total_bytes_allocated() const override { return base_->total_bytes_allocated(); }
  int64_t num_allocations() const override { return base_->num_allocations(); }
  std::string backend_name() const override { return "recycling(" + base_->backend_name() + ")"; }

 private:
  static constexpr int64_t kAlignment = 64;
  static int64_t Class(int64_t size) {
    return static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(size)));
  }

  arrow::MemoryPool* base_;
  std::mutex mu_;
  std::map<int64_t, std::vector<uint8_t*>> free_;  // size class -> freed buffers
  int64_t cached_ = 0;
};

}  // namespace

arrow::MemoryPool* ScanMemoryPool() {
  static auto* pool = new RecyclingPool(arrow::default_memory_pool());  // never destroyed
  return pool;
}

}  // namespace sluice::sql
