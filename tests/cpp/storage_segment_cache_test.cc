// The segment cache (storage/segment_cache.h): the byte bound, LRU order, pins,
// one fill per key under concurrency, and files surviving a restart. Fills write
// real files; the expected contents are what each fill wrote.
#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "storage/segment_cache.h"
#include "test_util.h"

namespace sluice::storage {

using sluice::testing::TempDir;

namespace {

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fill writing `bytes` bytes of the key's first letter, counting its calls.
SegmentCache::Fill Filler(int64_t bytes, std::atomic<int>* calls) {
  return [bytes, calls](const std::string& key, const std::filesystem::path& tmp) {
    calls->fetch_add(1);
    std::ofstream(tmp) << std::string(static_cast<size_t>(bytes), key[0]);
    return arrow::Status::OK();
  };
}

std::shared_ptr<SegmentCache> Open(const TempDir& dir, int64_t max_bytes) {
  SegmentCacheOptions o;
  o.dir = dir.path() / "cache";
  o.max_bytes = max_bytes;
  auto cache = SegmentCache::Open(o);
  EXPECT_TRUE(cache.ok()) << cache.status().ToString();
  return *cache;
}

}  // namespace

TEST(SegmentCache, FillsOnceThenHits) {
  TempDir dir;
  auto cache = Open(dir, 1000);
  std::atomic<int> calls{0};
  {
    auto pin = cache->Pin({"ds/t/a", "ds/t/b"}, Filler(100, &calls));
    ASSERT_TRUE(pin.ok()) << pin.status().ToString();
    EXPECT_EQ(Read(cache->PathOf("ds/t/a")), std::string(100, 'd'));
  }
  auto again = cache->Pin({"ds/t/a"}, Filler(100, &calls));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(cache->stats().hits, 1u);
  EXPECT_EQ(cache->stats().bytes, 200);
}

TEST(SegmentCache, EvictsLeastRecentlyUsedUnpinnedToTheBound) {
  TempDir dir;
  auto cache = Open(dir, 250);  // room for two files of 100
  std::atomic<int> calls{0};
  ASSERT_TRUE(cache->Pin({"a"}, Filler(100, &calls)).ok());
  ASSERT_TRUE(cache->Pin({"b"}, Filler(100, &calls)).ok());
  ASSERT_TRUE(cache->Pin({"a"}, Filler(100, &calls)).ok());  // a is now the most recent
  ASSERT_TRUE(cache->Pin({"c"}, Filler(100, &calls)).ok());  // evicts b
  EXPECT_TRUE(std::filesystem::exists(cache->PathOf("a")));
  EXPECT_FALSE(std::filesystem::exists(cache->PathOf("b")));
  EXPECT_TRUE(std::filesystem::exists(cache->PathOf("c")));
  EXPECT_LE(cache->stats().bytes, 250);
  EXPECT_EQ(cache->stats().evictions, 1u);
}

TEST(SegmentCache, PinnedFilesStayBeyondTheBoundUntilReleased) {
  TempDir dir;
  auto cache = Open(dir, 150);
  std::atomic<int> calls{0};
  auto pin = cache->Pin({"a", "b", "c"}, Filler(100, &calls));
  ASSERT_TRUE(pin.ok());
  for (const char* k : {"a", "b", "c"}) EXPECT_TRUE(std::filesystem::exists(cache->PathOf(k)));
  EXPECT_EQ(cache->stats().bytes, 300);
  pin->reset();
  EXPECT_LE(cache->stats().bytes, 150);
}

TEST(SegmentCache, RemoveWaitsForTheLastPin) {
  TempDir dir;
  auto cache = Open(dir, 1000);
  std::atomic<int> calls{0};
  auto pin = cache->Pin({"a"}, Filler(10, &calls));
  ASSERT_TRUE(pin.ok());
  cache->Remove("a");
  EXPECT_TRUE(std::filesystem::exists(cache->PathOf("a")));
  pin->reset();
  EXPECT_FALSE(std::filesystem::exists(cache->PathOf("a")));
  EXPECT_EQ(cache->stats().bytes, 0);
}

TEST(SegmentCache, ConcurrentPinsOfOneKeyFillOnce) {
  TempDir dir;
  auto cache = Open(dir, 1 << 20);
  std::atomic<int> calls{0};
  auto slow = [&](const std::string& key, const std::filesystem::path& tmp) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return Filler(64, &calls)(key, tmp);
  };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto pin = cache->Pin({"shared"}, slow);
      if (pin.ok() && Read(cache->PathOf("shared")) == std::string(64, 's')) ok.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(calls.load(), 1);
}

TEST(SegmentCache, AFailedFillLeavesNothingAndReportsTheError) {
  TempDir dir;
  auto cache = Open(dir, 1000);
  auto fail = [](const std::string&, const std::filesystem::path& tmp) {
    std::ofstream(tmp) << "partial";
    return arrow::Status::IOError("object store unreachable");
  };
  auto pin = cache->Pin({"x"}, fail);
  ASSERT_FALSE(pin.ok());
  EXPECT_NE(pin.status().message().find("unreachable"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(cache->PathOf("x")));
  size_t files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir.path() / "cache")) {
    files += e.is_regular_file();
  }
  EXPECT_EQ(files, 0u);
}

TEST(SegmentCache, KeepsWholeFilesAcrossARestart) {
  TempDir dir;
  std::atomic<int> calls{0};
  {
    auto cache = Open(dir, 1000);
    ASSERT_TRUE(cache->Pin({"ds/t/a"}, Filler(100, &calls)).ok());
  }
  std::ofstream(dir.path() / "cache" / "ds" / "t" / "b.part-1-1") << "half";
  auto cache = Open(dir, 1000);
  EXPECT_EQ(cache->stats().files, 1);
  ASSERT_TRUE(cache->Pin({"ds/t/a"}, Filler(100, &calls)).ok());
  EXPECT_EQ(calls.load(), 1);  // not fetched again
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "cache" / "ds" / "t" / "b.part-1-1"));
}

}  // namespace sluice::storage
