#include <atomic>
#include <thread>

#include "common/limits.h"
#include "gtest/gtest.h"

namespace sluice::common {

TEST(Limits, AdmitsUpToTheLimitThenRefuses) {
  LimitsOptions o;
  o.max_concurrent_queries = 2;
  o.max_concurrent_streams = 1;
  Limits limits(o);
  auto a = limits.AdmitQuery();
  auto b = limits.AdmitQuery();
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = limits.AdmitQuery();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(LimitOf(c.status()), LimitKind::kResourceExhausted);
  EXPECT_NE(c.status().message().find("max_concurrent_queries = 2"), std::string::npos);
  EXPECT_EQ(limits.running_queries(), 2);
  // Streams have their own slots.
  auto s = limits.AdmitStream();
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(limits.AdmitStream().ok());
  // A freed slot is admitted again; a moved slot is freed once.
  Admission moved = std::move(*a);
  moved.Release();
  EXPECT_EQ(limits.running_queries(), 1);
  auto d = limits.AdmitQuery();
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(limits.running_queries(), 2);
}

TEST(Limits, ZeroIsUnlimited) {
  Limits limits(LimitsOptions{});
  std::vector<Admission> held;
  for (int i = 0; i < 1000; ++i) held.push_back(*limits.AdmitQuery());
  EXPECT_EQ(limits.running_queries(), 1000);
  held.clear();
  EXPECT_EQ(limits.running_queries(), 0);
}

TEST(Limits, DeadlineInterruptsOnceAndExplains) {
  LimitsOptions o;
  o.query_timeout = std::chrono::milliseconds(100);
  o.poll_interval = std::chrono::milliseconds(10);
  Limits limits(o);
  std::atomic<int> interrupts{0};
  auto watch = limits.WatchQuery(nullptr, [&] { interrupts++; });
  while (!watch->timed_out()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(interrupts.load(), 1);
  auto st = watch->Explain(arrow::Status::Cancelled("query cancelled"));
  EXPECT_EQ(LimitOf(st), LimitKind::kDeadlineExceeded);
  EXPECT_NE(st.message().find("query_timeout_secs"), std::string::npos);
}

TEST(Limits, CancelledClientInterrupts) {
  LimitsOptions o;
  o.poll_interval = std::chrono::milliseconds(10);
  Limits limits(o);
  std::atomic<bool> gone{false};
  std::atomic<int> interrupts{0};
  auto watch = limits.WatchQuery([&] { return gone.load(); }, [&] { interrupts++; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(interrupts.load(), 0);
  gone = true;
  while (interrupts.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(watch->timed_out());
  // Not a timeout: the status stays what it was.
  EXPECT_TRUE(watch->Explain(arrow::Status::Cancelled("x")).IsCancelled());
  EXPECT_FALSE(LimitOf(arrow::Status::Cancelled("x")));
}

TEST(Limits, DestroyedWatchNeverFires) {
  LimitsOptions o;
  o.query_timeout = std::chrono::milliseconds(30);
  o.poll_interval = std::chrono::milliseconds(5);
  Limits limits(o);
  std::atomic<int> interrupts{0};
  for (int i = 0; i < 100; ++i) {
    auto watch = limits.WatchQuery(nullptr, [&] { interrupts++; });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(interrupts.load(), 0);
}

}  // namespace sluice::common
