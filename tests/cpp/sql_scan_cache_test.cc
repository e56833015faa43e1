#include <chrono>
#include <fstream>

#include "arrow/array/builder_primitive.h"
#include "gtest/gtest.h"
#include "sql/scan_cache.h"
#include "test_util.h"

namespace sluice::sql {

using sluice::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// A stand-in segment file (the cache only stats it) and a batch of `rows` int64s.
fs::path MakeSegment(const fs::path& data_dir, const std::string& name, size_t bytes) {
  fs::path p = data_dir / "ds" / "t" / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p) << std::string(bytes, 'x');
  return p;
}

std::shared_ptr<arrow::RecordBatch> Batch(int64_t rows) {
  arrow::Int64Builder b;
  for (int64_t i = 0; i < rows; ++i) EXPECT_TRUE(b.Append(i).ok());
  auto schema = arrow::schema({arrow::field("block_num", arrow::int64()),
                               arrow::field("x", arrow::int64())});
  auto a = *b.Finish();
  return arrow::RecordBatch::Make(schema, rows, {a, a});
}

// Cache a segment as a second full read does (the first one only marks it).
bool Cache(ScanCache* cache, const fs::path& segment, int64_t rows) {
  auto batch = Batch(rows);
  auto w = cache->Begin(segment, batch->schema());
  if (!w) w = cache->Begin(segment, batch->schema());
  if (!w) return false;
  EXPECT_TRUE(w->Write(*batch).ok());
  EXPECT_TRUE(w->Commit().ok());
  return true;
}

ScanCacheOptions Options(const TempDir& dir, int64_t max_bytes, int residency_secs) {
  ScanCacheOptions o;
  o.data_dir = dir.path();
  o.dir = dir.path() / ".scan_cache";
  o.max_bytes = max_bytes;
  o.min_free_bytes = 0;
  o.min_residency = std::chrono::seconds(residency_secs);
  return o;
}

}  // namespace

TEST(ScanCache, FindsWhatWasWrittenWithTheWantedFields) {
  TempDir dir;
  auto cache = *ScanCache::Open(Options(dir, 1 << 20, 600));
  auto seg = MakeSegment(dir.path(), "0-9.1.parquet", 100);
  EXPECT_EQ(*cache->Find(seg, *Batch(1)->schema()), nullptr);
  ASSERT_TRUE(Cache(cache.get(), seg, 1000));
  EXPECT_FALSE(Cache(cache.get(), seg, 1000));  // once
  auto wanted = arrow::schema({arrow::field("x", arrow::int64())});
  auto reader = *cache->Find(seg, *wanted);
  ASSERT_NE(reader, nullptr);
  auto b = *reader->ReadRecordBatch(0);
  EXPECT_EQ(b->num_columns(), 1);
  EXPECT_TRUE(b->column(0)->Equals(*Batch(1000)->column(1)));
  // Another type for a field: not this entry.
  auto other = arrow::schema({arrow::field("x", arrow::int32())});
  EXPECT_EQ(*cache->Find(seg, *other), nullptr);
  // Reopened (a restart): the entry is still there, and still checked.
  cache.reset();
  cache = *ScanCache::Open(Options(dir, 1 << 20, 600));
  EXPECT_EQ(cache->entries(), 1u);
  EXPECT_NE(*cache->Find(seg, *wanted), nullptr);
  std::ofstream(seg, std::ios::app) << "changed";
  EXPECT_EQ(*cache->Find(seg, *wanted), nullptr);
  EXPECT_EQ(cache->entries(), 0u);
}

TEST(ScanCache, AdmitsASegmentOnItsSecondRead) {
  TempDir dir;
  auto cache = *ScanCache::Open(Options(dir, 1 << 20, 600));
  auto seg = MakeSegment(dir.path(), "0-9.1.parquet", 100);
  auto schema = Batch(1)->schema();
  EXPECT_EQ(cache->Begin(seg, schema), nullptr);  // read once: remembered only
  auto w = cache->Begin(seg, schema);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(cache->Begin(seg, schema), nullptr);  // being written
  ASSERT_TRUE(w->Write(*Batch(5)).ok());
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(cache->entries(), 1u);
  EXPECT_EQ(cache->Begin(seg, schema), nullptr);  // there
}

TEST(ScanCache, AnAbandonedWriteLeavesNothing) {
  TempDir dir;
  auto cache = *ScanCache::Open(Options(dir, 1 << 20, 600));
  auto seg = MakeSegment(dir.path(), "0-9.1.parquet", 100);
  {
    auto batch = Batch(10);
    EXPECT_EQ(cache->Begin(seg, batch->schema()), nullptr);
    auto w = cache->Begin(seg, batch->schema());
    ASSERT_NE(w, nullptr);
    ASSERT_TRUE(w->Write(*batch).ok());
  }  // no Commit: a scan that stopped
  EXPECT_EQ(cache->entries(), 0u);
  EXPECT_EQ(*cache->Find(seg, *Batch(1)->schema()), nullptr);
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path() / ".scan_cache")) {
    if (e.is_regular_file() && e.path().filename() != "BOOT_ID") ++files;
  }
  EXPECT_EQ(files, 0);
  auto batch = Batch(10);
  auto w = cache->Begin(seg, batch->schema());  // it can be cached later (no new mark)
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Write(*batch).ok() && w->Commit().ok());
}

TEST(ScanCache, StaysUnderItsBoundWithoutChurning) {
  TempDir dir;
  // Room for about two entries of 20,000 rows (2 x 160 KB each) plus slack.
  const int64_t max = 700 * 1000;
  auto cache = *ScanCache::Open(Options(dir, max, 600));
  std::vector<fs::path> segs;
  // (Segments of about a third of their Arrow size, as the cache estimates.)
  for (int i = 0; i < 4; ++i) {
    segs.push_back(MakeSegment(dir.path(), std::to_string(i) + ".parquet", 110000));
  }
  for (const auto& s : segs) Cache(cache.get(), s, 20000);
  EXPECT_EQ(cache->entries(), 2u);  // the first two stay: they were used just now
  EXPECT_LE(cache->bytes(), max);
  EXPECT_NE(*cache->Find(segs[0], *Batch(1)->schema()), nullptr);
  EXPECT_EQ(*cache->Find(segs[3], *Batch(1)->schema()), nullptr);
  // Without residency, least recently used entries make room: segs[1] goes.
  cache.reset();
  cache = *ScanCache::Open(Options(dir, max, 0));
  EXPECT_NE(*cache->Find(segs[0], *Batch(1)->schema()), nullptr);
  EXPECT_TRUE(Cache(cache.get(), segs[3], 20000));
  EXPECT_EQ(cache->entries(), 2u);
  EXPECT_LE(cache->bytes(), max);
  EXPECT_NE(*cache->Find(segs[0], *Batch(1)->schema()), nullptr);
  EXPECT_EQ(*cache->Find(segs[1], *Batch(1)->schema()), nullptr);
  EXPECT_NE(*cache->Find(segs[3], *Batch(1)->schema()), nullptr);
  // A segment that is gone takes its entry with it when room is needed.
  fs::remove(segs[0]);
  EXPECT_TRUE(Cache(cache.get(), segs[2], 20000));
  EXPECT_EQ(cache->entries(), 2u);
  EXPECT_EQ(*cache->Find(segs[0], *Batch(1)->schema()), nullptr);
  EXPECT_NE(*cache->Find(segs[3], *Batch(1)->schema()), nullptr);
}

TEST(ScanCache, UnfinishedFilesAreDeletedAtOpen) {
  TempDir dir;
  auto seg = MakeSegment(dir.path(), "0-9.1.parquet", 100);
  {
    auto cache = *ScanCache::Open(Options(dir, 1 << 20, 600));
    ASSERT_TRUE(Cache(cache.get(), seg, 10));
  }
  // A kill -9 mid-write leaves a .tmp; a torn entry fails to open.
  auto tdir = dir.path() / ".scan_cache" / "ds" / "t";
  std::ofstream(tdir / "1-2.3.parquet.arrow.tmp") << "partial";
  MakeSegment(dir.path(), "5-6.2.parquet", 10);
  std::ofstream(tdir / "5-6.2.parquet.arrow") << "torn";
  auto cache = *ScanCache::Open(Options(dir, 1 << 20, 600));
  EXPECT_EQ(cache->entries(), 1u);
  EXPECT_FALSE(fs::exists(tdir / "1-2.3.parquet.arrow.tmp"));
  EXPECT_FALSE(fs::exists(tdir / "5-6.2.parquet.arrow"));
  EXPECT_TRUE(fs::exists(tdir / "0-9.1.parquet.arrow"));
}

}  // namespace sluice::sql
