// Segment files' row groups (storage/io_util.h WriteParquet, storage/segment_format.h
// RowGroupBlockEnds): each ends where a block ends, unless one block alone is
// larger than a row group; the ends are read back from the file's statistics.
// Columns LZ4 cannot shrink are stored uncompressed (IncompressibleColumns).
#include <random>
#include <string>
#include <vector>

#include "arrow/api.h"
#include "gtest/gtest.h"
#include "parquet/arrow/reader.h"
#include "parquet/file_reader.h"
#include "parquet/metadata.h"
#include "parquet/statistics.h"
#include "storage/io_util.h"
#include "storage/segment_format.h"
#include "storage/snapshot.h"
#include "test_util.h"

namespace sluice::storage {
namespace {

// A table of `rows[i]` rows of block `first + i`.
std::shared_ptr<arrow::Table> Blocks(uint64_t first, const std::vector<int>& rows) {
  arrow::UInt64Builder block_num;
  arrow::Int64Builder row;
  int64_t k = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int r = 0; r < rows[i]; ++r) {
      EXPECT_TRUE(block_num.Append(first + i).ok());
      EXPECT_TRUE(row.Append(k++).ok());
    }
  }
  auto schema = arrow::schema({arrow::field("block_num", arrow::uint64(), false),
                               arrow::field("row", arrow::int64(), false)});
  return arrow::Table::Make(schema, {*block_num.Finish(), *row.Finish()});
}

// Each row group's [min, max] block_num and row count, as Parquet's metadata says.
std::vector<std::tuple<int64_t, int64_t, int64_t>> Groups(const std::filesystem::path& path) {
  auto md = parquet::ParquetFileReader::OpenFile(path.string())->metadata();
  std::vector<std::tuple<int64_t, int64_t, int64_t>> out;
  for (int g = 0; g < md->num_row_groups(); ++g) {
    auto st = std::static_pointer_cast<parquet::Int64Statistics>(
        md->RowGroup(g)->ColumnChunk(0)->statistics());
    out.emplace_back(st->min(), st->max(), md->RowGroup(g)->num_rows());
  }
  return out;
}

TEST(SegmentFormat, RowGroupsEndWhereBlocksEnd) {
  sluice::testing::TempDir dir;
  const auto path = dir.path() / "a.parquet";
  // Blocks 100..106 of 4, 4, 4, 25, 1, 3, 3 rows; row groups of about 10 rows.
  auto table = Blocks(100, {4, 4, 4, 25, 1, 3, 3});
  ASSERT_TRUE(WriteParquet(path, table, 10, false, {}).ok());
  using G = std::tuple<int64_t, int64_t, int64_t>;
  // Rows 0-7 (blocks 100-101: 102 would not fit), 8-11 (block 102: the row group
  // ends before 103), then block 103's 25 rows (12-36) cut every 10 rows (a block
  // larger than a row group straddles), its last 5 with blocks 104-105 (up to row
  // 40: 106 would not fit), then block 106.
  EXPECT_EQ(Groups(path), (std::vector<G>{{100, 101, 8}, {102, 102, 4}, {103, 103, 10},
                                          {103, 103, 10}, {103, 105, 9}, {106, 106, 3}}));
  auto ends = RowGroupBlockEnds(path);
  ASSERT_TRUE(ends.ok());
  EXPECT_EQ(*ends, (std::vector<uint64_t>{101, 102, 105, 106}));
  // Every row, in order.
  auto back = ReadParquet(path);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE((*back)->Equals(*table)) << (*back)->ToString();
}

TEST(SegmentFormat, IncompressibleColumnsAreStoredUncompressed) {
  // 2,000 rows: random 32-byte hashes (LZ4 cannot shrink them), one hash repeated
  // (as a block hash is in every row of its block), repetitive strings.
  std::mt19937_64 rng(7);
  arrow::FixedSizeBinaryBuilder random(arrow::fixed_size_binary(32));
  arrow::FixedSizeBinaryBuilder repeated(arrow::fixed_size_binary(32));
  arrow::StringBuilder text;
  arrow::UInt64Builder block_num;
  std::string same(32, '\x5a');
  for (int i = 0; i < 2000; ++i) {
    std::string h(32, '\0');
    for (auto& c : h) c = static_cast<char>(rng());
    ASSERT_TRUE(random.Append(h).ok());
    ASSERT_TRUE(repeated.Append(same).ok());
    ASSERT_TRUE(text.Append("transfer " + std::to_string(i % 7)).ok());
    ASSERT_TRUE(block_num.Append(static_cast<uint64_t>(i / 10)).ok());
  }
  auto schema = arrow::schema({arrow::field("block_num", arrow::uint64()),
                               arrow::field("tx_hash", arrow::fixed_size_binary(32)),
                               arrow::field("block_hash", arrow::fixed_size_binary(32)),
                               arrow::field("memo", arrow::utf8())});
  auto table = arrow::Table::Make(
      schema, {*block_num.Finish(), *random.Finish(), *repeated.Finish(), *text.Finish()});
  EXPECT_EQ(IncompressibleColumns(*table), std::vector<std::string>{"tx_hash"});
  // The file says so per column chunk, and reads back the same.
  sluice::testing::TempDir dir;
  const auto path = dir.path() / "a.parquet";
  ASSERT_TRUE(WriteParquet(path, table, 1000, false, {}).ok());
  auto md = parquet::ParquetFileReader::OpenFile(path.string())->metadata();
  ASSERT_EQ(md->num_row_groups(), 2);
  for (int g = 0; g < md->num_row_groups(); ++g) {
    auto rg = md->RowGroup(g);
    EXPECT_EQ(rg->ColumnChunk(1)->compression(), parquet::Compression::UNCOMPRESSED);
    EXPECT_EQ(rg->ColumnChunk(2)->compression(), parquet::Compression::LZ4);
    EXPECT_EQ(rg->ColumnChunk(3)->compression(), parquet::Compression::LZ4);
  }
  auto back = ReadParquet(path);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE((*back)->Equals(*table));
}

TEST(SegmentFormat, SmallTableIsOneRowGroup) {
  sluice::testing::TempDir dir;
  const auto path = dir.path() / "b.parquet";
  ASSERT_TRUE(WriteParquet(path, Blocks(0, {3, 3}), 10, false, {}).ok());
  EXPECT_EQ(Groups(path).size(), 1u);
  EXPECT_EQ(*RowGroupBlockEnds(path), (std::vector<uint64_t>{1}));
  EXPECT_FALSE(RowGroupBlockEnds(dir.path() / "missing.parquet").ok());
}

TEST(SegmentFormat, SeqOfObjectNames) {
  EXPECT_EQ(SeqOfObject("logs/" + SegmentFileName({47, 50}, 19)), 19u);
  EXPECT_EQ(SeqOfObject(SegmentFileName({0, 0}, 1)), 1u);
  EXPECT_EQ(SeqOfObject("logs/empty.parquet"), std::nullopt);
  EXPECT_EQ(SeqOfObject("logs/000000000047-000000000050.19.parquet.tmp"), std::nullopt);
  EXPECT_EQ(SeqOfObject("logs/000000000047-000000000050.x.parquet"), std::nullopt);
}

}  // namespace
}  // namespace sluice::storage
