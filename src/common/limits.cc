#include "common/limits.h"

#include <vector>

#include "common/metrics.h"
#include "fmt/format.h"

namespace sluice::common {

namespace {

class LimitDetail : public arrow::StatusDetail {
 public:
  explicit LimitDetail(LimitKind kind) : kind_(kind) {}
  const char* type_id() const override { return "sluice::LimitDetail"; }
  std::string ToString() const override {
    switch (kind_) {
      case LimitKind::kResourceExhausted:
        return "resource exhausted";
      case LimitKind::kDeadlineExceeded:
        return "deadline exceeded";
      default:
        return "unavailable";
    }
  }
  LimitKind kind() const { return kind_; }

 private:
  LimitKind kind_;
};

Counter& Refusals(const char* limit) {
  return Registry::Default().GetCounter("sluice_limit_refusals_total",
                                        "Queries refused or stopped by a limit",
                                        {{"limit", limit}});
}

}  // namespace

arrow::Status LimitStatus(LimitKind kind, const std::string& message) {
  auto code = kind == LimitKind::kResourceExhausted  ? arrow::StatusCode::CapacityError
               : kind == LimitKind::kDeadlineExceeded ? arrow::StatusCode::ExecutionError
                                                      : arrow::StatusCode::IOError;
  return arrow::Status(code, message, std::make_shared<LimitDetail>(kind));
}

std::optional<LimitKind> LimitOf(const arrow::Status& status) {
  const auto& detail = status.detail();
  if (!detail || std::string_view(detail->type_id()) != "sluice::LimitDetail") return std::nullopt;
  return static_cast<const LimitDetail&>(*detail).kind();
}

// ---- Admission ----------------------------------------------------------------------

Admission& Admission::operator=(Admission&& other) noexcept {
  if (this != &other) {
    Release();
    counter_ = other.counter_;
    other.counter_ = nullptr;
  }
  return *this;
}

void Admission::Release() {
  if (counter_) counter_->fetch_sub(1);
  counter_ = nullptr;
}

// ---- Watch --------------------------------------------------------------------------

Watch::~Watch() {
  if (limits_) limits_->Remove(this);
}

arrow::Status Watch::Explain(arrow::Status status) const {
  if (!timed_out()) return status;
  return LimitStatus(LimitKind::kDeadlineExceeded,
                     fmt::format("query stopped: it ran longer than query_timeout_secs ({:g} s)",
                                 static_cast<double>(timeout_.count()) / 1000.0));
}

// ---- Limits -------------------------------------------------------------------------

Limits::Limits(LimitsOptions options) : options_(options) {
  running_gauge_ = Registry::Default().AddCallback(
      MetricType::kGauge, "sluice_running_queries",
      "Batch queries running now (Flight and JSON Lines), each holding one of "
      "max_concurrent_queries",
      {}, [this]() -> std::optional<double> { return static_cast<double>(queries_.load()); });
  // Every label at 0 from the start.
  for (const char* l : {"concurrent_queries", "concurrent_streams", "query_timeout"}) Refusals(l);
  thread_ = std::thread([this] { Run(); });
}

Limits::~Limits() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

arrow::Result<Admission> Limits::AdmitQuery() {
  const int64_t limit = options_.max_concurrent_queries;
  if (limit > 0 && queries_.fetch_add(1) >= limit) {
    queries_.fetch_sub(1);
    Refusals("concurrent_queries").Increment();
    return LimitStatus(LimitKind::kResourceExhausted,
                       "too many queries running (max_concurrent_queries = " +
                           std::to_string(limit) + "); retry later");
  }
  if (limit <= 0) queries_.fetch_add(1);
  Admission a;
  a.counter_ = &queries_;
  return a;
}

arrow::Result<Admission> Limits::AdmitStream() {
  const int64_t limit = options_.max_concurrent_streams;
  if (limit > 0 && streams_.fetch_add(1) >= limit) {
    streams_.fetch_sub(1);
    Refusals("concurrent_streams").Increment();
    return LimitStatus(LimitKind::kResourceExhausted,
                       "too many streaming queries open (max_concurrent_streams = " +
                           std::to_string(limit) + "); retry later");
  }
  if (limit <= 0) streams_.fetch_add(1);
  Admission a;
  a.counter_ = &streams_;
  return a;
}

std::unique_ptr<Watch> Limits::WatchQuery(std::function<bool()> cancelled,
                                          std::function<void()> interrupt) {
  std::unique_ptr<Watch> w(new Watch());
  w->limits_ = this;
  w->cancelled_ = std::move(cancelled);
  w->interrupt_ = std::move(interrupt);
  w->timeout_ = options_.query_timeout;
  if (options_.query_timeout.count() > 0) {
    w->has_deadline_ = true;
    w->deadline_ = std::chrono::steady_clock::now() + options_.query_timeout;
  }
  if (!w->has_deadline_ && !w->cancelled_) return w;  // nothing to watch for
  {
    std::lock_guard<std::mutex> lock(mu_);
    watches_.insert(w.get());
  }
  cv_.notify_all();
  return w;
}

void Limits::Remove(Watch* watch) {
  std::lock_guard<std::mutex> lock(mu_);
  watches_.erase(watch);
}

void Limits::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (watches_.empty()) {
      cv_.wait(lock, [this] { return stopping_ || !watches_.empty(); });
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    // Callbacks run under the lock: a Watch being destroyed waits for them.
    for (Watch* w : watches_) {
      if (w->fired_) continue;
      bool expired = w->has_deadline_ && now >= w->deadline_;
      if (expired || (w->cancelled_ && w->cancelled_())) {
        w->fired_ = true;
        if (expired) {
          w->timed_out_ = true;
          Refusals("query_timeout").Increment();
        }
        if (w->interrupt_) w->interrupt_();
      }
    }
    cv_.wait_for(lock, options_.poll_interval);
  }
}

}  // namespace sluice::common
