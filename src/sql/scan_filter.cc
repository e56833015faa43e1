// Row groups a direct scan need not read, and the rows it keeps of those it reads
// (sql/scan_filter.h).
#include "sql/scan_filter.h"

#include <cstring>

#include "arrow/builder.h"
#include "arrow/compute/api.h"
#include "parquet/bloom_filter.h"
#include "parquet/bloom_filter_reader.h"
#include "parquet/exception.h"
#include "parquet/statistics.h"
#include "sql/scan_expression.h"
#include "sql/scan_memory.h"

namespace sluice::sql {

namespace cp = arrow::compute;

// Whether row group `g` surely holds no row of some equality clause: for each
// of its equalities the column's statistics or bloom filter exclude the value.
bool EqualitiesRuleOut(parquet::ParquetFileReader& file, int g, parquet::RowGroupMetaData& rg,
                       const std::vector<int>& wide_leaf, const ScanFieldMatch& match) {
  auto& blooms = file.GetBloomFilterReader();
  std::shared_ptr<parquet::RowGroupBloomFilterReader> group;
  for (const auto& clause : match) {
    bool possible = false;
    for (const auto& [field, value] : clause) {
      const int leaf = wide_leaf[static_cast<size_t>(field)];
      if (leaf < 0 ||
          rg.schema()->Column(leaf)->physical_type() != parquet::Type::FIXED_LEN_BYTE_ARRAY) {
        possible = true;
        break;
      }
      const int width = rg.schema()->Column(leaf)->type_length();
      if (static_cast<int>(value.size()) != width) continue;  // never equal
      auto chunk = rg.ColumnChunk(leaf);
      auto stats = chunk->statistics();
      if (stats && stats->HasMinMax()) {
        auto typed = std::static_pointer_cast<parquet::FLBAStatistics>(stats);
        const auto* v = reinterpret_cast<const uint8_t*>(value.data());
        if (std::memcmp(v, typed->min().ptr, width) < 0 ||
            std::memcmp(v, typed->max().ptr, width) > 0) {
          continue;
        }
      }
      if (!group) {
        try {
          group = blooms.RowGroup(g);
        } catch (const parquet::ParquetException&) {
          possible = true;  // unreadable: read the row group
          break;
        }
      }
      std::unique_ptr<parquet::BloomFilter> bloom;
      if (group) {
        try {
          bloom = group->GetColumnBloomFilter(leaf);
        } catch (const parquet::ParquetException&) {
          bloom.reset();
        }
      }
      parquet::FixedLenByteArray flba(reinterpret_cast<const uint8_t*>(value.data()));
      if (!bloom || bloom->FindHash(bloom->Hash(&flba, static_cast<uint32_t>(width)))) {
        possible = true;
        break;
      }
    }
    if (!possible) return true;
  }
  return false;
}

// Whether a range rules row group `rg` out by its column's min/max statistics.
bool RangesRuleOut(parquet::RowGroupMetaData& rg, const std::vector<int>& wide_leaf,
                   const arrow::Schema& wide_schema, const ScanFieldRanges& ranges) {
  for (const auto& [field, range] : ranges) {
    const int leaf = wide_leaf[static_cast<size_t>(field)];
    if (leaf < 0) continue;
    auto stats = rg.ColumnChunk(leaf)->statistics();
    if (!stats || !stats->HasMinMax()) continue;
    const bool is_unsigned = arrow::is_unsigned_integer(wide_schema.field(field)->type()->id());
    __int128 min = 0;
    __int128 max = 0;
    if (stats->physical_type() == parquet::Type::INT32) {
      auto typed = std::static_pointer_cast<parquet::Int32Statistics>(stats);
      min = is_unsigned ? __int128{static_cast<uint32_t>(typed->min())} : __int128{typed->min()};
      max = is_unsigned ? __int128{static_cast<uint32_t>(typed->max())} : __int128{typed->max()};
    } else if (stats->physical_type() == parquet::Type::INT64) {
      auto typed = std::static_pointer_cast<parquet::Int64Statistics>(stats);
      min = is_unsigned ? __int128{static_cast<uint64_t>(typed->min())} : __int128{typed->min()};
      max = is_unsigned ? __int128{static_cast<uint64_t>(typed->max())} : __int128{typed->max()};
    } else {
      continue;
    }
    if (max < range.lo || min > range.hi) return true;
  }
  return false;
}

// The rows of a raw batch (the table's types) within every range.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> KeepInRanges(
    std::shared_ptr<arrow::RecordBatch> raw, const ScanFieldRanges& ranges) {
  std::shared_ptr<arrow::Array> mask;
  cp::ExecContext context(ScanMemoryPool());
  for (const auto& [field, range] : ranges) {
    ARROW_ASSIGN_OR_RAISE(auto m, RangeMask(raw->column(field), range.lo, range.hi));
    if (mask) {
      ARROW_ASSIGN_OR_RAISE(auto both, cp::CallFunction("and", {mask, m}, &context));
      mask = both.make_array();
    } else {
      mask = std::move(m);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(raw, mask, cp::FilterOptions::Defaults(), &context));
  return kept.record_batch();
}

// The rows of a raw batch (the table's types) that pass every equality clause.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> KeepMatching(
    std::shared_ptr<arrow::RecordBatch> raw, const ScanFieldMatch& match) {
  const int64_t n = raw->num_rows();
  std::vector<uint8_t> keep(static_cast<size_t>(n), 1);
  for (const auto& clause : match) {
    std::vector<uint8_t> any(static_cast<size_t>(n), 0);
    for (const auto& [field, value] : clause) {
      const auto& col = raw->column(field);
      if (col->type_id() != arrow::Type::FIXED_SIZE_BINARY) {
        return arrow::Status::Invalid("direct scan: ", col->type()->ToString(), " compared");
      }
      const auto& fsb = static_cast<const arrow::FixedSizeBinaryArray&>(*col);
      if (fsb.byte_width() != static_cast<int>(value.size())) continue;
      const size_t width = value.size();
      for (int64_t i = 0; i < n; ++i) {
        if (!any[static_cast<size_t>(i)] && keep[static_cast<size_t>(i)] && fsb.IsValid(i) &&
            std::memcmp(fsb.GetValue(i), value.data(), width) == 0) {
          any[static_cast<size_t>(i)] = 1;
        }
      }
    }
    for (int64_t i = 0; i < n; ++i) keep[static_cast<size_t>(i)] &= any[static_cast<size_t>(i)];
  }
  arrow::UInt32Builder indices;
  for (int64_t i = 0; i < n; ++i) {
    if (keep[static_cast<size_t>(i)]) ARROW_RETURN_NOT_OK(indices.Append(static_cast<uint32_t>(i)));
  }
  if (indices.length() == n) return raw;
  if (indices.length() == 0) return raw->Slice(0, 0);
  ARROW_ASSIGN_OR_RAISE(auto taken, indices.Finish());
  ARROW_ASSIGN_OR_RAISE(auto out, cp::Take(raw, taken));
  return out.record_batch();
}

}  // namespace sluice::sql
