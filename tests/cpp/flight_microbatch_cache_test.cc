#include <thread>

#include "arrow/buffer.h"
#include "flight/microbatch_cache.h"
#include "gtest/gtest.h"

namespace sluice::flight {

namespace {
arrow::flight::FlightPayload Payload(const std::string& text) {
  arrow::flight::FlightPayload p;
  p.app_metadata = arrow::Buffer::FromString(text);
  return p;
}
}  // namespace

TEST(MicrobatchCache, OwnerPublishesWaitersReceive) {
  MicrobatchCache cache;
  bool owner = false;
  auto a = cache.Acquire("k", &owner);
  ASSERT_TRUE(owner);
  bool owner2 = true;
  auto b = cache.Acquire("k", &owner2);
  EXPECT_FALSE(owner2);
  std::thread t([&] {
    a->Add(Payload("one"));
    a->Add(Payload("two"));
    a->Finish();
  });
  const auto* got = b->Wait(std::chrono::seconds(10));
  t.join();
  ASSERT_NE(got, nullptr);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[1].app_metadata->ToString(), "two");
  bool owner3 = true;
  cache.Acquire("other", &owner3);
  EXPECT_TRUE(owner3);
}

TEST(MicrobatchCache, AbandonedAndOversizedAreNotShared) {
  MicrobatchCache cache(/*max_bytes=*/10);
  bool owner = false;
  auto a = cache.Acquire("k", &owner);
  bool owner2 = true;
  auto b = cache.Acquire("k", &owner2);
  EXPECT_FALSE(owner2);
  EXPECT_TRUE(a->Add(Payload("12345")));
  EXPECT_FALSE(a->Add(Payload("1234567890")));  // over 10 bytes: abandoned
  EXPECT_EQ(b->Wait(std::chrono::seconds(10)), nullptr);
  bool owner3 = false;
  cache.Acquire("k", &owner3);
  EXPECT_TRUE(owner3);  // the next one computes it again
}

TEST(MicrobatchCache, OwnerGoneWaiterComputes) {
  MicrobatchCache cache;
  bool owner = false;
  auto a = cache.Acquire("k", &owner);
  auto b = cache.Acquire("k", &owner);
  a->Abandon();
  EXPECT_EQ(b->Wait(std::chrono::seconds(10)), nullptr);
}

}  // namespace sluice::flight
