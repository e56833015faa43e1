#include "storage/segment_format.h"

#include <algorithm>
#include <string_view>

#include "arrow/array/array_binary.h"
#include "arrow/table.h"
#include "arrow/type.h"
#include "arrow/util/compression.h"
#include "parquet/exception.h"
#include "parquet/file_reader.h"
#include "parquet/metadata.h"
#include "parquet/statistics.h"

namespace sluice::storage {

namespace {

// Columns whose values repeat enough for a dictionary to pay, and whose
// dictionary Arrow decodes fast: fixed-width numbers, booleans, times.
bool DictionaryPays(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::FIXED_SIZE_BINARY:
      return false;
    default:
      return true;
  }
}

// The Parquet leaf column paths of a field ("a", "a.list.element.b", …) with the
// leaf's type, as Arrow's writer names them.
void Leaves(const std::string& prefix, const std::shared_ptr<arrow::Field>& field,
            std::vector<std::pair<std::string, std::shared_ptr<arrow::DataType>>>* out) {
  const std::string path = prefix.empty() ? field->name() : prefix + "." + field->name();
  const auto& type = field->type();
  switch (type->id()) {
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::FIXED_SIZE_LIST: {
      auto value = std::static_pointer_cast<arrow::BaseListType>(type)->value_field();
      Leaves(path + ".list", value->WithName("element"), out);
      return;
    }
    case arrow::Type::STRUCT:
      for (const auto& child : type->fields()) Leaves(path, child, out);
      return;
    default:
      out->emplace_back(path, type);
  }
}

// The value bytes of a column's first chunk (binary, string or fixed-size binary),
// at most `limit` of them; empty for other types.
std::string_view ValueBytes(const arrow::ChunkedArray& column, int64_t limit) {
  if (column.num_chunks() == 0) return {};
  const auto& chunk = *column.chunk(0);
  const uint8_t* data = nullptr;
  int64_t size = 0;
  switch (chunk.type_id()) {
    case arrow::Type::FIXED_SIZE_BINARY: {
      const auto& a = static_cast<const arrow::FixedSizeBinaryArray&>(chunk);
      if (a.length() == 0) return {};
      data = a.GetValue(0);
      size = a.length() * a.byte_width();
      break;
    }
    case arrow::Type::BINARY:
    case arrow::Type::STRING: {
      const auto& a = static_cast<const arrow::BinaryArray&>(chunk);
      if (a.length() == 0) return {};
      data = a.value_data()->data() + a.value_offset(0);
      size = a.value_offset(a.length()) - a.value_offset(0);
      break;
    }
    default:
      return {};
  }
  return {reinterpret_cast<const char*>(data), static_cast<size_t>(std::min(size, limit))};
}

}  // namespace

std::vector<std::string> IncompressibleColumns(const arrow::Table& table) {
  constexpr int64_t kSampleBytes = int64_t{256} << 10;
  std::vector<std::string> out;
  auto codec = arrow::util::Codec::Create(arrow::Compression::LZ4);
  if (!codec.ok()) return out;
  std::vector<uint8_t> buffer;
  for (int i = 0; i < table.num_columns(); ++i) {
    auto sample = ValueBytes(*table.column(i), kSampleBytes);
    if (sample.size() < 4096) continue;  // too little to tell, or too little to matter
    const auto* data = reinterpret_cast<const uint8_t*>(sample.data());
    const auto length = static_cast<int64_t>(sample.size());
    const int64_t bound = (*codec)->MaxCompressedLen(length, data);
    buffer.resize(static_cast<size_t>(bound));
    auto size = (*codec)->Compress(length, data, bound, buffer.data());
    if (size.ok() &&
        static_cast<double>(*size) >= kIncompressibleRatio * static_cast<double>(length)) {
      out.push_back(table.schema()->field(i)->name());
    }
  }
  return out;
}

std::shared_ptr<parquet::WriterProperties> SegmentWriterProperties(
    const arrow::Schema& schema, int64_t row_group_rows,
    const std::vector<std::string>& bloom_filter_columns,
    const std::vector<std::string>& uncompressed_columns) {
  parquet::WriterProperties::Builder builder;
  builder.compression(parquet::Compression::LZ4)  // LZ4_RAW in the file
      ->max_row_group_length(row_group_rows)
      ->enable_statistics()
      ->enable_write_page_index();
  std::vector<std::pair<std::string, std::shared_ptr<arrow::DataType>>> leaves;
  for (const auto& f : schema.fields()) Leaves("", f, &leaves);
  for (const auto& [path, type] : leaves) {
    if (!DictionaryPays(*type)) builder.disable_dictionary(path);
  }
  for (const auto& name : uncompressed_columns) {
    if (schema.GetFieldByName(name) != nullptr) {
      builder.compression(name, parquet::Compression::UNCOMPRESSED);
    }
  }
  parquet::BloomFilterOptions bloom;
  bloom.fpp = 0.01;  // ndv unset: sized for a full row group, folded to the values seen
  for (const auto& name : bloom_filter_columns) {
    auto f = schema.GetFieldByName(name);
    if (f == nullptr || f->type()->id() == arrow::Type::BOOL) continue;
    builder.enable_bloom_filter(name, bloom);
  }
  return builder.build();
}

std::shared_ptr<parquet::ArrowWriterProperties> SegmentArrowWriterProperties() {
  return parquet::ArrowWriterProperties::Builder().store_schema()->build();
}

arrow::Result<std::vector<uint64_t>> RowGroupBlockEnds(const std::filesystem::path& path) {
  std::shared_ptr<parquet::FileMetaData> metadata;
  try {
    metadata = parquet::ParquetFileReader::OpenFile(path.string(), /*memory_map=*/true)->metadata();
  } catch (const parquet::ParquetException& e) {
    return arrow::Status::IOError("cannot read ", path.string(), ": ", e.what());
  }
  const int column = metadata->schema()->ColumnIndex("block_num");
  if (column < 0) return std::vector<uint64_t>{};
  std::vector<std::pair<uint64_t, uint64_t>> groups;  // [min, max] per row group
  for (int g = 0; g < metadata->num_row_groups(); ++g) {
    auto stats = metadata->RowGroup(g)->ColumnChunk(column)->statistics();
    if (!stats || !stats->HasMinMax() || stats->physical_type() != parquet::Type::INT64) {
      return std::vector<uint64_t>{};
    }
    auto typed = std::static_pointer_cast<parquet::Int64Statistics>(stats);
    groups.emplace_back(static_cast<uint64_t>(typed->min()), static_cast<uint64_t>(typed->max()));
  }
  std::vector<uint64_t> ends;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (g + 1 == groups.size() || groups[g + 1].first > groups[g].second) {
      ends.push_back(groups[g].second);
    }
  }
  return ends;
}

}  // namespace sluice::storage
