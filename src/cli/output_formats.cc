#include "cli/output_formats.h"

#include <sstream>

#include "arrow/array.h"
#include "arrow/builder.h"
#include "arrow/csv/writer.h"
#include "arrow/ipc/writer.h"
#include "cli/table_printer.h"
#include "common/hex.h"
#include "http/json_lines.h"
#include "parquet/arrow/writer.h"
#include "parquet/properties.h"

namespace sluice::cli {

namespace {

bool IsBinary(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW:
    case arrow::Type::FIXED_SIZE_BINARY:
      return true;
    default:
      return false;
  }
}

bool IsNested(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::LIST_VIEW:
    case arrow::Type::LARGE_LIST_VIEW:
    case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::STRUCT:
    case arrow::Type::MAP:
      return true;
    default:
      return false;
  }
}

// Columns CSV cannot hold as they are: binary (written as hex) and nested (JSON).
bool NeedsText(const arrow::DataType& t) { return IsBinary(t) || IsNested(t); }

std::string_view ViewAt(const arrow::Array& a, int64_t i) {
  switch (a.type_id()) {
    case arrow::Type::BINARY:
      return static_cast<const arrow::BinaryArray&>(a).GetView(i);
    case arrow::Type::LARGE_BINARY:
      return static_cast<const arrow::LargeBinaryArray&>(a).GetView(i);
    case arrow::Type::BINARY_VIEW:
      return static_cast<const arrow::BinaryViewArray&>(a).GetView(i);
    default:
      return static_cast<const arrow::FixedSizeBinaryArray&>(a).GetView(i);
  }
}

// A string column of "0x…" hex (binary) or JSON text (nested: docs/http.md's encoding).
arrow::Result<std::shared_ptr<arrow::Array>> TextColumn(const arrow::Array& a) {
  arrow::StringBuilder b;
  ARROW_RETURN_NOT_OK(b.Reserve(a.length()));
  const bool binary = IsBinary(*a.type());
  std::string json;
  for (int64_t i = 0; i < a.length(); ++i) {
    if (a.IsNull(i)) {
      ARROW_RETURN_NOT_OK(b.AppendNull());
    } else if (binary) {
      ARROW_RETURN_NOT_OK(b.Append(common::ToHex(ViewAt(a, i))));
    } else {
      json.clear();
      http::AppendJsonValue(a, i, &json);
      ARROW_RETURN_NOT_OK(b.Append(json));
    }
  }
  return b.Finish();
}

// Writes an arrow::ipc::RecordBatchWriter's batches (CSV, Arrow file and stream).
class IpcLikeWriter : public BatchWriter {
 public:
  IpcLikeWriter(std::shared_ptr<arrow::ipc::RecordBatchWriter> w,
                std::shared_ptr<arrow::io::OutputStream> sink, bool hex)
      : w_(std::move(w)), sink_(std::move(sink)), hex_(hex) {}
  arrow::Status Write(const std::shared_ptr<arrow::RecordBatch>& batch) override {
    if (hex_) {
      ARROW_ASSIGN_OR_RAISE(auto converted, TextColumns(batch));
      ARROW_RETURN_NOT_OK(w_->WriteRecordBatch(*converted));
    } else {
      ARROW_RETURN_NOT_OK(w_->WriteRecordBatch(*batch));
    }
    return sink_->Flush();
  }
  arrow::Status Finish() override {
    ARROW_RETURN_NOT_OK(w_->Close());
    return sink_->Flush();
  }

 private:
  std::shared_ptr<arrow::ipc::RecordBatchWriter> w_;
  std::shared_ptr<arrow::io::OutputStream> sink_;
  bool hex_;
};

class JsonlWriter : public BatchWriter {
 public:
  JsonlWriter(const arrow::Schema& schema, std::shared_ptr<arrow::io::OutputStream> sink)
      : enc_(schema), sink_(std::move(sink)) {}
  arrow::Status Write(const std::shared_ptr<arrow::RecordBatch>& batch) override {
    // In slices, so one batch of wide rows does not become one huge string.
    constexpr int64_t kSlice = 4096;
    for (int64_t begin = 0; begin < batch->num_rows(); begin += kSlice) {
      buf_.clear();
      enc_.Append(*batch, begin, std::min(batch->num_rows(), begin + kSlice), &buf_);
      ARROW_RETURN_NOT_OK(sink_->Write(buf_.data(), static_cast<int64_t>(buf_.size())));
    }
    return sink_->Flush();
  }
  arrow::Status Finish() override { return sink_->Flush(); }

 private:
  http::JsonLinesEncoder enc_;
  std::shared_ptr<arrow::io::OutputStream> sink_;
  std::string buf_;
};

class ParquetWriter : public BatchWriter {
 public:
  explicit ParquetWriter(std::unique_ptr<parquet::arrow::FileWriter> w) : w_(std::move(w)) {}
  arrow::Status Write(const std::shared_ptr<arrow::RecordBatch>& batch) override {
    if (batch->num_rows() == 0) return arrow::Status::OK();
    return w_->WriteRecordBatch(*batch);
  }
  arrow::Status Finish() override { return w_->Close(); }

 private:
  std::unique_ptr<parquet::arrow::FileWriter> w_;
};

class TableWriter : public BatchWriter {
 public:
  TableWriter(std::shared_ptr<arrow::Schema> schema,
              std::shared_ptr<arrow::io::OutputStream> sink, bool streaming)
      : schema_(std::move(schema)), sink_(std::move(sink)), streaming_(streaming) {}
  arrow::Status Write(const std::shared_ptr<arrow::RecordBatch>& batch) override {
    if (batch->num_rows() == 0) return arrow::Status::OK();
    if (!streaming_) {
      batches_.push_back(batch);
      return arrow::Status::OK();
    }
    return Print({batch});
  }
  arrow::Status Finish() override {
    if (streaming_) return sink_->Flush();
    return Print(batches_);
  }

 private:
  arrow::Status Print(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
    std::ostringstream out;
    PrintTable(*schema_, batches, out);
    std::string s = out.str();
    ARROW_RETURN_NOT_OK(sink_->Write(s.data(), static_cast<int64_t>(s.size())));
    return sink_->Flush();
  }

  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::io::OutputStream> sink_;
  bool streaming_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches_;
};

}  // namespace

std::optional<Format> ParseFormat(const std::string& name) {
  if (name == "table") return Format::kTable;
  if (name == "csv") return Format::kCsv;
  if (name == "jsonl" || name == "ndjson") return Format::kJsonl;
  if (name == "arrow" || name == "feather") return Format::kArrow;
  if (name == "arrows") return Format::kArrows;
  if (name == "parquet") return Format::kParquet;
  return std::nullopt;
}

std::optional<Format> FormatFromPath(const std::string& path) {
  auto dot = path.rfind('.');
  auto slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return std::nullopt;
  }
  auto ext = path.substr(dot + 1);
  if (ext == "table" || ext == "txt") return std::nullopt;
  return ParseFormat(ext);
}

bool IsBinaryFormat(Format f) {
  return f == Format::kArrow || f == Format::kArrows || f == Format::kParquet;
}

std::shared_ptr<arrow::Schema> TextColumnsSchema(const std::shared_ptr<arrow::Schema>& schema) {
  arrow::FieldVector fields = schema->fields();
  bool any = false;
  for (auto& f : fields) {
    if (NeedsText(*f->type())) {
      f = f->WithType(arrow::utf8());
      any = true;
    }
  }
  return any ? arrow::schema(fields, schema->metadata()) : schema;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> TextColumns(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  auto schema = TextColumnsSchema(batch->schema());
  if (schema == batch->schema()) return batch;
  arrow::ArrayVector columns = batch->columns();
  for (auto& c : columns) {
    if (NeedsText(*c->type())) {
      ARROW_ASSIGN_OR_RAISE(c, TextColumn(*c));
    }
  }
  return arrow::RecordBatch::Make(schema, batch->num_rows(), columns);
}

arrow::Result<std::unique_ptr<BatchWriter>> MakeBatchWriter(
    Format format, const std::shared_ptr<arrow::Schema>& schema,
    std::shared_ptr<arrow::io::OutputStream> sink, bool streaming) {
  switch (format) {
    case Format::kTable:
      return std::make_unique<TableWriter>(schema, std::move(sink), streaming);
    case Format::kCsv: {
      auto options = arrow::csv::WriteOptions::Defaults();
      ARROW_ASSIGN_OR_RAISE(auto w,
                            arrow::csv::MakeCSVWriter(sink, TextColumnsSchema(schema), options));
      return std::make_unique<IpcLikeWriter>(std::move(w), std::move(sink), true);
    }
    case Format::kJsonl:
      return std::make_unique<JsonlWriter>(*schema, std::move(sink));
    case Format::kArrow: {
      ARROW_ASSIGN_OR_RAISE(auto w, arrow::ipc::MakeFileWriter(sink, schema));
      return std::make_unique<IpcLikeWriter>(std::move(w), std::move(sink), false);
    }
    case Format::kArrows: {
      ARROW_ASSIGN_OR_RAISE(auto w, arrow::ipc::MakeStreamWriter(sink, schema));
      return std::make_unique<IpcLikeWriter>(std::move(w), std::move(sink), false);
    }
    case Format::kParquet: {
      auto props = parquet::WriterProperties::Builder()
                       .max_row_group_length(64 * 1024)
                       ->compression(parquet::Compression::SNAPPY)
                       ->build();
      auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
      ARROW_ASSIGN_OR_RAISE(auto w, parquet::arrow::FileWriter::Open(
                                        *schema, arrow::default_memory_pool(), sink, props,
                                        arrow_props));
      return std::make_unique<ParquetWriter>(std::move(w));
    }
  }
  return arrow::Status::Invalid("unknown format");
}

}  // namespace sluice::cli
