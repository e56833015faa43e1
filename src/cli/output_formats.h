// Output formats of `sluice query`: an aligned text table, CSV, JSON Lines,
// Arrow IPC file and stream, Parquet. Every writer but the table writes batch by
// batch (bounded memory); binary columns are "0x…" hex in the text formats, and
// nested columns JSON text in CSV.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "arrow/buffer.h"
#include "arrow/io/interfaces.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "arrow/status.h"

namespace sluice::cli {

enum class Format { kTable, kCsv, kJsonl, kArrow, kArrows, kParquet };

/// \brief "table", "csv", "jsonl", "arrow", "arrows" or "parquet" (also "ndjson",
/// "feather"); nullopt otherwise.
std::optional<Format> ParseFormat(const std::string& name);

/// \brief The format a file name's extension implies (.csv, .jsonl/.ndjson, .arrow/
/// .feather, .arrows, .parquet); nullopt when none does.
std::optional<Format> FormatFromPath(const std::string& path);

/// \brief Binary formats (arrow, arrows, parquet) are not for terminals.
bool IsBinaryFormat(Format f);

/// \brief `batch` made fit for CSV: every binary column replaced by a string column
/// of "0x…" hex, every list, struct or map column by its JSON text (as JSON Lines
/// writes it, http/json_lines.h), the schema to match; `batch` itself when it has none.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> TextColumns(
    const std::shared_ptr<arrow::RecordBatch>& batch);
std::shared_ptr<arrow::Schema> TextColumnsSchema(const std::shared_ptr<arrow::Schema>& schema);

/// \brief An arrow::io::OutputStream that counts the bytes written through it.
class CountingOutputStream : public arrow::io::OutputStream {
 public:
  explicit CountingOutputStream(std::shared_ptr<arrow::io::OutputStream> inner)
      : inner_(std::move(inner)) {}
  arrow::Status Close() override { return inner_->Close(); }
  bool closed() const override { return inner_->closed(); }
  arrow::Result<int64_t> Tell() const override { return bytes_; }
  arrow::Status Write(const void* data, int64_t nbytes) override {
    bytes_ += nbytes;
    return inner_->Write(data, nbytes);
  }
  arrow::Status Write(const std::shared_ptr<arrow::Buffer>& data) override {
    bytes_ += data->size();
    return inner_->Write(data);
  }
  arrow::Status Flush() override { return inner_->Flush(); }
  int64_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<arrow::io::OutputStream> inner_;
  int64_t bytes_ = 0;
};

/// \brief Writes the batches of one result, one schema, in one format.
class BatchWriter {
 public:
  virtual ~BatchWriter() = default;
  virtual arrow::Status Write(const std::shared_ptr<arrow::RecordBatch>& batch) = 0;
  /// \brief Write what is buffered (table) or the trailer (arrow file, parquet),
  /// then flush. Call once, last.
  virtual arrow::Status Finish() = 0;
};

/// \brief A writer of `format` to `sink` for batches of `schema`. `streaming`: the
/// table format prints each batch as its own table (rows as they come) instead of
/// buffering the whole result to align its columns.
arrow::Result<std::unique_ptr<BatchWriter>> MakeBatchWriter(
    Format format, const std::shared_ptr<arrow::Schema>& schema,
    std::shared_ptr<arrow::io::OutputStream> sink, bool streaming);

}  // namespace sluice::cli
