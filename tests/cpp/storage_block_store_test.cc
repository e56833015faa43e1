#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "parquet/arrow/reader.h"
#include "arrow/io/file.h"
#include "storage/block_store.h"
#include "test_util.h"

namespace sluice::storage {

using sluice::testing::TempDir;
using sluice::testing::ToyHash;
using sluice::testing::ToyRange;
using sluice::testing::ToyTables;

namespace {

StoreOptions Options(const TempDir& dir) {
  StoreOptions o;
  o.data_dir = dir.path();
  o.dataset = "toy";
  o.network = "testnet";
  o.tables = ToyTables();
  o.compact_min_segments = 1000000;  // tests compact explicitly
  return o;
}

// Every row of `table` in every file of the snapshot, as "block_num/payload" or block_num.
std::vector<uint64_t> StoredBlockNums(const Snapshot& snap, const std::string& table) {
  std::vector<uint64_t> out;
  for (const auto& path : snap.FilesFor(table)) {
    auto in = *arrow::io::ReadableFile::Open(path.string());
    auto reader = *parquet::arrow::OpenFile(in, arrow::default_memory_pool());
    auto read = reader->ReadTable();
    EXPECT_TRUE(read.ok());
    std::shared_ptr<arrow::Table> t = *read;
    auto col = t->GetColumnByName("block_num");
    for (const auto& chunk : col->chunks()) {
      auto a = std::static_pointer_cast<arrow::UInt64Array>(chunk);
      for (int64_t i = 0; i < a->length(); ++i) out.push_back(a->Value(i));
    }
  }
  return out;
}

std::vector<uint64_t> Expected(uint64_t first, uint64_t last, int per_block) {
  std::vector<uint64_t> out;
  for (uint64_t n = first; n <= last; ++n)
    for (int i = 0; i < per_block; ++i) out.push_back(n);
  return out;
}

}  // namespace

TEST(BlockStore, AppendPublishesAndReopens) {
  TempDir dir;
  {
    auto store = *BlockStore::Open(Options(dir));
    EXPECT_FALSE(store->head().has_value());
    ASSERT_TRUE(store->Append(ToyRange(10, 14, Hash32{})).ok());
    ASSERT_TRUE(store->Append(ToyRange(15, 15, ToyHash(14))).ok());
    auto snap = store->snapshot();
    ASSERT_TRUE(snap->range.has_value());
    EXPECT_EQ(snap->range->start, 10u);
    EXPECT_EQ(snap->range->end, 15u);
    EXPECT_EQ(StoredBlockNums(*snap, "events"), Expected(10, 15, 3));
  }
  auto store = *BlockStore::Open(Options(dir));
  auto snap = store->snapshot();
  EXPECT_EQ(snap->range->end, 15u);
  EXPECT_EQ(store->head()->hash, ToyHash(15));
  EXPECT_EQ(snap->Header(12)->parent_hash, ToyHash(11));
  EXPECT_EQ(snap->Header(12)->timestamp, 1700000012);
  EXPECT_EQ(StoredBlockNums(*snap, "blocks"), Expected(10, 15, 1));
}

TEST(BlockStore, RefusesGapsAndBrokenParents) {
  TempDir dir;
  auto store = *BlockStore::Open(Options(dir));
  ASSERT_TRUE(store->Append(ToyRange(0, 4, Hash32{})).ok());
  EXPECT_TRUE(store->Append(ToyRange(6, 7, ToyHash(5))).IsInvalid());      // gap
  EXPECT_TRUE(store->Append(ToyRange(4, 5, ToyHash(3))).IsInvalid());      // duplicate
  EXPECT_TRUE(store->Append(ToyRange(5, 6, ToyHash(4, 7))).IsInvalid());   // wrong parent
  EXPECT_EQ(store->head()->number, 4u);
  EXPECT_EQ(StoredBlockNums(*store->snapshot(), "events"), Expected(0, 4, 3));
}

TEST(BlockStore, SnapshotIsImmutable) {
  TempDir dir;
  auto store = *BlockStore::Open(Options(dir));
  ASSERT_TRUE(store->Append(ToyRange(0, 3, Hash32{})).ok());
  auto before = store->snapshot();
  ASSERT_TRUE(store->Append(ToyRange(4, 9, ToyHash(3))).ok());
  ASSERT_TRUE(store->TruncateAfter(1).ok());
  EXPECT_EQ(before->range->end, 3u);
  EXPECT_EQ(before->Header(3)->hash, ToyHash(3));
  EXPECT_EQ(StoredBlockNums(*before, "events"), Expected(0, 3, 3));  // files still readable
  EXPECT_EQ(store->snapshot()->range->end, 1u);
}

TEST(BlockStore, TruncateAfterCutsEveryTableAtomically) {
  TempDir dir;
  {
    auto store = *BlockStore::Open(Options(dir));
    ASSERT_TRUE(store->Append(ToyRange(0, 9, Hash32{})).ok());
    ASSERT_TRUE(store->Append(ToyRange(10, 19, ToyHash(9))).ok());
    ASSERT_TRUE(store->TruncateAfter(14).ok());  // straddles the second segment
    EXPECT_EQ(store->head()->number, 14u);
    EXPECT_EQ(StoredBlockNums(*store->snapshot(), "events"), Expected(0, 14, 3));
    // The new fork continues from 14.
    ASSERT_TRUE(store->Append(ToyRange(15, 16, ToyHash(14), /*fork=*/1)).ok());
    EXPECT_EQ(store->head()->hash, ToyHash(16, 1));
  }
  auto store = *BlockStore::Open(Options(dir));
  EXPECT_EQ(store->head()->hash, ToyHash(16, 1));
  EXPECT_EQ(StoredBlockNums(*store->snapshot(), "blocks"), Expected(0, 16, 1));
  ASSERT_TRUE(store->TruncateAfter(2).ok());
  EXPECT_EQ(StoredBlockNums(*store->snapshot(), "events"), Expected(0, 2, 3));
}

TEST(BlockStore, CompactionKeepsRowsAndRemovesOldFiles) {
  TempDir dir;
  auto opts = Options(dir);
  opts.compact_min_segments = 4;
  auto store = *BlockStore::Open(opts);
  Hash32 parent{};
  for (uint64_t n = 0; n < 16; ++n) {
    ASSERT_TRUE(store->Append(ToyRange(n, n, parent)).ok());
    parent = ToyHash(n);
  }
  // The background compactor may already have merged some; finish the job.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->CompactOnce().ok());
  auto snap = store->snapshot();
  EXPECT_LT(snap->segments.size(), 16u);
  EXPECT_EQ(StoredBlockNums(*snap, "events"), Expected(0, 15, 3));
  snap.reset();
  // Retired files are deleted once no snapshot holds them. The background
  // compactor may still hold one (or be writing a merge that loses to ours): give
  // it time to finish, which a slow build (sanitizers) needs.
  auto count_files = [&] {
    size_t files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.path() / "toy" / "events")) {
      (void)e;
      ++files;
    }
    return files;
  };
  for (int i = 0; i < 100 && count_files() != store->snapshot()->segments.size() + 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(count_files(), store->snapshot()->segments.size() + 1);  // + empty.parquet
}

TEST(BlockStore, CompactionMergesSegmentsOfSimilarSize) {
  // A backfill commits segments of varying size (here 5 and 9 blocks, on either
  // side of 8): similar sizes merge, whatever power of 8 lies between them.
  TempDir dir;
  auto opts = Options(dir);
  opts.compact_min_segments = 4;
  auto store = *BlockStore::Open(opts);
  Hash32 parent{};
  uint64_t first = 0;
  for (int i = 0; i < 4; ++i) {
    const uint64_t last = first + (i % 2 ? 8 : 4);
    ASSERT_TRUE(store->Append(ToyRange(first, last, parent)).ok());
    parent = ToyHash(last);
    first = last + 1;
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->CompactOnce().ok());
  auto snap = store->snapshot();
  ASSERT_EQ(snap->segments.size(), 1u);
  EXPECT_EQ(snap->segments[0].range.start, 0u);
  EXPECT_EQ(snap->segments[0].range.end, first - 1);
  EXPECT_EQ(StoredBlockNums(*snap, "events"), Expected(0, first - 1, 3));
  // A segment much larger than the ones after it is not rewritten with them: the
  // four new one-block segments merge among themselves.
  const uint64_t merged_end = first - 1;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store->Append(ToyRange(first, first, parent)).ok());
    parent = ToyHash(first);
    ++first;
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->CompactOnce().ok());
  snap = store->snapshot();
  ASSERT_EQ(snap->segments.size(), 2u);
  EXPECT_EQ(snap->segments[0].range.end, merged_end);
  EXPECT_EQ(StoredBlockNums(*snap, "events"), Expected(0, first - 1, 3));
}

TEST(BlockStore, UnpublishedFilesRemovedOnOpen) {
  TempDir dir;
  {
    auto store = *BlockStore::Open(Options(dir));
    ASSERT_TRUE(store->Append(ToyRange(0, 2, Hash32{})).ok());
  }
  // A crash after writing a file but before the manifest swap leaves an orphan.
  auto orphan = dir.path() / "toy" / "events" / "000000000003-000000000003.99.parquet";
  std::ofstream(orphan) << "partial";
  std::ofstream(dir.path() / "toy" / "manifest.json.tmp") << "{garbage";
  auto store = *BlockStore::Open(Options(dir));
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_EQ(store->head()->number, 2u);
  ASSERT_TRUE(store->Append(ToyRange(3, 3, ToyHash(2))).ok());
}

TEST(BlockStore, IdentityChecked) {
  TempDir dir;
  ChainIdentity a{31337, ToyHash(0, 1)}, b{31337, ToyHash(0, 2)};
  {
    auto store = *BlockStore::Open(Options(dir));
    ASSERT_TRUE(store->SetIdentity(a).ok());
  }
  auto store = *BlockStore::Open(Options(dir));
  ASSERT_TRUE(store->identity().has_value());
  EXPECT_EQ(*store->identity(), a);
  auto st = store->SetIdentity(b);
  ASSERT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find(HashToHex(a.genesis_hash)), std::string::npos);
}

TEST(BlockStore, WaitForVersionWakesOnAppend) {
  TempDir dir;
  auto store = *BlockStore::Open(Options(dir));
  uint64_t v0 = store->snapshot()->version;
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(store->Append(ToyRange(0, 0, Hash32{})).ok());
  });
  uint64_t v1 = store->WaitForVersion(v0, std::chrono::seconds(10));
  writer.join();
  EXPECT_GT(v1, v0);
}

}  // namespace sluice::storage

namespace sluice::storage {

TEST(BlockStore, CommonAncestorWalksReplacedBlocks) {
  sluice::testing::TempDir dir;
  StoreOptions o;
  o.data_dir = dir.path();
  o.dataset = "toy";
  o.tables = sluice::testing::ToyTables();
  {
    auto store = *BlockStore::Open(o);
    ASSERT_TRUE(store->Append(sluice::testing::ToyRange(0, 9, Hash32{})).ok());
    auto snap = store->snapshot();
    EXPECT_EQ(store->CommonAncestor(*snap, 7, ToyHash(7)), std::optional<uint64_t>(7));
    EXPECT_EQ(store->CommonAncestor(*snap, 7, ToyHash(7, 9)), std::nullopt);  // unknown fork
    // Fork 1 replaces blocks 6..9 and grows to 11.
    ASSERT_TRUE(store->TruncateAfter(5).ok());
    ASSERT_TRUE(store->Append(sluice::testing::ToyRange(6, 11, ToyHash(5), 1)).ok());
    snap = store->snapshot();
    EXPECT_EQ(store->CommonAncestor(*snap, 9, ToyHash(9)), std::optional<uint64_t>(5));
    EXPECT_EQ(store->CommonAncestor(*snap, 6, ToyHash(6)), std::optional<uint64_t>(5));
    EXPECT_EQ(store->CommonAncestor(*snap, 11, ToyHash(11, 1)), std::optional<uint64_t>(11));
  }
  // The log of replaced blocks survives a restart.
  auto store = *BlockStore::Open(o);
  EXPECT_EQ(store->CommonAncestor(*store->snapshot(), 8, ToyHash(8)), std::optional<uint64_t>(5));
}

}  // namespace sluice::storage
