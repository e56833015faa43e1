#include "flight/running_queries.h"

namespace sluice::flight {

arrow::Status CancelledStatus() {
  return arrow::Status::Cancelled("query cancelled by a CancelFlightInfo request");
}

RunningQueries::Registration::~Registration() {
  if (owner_ != nullptr) owner_->Remove(this);
}

void RunningQueries::ExpireLocked(Clock::time_point now) {
  for (auto it = cancelled_.begin(); it != cancelled_.end();) {
    it = it->second <= now ? cancelled_.erase(it) : std::next(it);
  }
}

arrow::Result<std::unique_ptr<RunningQueries::Registration>> RunningQueries::Start(
    const std::string& ticket, std::function<void()> interrupt) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked(Clock::now());
  if (cancelled_.count(ticket)) return CancelledStatus();
  auto r = std::make_unique<Registration>();
  r->owner_ = this;
  r->ticket_ = ticket;
  r->interrupt_ = std::move(interrupt);
  running_.emplace(ticket, r.get());
  return r;
}

size_t RunningQueries::Cancel(const std::string& ticket, bool remember) {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = Clock::now();
  ExpireLocked(now);
  if (remember) cancelled_[ticket] = now + remember_;
  size_t n = 0;
  auto [first, last] = running_.equal_range(ticket);
  for (auto it = first; it != last; ++it, ++n) {
    // Under the lock: the registration (and what interrupt_ touches) cannot go
    // away meanwhile.
    it->second->cancelled_ = true;
    if (it->second->interrupt_) it->second->interrupt_();
  }
  return n;
}

void RunningQueries::Remove(Registration* r) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [first, last] = running_.equal_range(r->ticket_);
  for (auto it = first; it != last; ++it) {
    if (it->second == r) {
      running_.erase(it);
      return;
    }
  }
}

arrow::Result<arrow::flight::FlightPayload> CancellableStream::Next() {
  if (registration_->cancelled()) return CancelledStatus();
  auto payload = inner_->Next();
  if (!payload.ok() && registration_->cancelled()) return CancelledStatus();
  return payload;
}

}  // namespace sluice::flight
