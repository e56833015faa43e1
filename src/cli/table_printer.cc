#include "cli/table_printer.h"

#include <algorithm>

#include "arrow/array.h"
#include "arrow/scalar.h"
#include "common/hex.h"
#include "http/json_lines.h"

namespace sluice::cli {

std::string CellToString(const arrow::Array& array, int64_t row) {
  if (array.IsNull(row)) return "NULL";
  switch (array.type_id()) {
    case arrow::Type::BINARY: {
      auto v = static_cast<const arrow::BinaryArray&>(array).GetView(row);
      return common::ToHex(v);
    }
    case arrow::Type::LARGE_BINARY: {
      auto v = static_cast<const arrow::LargeBinaryArray&>(array).GetView(row);
      return common::ToHex(v);
    }
    case arrow::Type::BINARY_VIEW: {
      auto v = static_cast<const arrow::BinaryViewArray&>(array).GetView(row);
      return common::ToHex(v);
    }
    case arrow::Type::FIXED_SIZE_BINARY: {
      auto v = static_cast<const arrow::FixedSizeBinaryArray&>(array).GetView(row);
      return common::ToHex(v);
    }
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::STRUCT:
    case arrow::Type::MAP: {
      std::string json;  // nested values as JSON text, binary inside as 0x hex
      http::AppendJsonValue(array, row, &json);
      return json;
    }
    default:
      break;
  }
  auto scalar = array.GetScalar(row);
  return scalar.ok() ? (*scalar)->ToString() : "?";
}

void PrintTable(const arrow::Schema& schema,
                const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                std::ostream& out) {
  const int ncols = schema.num_fields();
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> width(ncols);
  for (int c = 0; c < ncols; ++c) width[c] = schema.field(c)->name().size();
  for (const auto& batch : batches) {
    for (int64_t r = 0; r < batch->num_rows(); ++r) {
      std::vector<std::string> row(ncols);
      for (int c = 0; c < ncols; ++c) {
        row[c] = CellToString(*batch->column(c), r);
        width[c] = std::max(width[c], row[c].size());
      }
      rows.push_back(std::move(row));
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    for (int c = 0; c < ncols; ++c) {
      out << (c ? " | " : " ") << cells[c] << std::string(width[c] - cells[c].size(), ' ');
    }
    out << "\n";
  };
  std::vector<std::string> header(ncols);
  for (int c = 0; c < ncols; ++c) header[c] = schema.field(c)->name();
  line(header);
  for (int c = 0; c < ncols; ++c) out << (c ? "-+-" : "-") << std::string(width[c], '-');
  out << "-\n";
  for (const auto& row : rows) line(row);
  out << "(" << rows.size() << (rows.size() == 1 ? " row)" : " rows)") << "\n";
}

}  // namespace sluice::cli
