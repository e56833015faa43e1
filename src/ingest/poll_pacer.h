// When the extractor polls the node's head next, once caught up: often around
// the time the next block is due, at the configured interval otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

namespace sluice::ingest {

/// \brief When to poll the node's head next, once caught up.
///
/// Every `interval`, except in a window around the time the next block is due:
/// there every `interval / 10` (at least 1 ms), so a new block waits for a poll
/// a tenth as long, while the polls between blocks stay at `interval`. The
/// window is learnt from the last 8 intervals between consecutive new heads
/// (one block each): from the shortest minus a slack to the longest plus the
/// slack (slack: the smaller of `interval` and a tenth of the shortest), counted
/// from when the last new head was seen. With fewer than 3 such intervals known
/// (at start, after a gap of several blocks, after a reorg) it polls every
/// `interval`. A chain with a steady block time thus gets fast polls only for
/// the moment around each block's arrival.
class PollPacer {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kSamples = 8;
  static constexpr size_t kMinSamples = 3;

  explicit PollPacer(std::chrono::milliseconds interval);

  /// \brief A poll at `now` answered head number `head`.
  void Observe(Clock::time_point now, uint64_t head);
  /// \brief How long to wait after a poll at `now` before the next one.
  std::chrono::milliseconds Delay(Clock::time_point now) const;
  /// \brief The fast interval: interval / 10, at least 1 ms.
  std::chrono::milliseconds fast() const { return fast_; }
  /// \brief Forget what was learnt (e.g. after a restart of the extractor).
  void Reset();

 private:
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds fast_;
  std::optional<uint64_t> head_;
  Clock::time_point head_seen_{};
  std::deque<Clock::duration> intervals_;  // newest last
};

}  // namespace sluice::ingest
