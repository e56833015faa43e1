// PollPacer: when the extractor polls the node's head next. Pure timing
// arithmetic on given time points: no clock, no node.
#include <chrono>

#include "gtest/gtest.h"
#include "ingest/extractor.h"

namespace sluice::ingest {
namespace {

using std::chrono::milliseconds;
using T = PollPacer::Clock::time_point;

T At(int64_t ms) { return T{} + milliseconds(ms); }

// Heads 1, 2, … seen at the given times (ms).
PollPacer Learnt(std::initializer_list<int64_t> seen, milliseconds interval = milliseconds(50)) {
  PollPacer p(interval);
  uint64_t head = 1;
  for (int64_t t : seen) p.Observe(At(t), head++);
  return p;
}

TEST(PollPacer, FastIntervalIsATenthAtLeastOneMs) {
  EXPECT_EQ(PollPacer(milliseconds(50)).fast(), milliseconds(5));
  EXPECT_EQ(PollPacer(milliseconds(1000)).fast(), milliseconds(100));
  EXPECT_EQ(PollPacer(milliseconds(5)).fast(), milliseconds(1));
}

TEST(PollPacer, PollsEveryIntervalUntilItKnowsTheBlockTime) {
  PollPacer p(milliseconds(50));
  EXPECT_EQ(p.Delay(At(0)), milliseconds(50));  // nothing seen
  p.Observe(At(0), 10);
  p.Observe(At(1000), 11);
  p.Observe(At(2000), 12);  // two intervals: fewer than kMinSamples
  EXPECT_EQ(p.Delay(At(2950)), milliseconds(50));
  p.Observe(At(3000), 13);  // the third
  EXPECT_EQ(p.Delay(At(3950)), milliseconds(5));
}

TEST(PollPacer, FastOnlyInTheWindowAroundTheNextBlock) {
  // Blocks every 1000 ms: the window is [1000 - 50, 1000 + 50] after the last.
  PollPacer p = Learnt({0, 1000, 2000, 3000});
  EXPECT_EQ(p.Delay(At(3000)), milliseconds(50));   // just seen: the usual interval
  EXPECT_EQ(p.Delay(At(3900)), milliseconds(50));   // 50 ms before the window
  EXPECT_EQ(p.Delay(At(3920)), milliseconds(30));   // wakes up at the window's start
  EXPECT_EQ(p.Delay(At(3948)), milliseconds(5));    // at least the fast interval
  EXPECT_EQ(p.Delay(At(3950)), milliseconds(5));    // in the window
  EXPECT_EQ(p.Delay(At(4049)), milliseconds(5));
  EXPECT_EQ(p.Delay(At(4050)), milliseconds(50));   // the block is late: back to the interval
  EXPECT_EQ(p.Delay(At(9000)), milliseconds(50));
}

TEST(PollPacer, WindowSpansTheShortestToTheLongestInterval) {
  // Intervals 100, 200, 150 ms: slack min(50, 100 / 10) = 10 ms, window [90, 210].
  PollPacer p = Learnt({0, 100, 300, 450});
  EXPECT_EQ(p.Delay(At(450 + 50)), milliseconds(40));
  EXPECT_EQ(p.Delay(At(450 + 89)), milliseconds(5));  // 1 ms to go, but at least fast()
  EXPECT_EQ(p.Delay(At(450 + 90)), milliseconds(5));
  EXPECT_EQ(p.Delay(At(450 + 209)), milliseconds(5));
  EXPECT_EQ(p.Delay(At(450 + 210)), milliseconds(50));
}

TEST(PollPacer, KeepsTheLastEightIntervals) {
  // Eight slow blocks (1000 ms), then eight fast ones (100 ms): the slow ones are forgotten.
  PollPacer p(milliseconds(50));
  int64_t t = 0;
  uint64_t head = 1;
  p.Observe(At(t), head++);
  for (int i = 0; i < 8; ++i) p.Observe(At(t += 1000), head++);
  EXPECT_EQ(p.Delay(At(t + 100)), milliseconds(50));  // the window is at [950, 1050]
  for (int i = 0; i < 7; ++i) p.Observe(At(t += 100), head++);
  // One slow interval left: the window is [90, 1010] (the slack comes from the shortest).
  EXPECT_EQ(p.Delay(At(t + 95)), milliseconds(5));
  EXPECT_EQ(p.Delay(At(t + 1009)), milliseconds(5));
  EXPECT_EQ(p.Delay(At(t + 1010)), milliseconds(50));
  p.Observe(At(t += 100), head++);
  EXPECT_EQ(p.Delay(At(t + 95)), milliseconds(5));   // [90, 110]
  EXPECT_EQ(p.Delay(At(t + 110)), milliseconds(50));
}

TEST(PollPacer, SeveralBlocksAtOnceOrALowerHeadForgetTheIntervals) {
  PollPacer p = Learnt({0, 1000, 2000, 3000});  // heads 1..4
  EXPECT_EQ(p.Delay(At(3950)), milliseconds(5));
  p.Observe(At(4000), 7);  // three blocks at once (a backfill, a burst)
  EXPECT_EQ(p.Delay(At(4950)), milliseconds(50));

  PollPacer q = Learnt({0, 1000, 2000, 3000});
  q.Observe(At(3500), 3);  // a lower head (a reorg, another node behind a balancer)
  EXPECT_EQ(q.Delay(At(4450)), milliseconds(50));

  PollPacer r = Learnt({0, 1000, 2000, 3000});
  r.Observe(At(3500), 4);  // the same head again changes nothing
  EXPECT_EQ(r.Delay(At(3950)), milliseconds(5));
  r.Reset();
  EXPECT_EQ(r.Delay(At(3950)), milliseconds(50));
}

}  // namespace
}  // namespace sluice::ingest
