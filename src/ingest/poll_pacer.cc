#include "ingest/poll_pacer.h"

#include <algorithm>

namespace sluice::ingest {

PollPacer::PollPacer(std::chrono::milliseconds interval)
    : interval_(interval),
      fast_(std::max(std::chrono::milliseconds(1), interval / 10)) {}

void PollPacer::Reset() {
  head_.reset();
  intervals_.clear();
}

void PollPacer::Observe(Clock::time_point now, uint64_t head) {
  if (head_ && head == *head_) return;
  if (head_ && head == *head_ + 1) {
    // One new block: the time since the previous one is a block interval (as
    // seen through the polls).
    intervals_.push_back(now - head_seen_);
    if (intervals_.size() > kSamples) intervals_.pop_front();
  } else if (head_) {
    // Several blocks at once (backfill, a slow poll) or a lower head (a reorg,
    // another node): the intervals tell nothing; learn anew.
    intervals_.clear();
  }
  head_ = head;
  head_seen_ = now;
}

std::chrono::milliseconds PollPacer::Delay(Clock::time_point now) const {
  using std::chrono::ceil;
  using std::chrono::milliseconds;
  if (!head_ || intervals_.size() < kMinSamples) return interval_;
  const auto [lo_it, hi_it] = std::minmax_element(intervals_.begin(), intervals_.end());
  const Clock::duration slack = std::min<Clock::duration>(interval_, *lo_it / 10);
  const Clock::duration from = *lo_it - slack;
  const Clock::duration to = *hi_it + slack;
  const Clock::duration elapsed = now - head_seen_;
  if (elapsed >= to) return interval_;
  if (elapsed >= from) return fast_;
  // Before the window: the usual interval, but wake up at its start.
  return std::clamp(ceil<milliseconds>(from - elapsed), fast_, interval_);
}

}  // namespace sluice::ingest
