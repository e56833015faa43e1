// Segment files' row groups (storage/io_util.h WriteParquet, storage/segment_format.h
// RowGroupBlockEnds): each ends where a block ends, unless one block alone is
// larger than a row group; the ends are read back from the file's statistics.
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
