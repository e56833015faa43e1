#include "sql/scan.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>

#include "arrow/array/array_base.h"
#include "arrow/array/util.h"
#include "arrow/compute/api.h"
#include "arrow/io/file.h"
#include "arrow/util/byte_size.h"
#include "arrow/util/future.h"
#include "arrow/util/thread_pool.h"
#include "common/server_metrics.h"
#include "parquet/arrow/reader.h"
#include "parquet/arrow/schema.h"
#include "parquet/file_reader.h"
#include "parquet/metadata.h"
#include "parquet/properties.h"
#include "parquet/statistics.h"
#include "sql/engine.h"
#include "sql/scan_cache.h"
#include "sql/scan_expression.h"
#include "sql/scan_filter.h"
#include "sql/scan_memory.h"
#include "sql/scan_pipeline.h"

namespace sluice::sql {

namespace {

namespace cp = arrow::compute;

// Leaf column indices of a Parquet schema field.
void LeafColumns(const parquet::arrow::SchemaField& f, std::vector<int>* out) {
  if (f.is_leaf()) {
    out->push_back(f.column_index);
    return;
  }
  for (const auto& c : f.children) LeafColumns(c, out);
}

// Cast options that keep DuckDB's conversions: nanosecond timestamps become
// microseconds by truncation, as DuckDB reads them.
cp::CastOptions ConversionOptions(const std::shared_ptr<arrow::DataType>& to) {
  auto options = cp::CastOptions::Safe(to);
  options.allow_time_truncate = true;
  return options;
}

// Rows a selective query (equality or range filters, computed columns) decodes
// at a time, at least; it decodes row groups side by side once a segment has this
// many rows to read.
constexpr int64_t kNeedleDecodeRows = 64 * 1024;
// Rows a selective query decodes ahead of the one it filters, on the thread pool:
// about four row groups (bench/FIXES.md).
constexpr int64_t kDecodeAheadRows = 128 * 1024;

// Reads a plan's rows from the files one after another: the needed fields ("wide"
// batches: table order, the answer's types), filtered to [lo, hi], projected to
// the answer's columns and cut into batches.
class ScanReader : public ResultReader {
 public:
  ScanReader(ScanPlan plan, std::vector<std::filesystem::path> files,
             std::shared_ptr<arrow::Schema> schema, ScanOptions options)
      : plan_(std::move(plan)),
        files_(std::move(files)),
        schema_(std::move(schema)),
        options_(std::move(options)) {}

  // Resolve columns against the table's schema (every file of the table has it:
  // the store checks schemas on open; OpenFile checks the names again).
  arrow::Status Init(const std::shared_ptr<arrow::Schema>& table_schema) {
    if (schema_->num_fields() != static_cast<int>(plan_.columns.size())) {
      return arrow::Status::Invalid("direct scan: planned ", schema_->num_fields(),
                                    " columns for ", plan_.columns.size());
    }
    std::map<std::string, std::shared_ptr<arrow::DataType>> target;
    for (size_t j = 0; j < plan_.columns.size(); ++j) {
      if (plan_.columns[j].empty()) continue;  // computed
      const auto& type = schema_->field(static_cast<int>(j))->type();
      auto [it, inserted] = target.emplace(plan_.columns[j], type);
      if (!inserted && !it->second->Equals(*type)) {
        return arrow::Status::Invalid("direct scan: one column, two types");
      }
    }
    batch_bytes_ = std::min(options_.first_batch_bytes, options_.soft_batch_bytes);
    first_batch_bytes_ = batch_bytes_;
    filter_ = plan_.lo > 0 || plan_.hi < UINT64_MAX;
    if (filter_) target.emplace("block_num", arrow::uint64());
    // Columns compared by equality filters: read as stored when not answered.
    for (const auto& clause : plan_.match) {
      for (const auto& eq : clause) {
        auto f = table_schema->GetFieldByName(eq.column);
        if (f == nullptr) return arrow::Status::Invalid("direct scan: no column ", eq.column);
        target.emplace(eq.column, f->type());
      }
    }
    // Columns computed with or compared with ranges: read as stored, which must
    // also be their answer type when answered (integers and strings are).
    std::vector<std::string> stored;
    for (const auto& range : plan_.ranges) stored.push_back(range.column);
    for (const auto& c : plan_.computed) {
      if (!c) continue;
      for (const auto& ref : cp::FieldsInExpression(*c)) {
        if (ref.name() == nullptr) return arrow::Status::Invalid("direct scan: a nested field");
        stored.push_back(*ref.name());
      }
    }
    for (const auto& name : stored) {
      auto f = table_schema->GetFieldByName(name);
      if (f == nullptr) return arrow::Status::Invalid("direct scan: no column ", name);
      auto [it, inserted] = target.emplace(name, f->type());
      if (!it->second->Equals(*f->type())) {
        return arrow::Status::Invalid("direct scan: ", name, " is answered as ",
                                      it->second->ToString());
      }
    }
    // The wide fields: the table's columns the plan needs, in table order.
    std::vector<std::shared_ptr<arrow::Field>> wide;
    for (int i = 0; i < table_schema->num_fields(); ++i) {
      const auto& f = table_schema->field(i);
      auto it = target.find(f->name());
      if (it == target.end()) continue;
      // A conversion Arrow cannot make: let DuckDB answer.
      if (!f->type()->Equals(*it->second)) {
        ARROW_ASSIGN_OR_RAISE(auto empty, arrow::MakeEmptyArray(f->type()));
        ARROW_RETURN_NOT_OK(cp::Cast(*empty, it->second, ConversionOptions(it->second)).status());
      }
      table_fields_.push_back(i);
      wide.push_back(arrow::field(f->name(), it->second));
    }
    if (table_fields_.size() != target.size()) {
      return arrow::Status::Invalid("direct scan: a column is missing from the table's files");
    }
    wide_schema_ = arrow::schema(std::move(wide));
    all_columns_ = static_cast<int>(table_fields_.size()) == table_schema->num_fields();
    for (size_t j = 0; j < plan_.columns.size(); ++j) {
      const auto& c = plan_.columns[j];
      if (!c.empty()) {
        output_fields_.push_back(wide_schema_->GetFieldIndex(c));
        continue;
      }
      // Computed: bound to the wide fields, of the type DuckDB planned.
      output_fields_.push_back(-1);
      if (j >= plan_.computed.size() || !plan_.computed[j]) {
        return arrow::Status::Invalid("direct scan: column ", j, " has no expression");
      }
      ARROW_ASSIGN_OR_RAISE(auto bound, plan_.computed[j]->Bind(*wide_schema_));
      const auto& want = schema_->field(static_cast<int>(j))->type();
      if (bound.type() == nullptr || !bound.type()->Equals(*want)) {
        return arrow::Status::Invalid("direct scan: computes ", bound.ToString(), " where ",
                                      want->ToString(), " is planned");
      }
      computed_.emplace(static_cast<int>(j), std::move(bound));
    }
    for (const auto& range : plan_.ranges) {
      ranges_.push_back({wide_schema_->GetFieldIndex(range.column), range});
    }
    if (filter_) block_num_ = wide_schema_->GetFieldIndex("block_num");
    for (const auto& clause : plan_.match) {
      std::vector<std::pair<int, std::string>> resolved;
      for (const auto& eq : clause) {
        resolved.emplace_back(wide_schema_->GetFieldIndex(eq.column), eq.value);
      }
      match_.push_back(std::move(resolved));
    }
    selective_ = !match_.empty() || !ranges_.empty() || !computed_.empty();
    return arrow::Status::OK();
  }

  ~ScanReader() override {
    read_ahead_.reset();  // its thread uses the members below
    if (cache_committing_) cache_committing_->Hurry();  // then joined as a member
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    out->reset();
    const bool exact = options_.soft_batch_bytes <= 0;
    while (true) {
      if (options_.interrupted && options_.interrupted->load()) {
        return arrow::Status::Cancelled("query cancelled");
      }
      if (!exact && !pending_.empty()) return TakeSized(out);
      if (exact && (pending_rows_ >= options_.rows_per_batch || (done_ && pending_rows_ > 0))) {
        return TakeExact(out);
      }
      if (done_) return arrow::Status::OK();
      std::shared_ptr<arrow::RecordBatch> batch;
      if (read_ahead_) {
        ARROW_RETURN_NOT_OK(read_ahead_->Pop(&batch));
      } else {
        // The first batch here; a selective scan that decodes row groups side by
        // side makes its next ones ahead on a thread of its own while this one is
        // sent. Any other scan makes them here: a plain scan leaves the other core
        // to the client, and for a small one a thread costs more than it saves.
        ARROW_RETURN_NOT_OK(Produce(&batch));
        if (batch && decode_ahead_) {
          read_ahead_ = std::make_unique<ReadAhead>([this](auto* b) { return Produce(b); });
        }
      }
      if (!batch) {
        done_ = true;
        continue;
      }
      const double row_bytes = static_cast<double>(arrow::util::TotalBufferSize(*batch)) /
                               static_cast<double>(batch->num_rows());
      pending_rows_ += batch->num_rows();
      pending_.push_back({std::move(batch), row_bytes});
    }
  }

 private:
  // The next answer batch (before cutting to size): read, filtered, projected and
  // computed; null at the end.
  arrow::Status Produce(std::shared_ptr<arrow::RecordBatch>* out) {
    out->reset();
    while (true) {
      if (options_.interrupted && options_.interrupted->load()) {
        return arrow::Status::Cancelled("query cancelled");
      }
      std::shared_ptr<arrow::RecordBatch> wide;
      ARROW_RETURN_NOT_OK(NextWide(&wide));
      if (!wide) return arrow::Status::OK();
      ARROW_ASSIGN_OR_RAISE(wide, Filter(std::move(wide)));
      if (wide->num_rows() == 0) continue;
      std::vector<std::shared_ptr<arrow::Array>> columns;
      columns.reserve(output_fields_.size());
      for (size_t j = 0; j < output_fields_.size(); ++j) {
        if (output_fields_[j] >= 0) {
          columns.push_back(wide->column(output_fields_[j]));
        } else {
          ARROW_ASSIGN_OR_RAISE(
              auto values, EvaluateComputed(computed_.at(static_cast<int>(j)), *wide));
          columns.push_back(std::move(values));
        }
      }
      *out = arrow::RecordBatch::Make(schema_, wide->num_rows(), std::move(columns));
      return arrow::Status::OK();
    }
  }

  // The next wide batch of the current file, opening the next file at the end of
  // one; null at the end of the last.
  arrow::Status NextWide(std::shared_ptr<arrow::RecordBatch>* out) {
    while (true) {
      if (file_reader_ || generator_) {
        std::shared_ptr<arrow::RecordBatch> raw;
        if (generator_) {
          auto next = generator_();
          ARROW_ASSIGN_OR_RAISE(raw, next.result());  // null at the end
        } else {
          ARROW_RETURN_NOT_OK(file_reader_->ReadNext(&raw));
        }
        if (raw && !match_.empty()) {
          ARROW_ASSIGN_OR_RAISE(raw, KeepMatching(std::move(raw), match_));
          if (raw->num_rows() == 0) continue;
        }
        if (raw && !ranges_.empty()) {
          ARROW_ASSIGN_OR_RAISE(raw, KeepInRanges(std::move(raw), ranges_));
          if (raw->num_rows() == 0) continue;
        }
        if (raw) {
          ARROW_ASSIGN_OR_RAISE(*out, Convert(raw));
          if (cache_writer_) cache_writer_->Write(*out);
          return arrow::Status::OK();
        }
        file_reader_.reset();
        generator_ = nullptr;
        parquet_.reset();
        if (cache_writer_) {
          cache_writer_->Commit();  // finishes on its thread; the scan goes on
          // ...until the one before it must be finished: at normal priority, so an
          // idle-priority writer never holds the scan while other work runs.
          if (cache_committing_) cache_committing_->Hurry();
          cache_committing_ = std::move(cache_writer_);
        }
      }
      if (cached_) {
        if (cached_next_ < cached_->num_record_batches()) {
          ARROW_ASSIGN_OR_RAISE(*out, cached_->ReadRecordBatch(cached_next_++));
          return arrow::Status::OK();
        }
        cached_.reset();
      }
      if (next_file_ >= files_.size()) {
        // The scan is done: the last entry is published before the answer ends,
        // so the next scan finds it.
        if (cache_committing_) {
          cache_committing_->Hurry();
          cache_committing_.reset();
        }
        return arrow::Status::OK();
      }
      ARROW_RETURN_NOT_OK(OpenFile(files_[next_file_++]));
    }
  }

  arrow::Status OpenFile(const std::filesystem::path& path) {
    // A needle or range query reads few row groups of a segment, or few of its
    // rows: never from the cache.
    if (options_.cache && match_.empty() && ranges_.empty()) {
      ARROW_ASSIGN_OR_RAISE(cached_, options_.cache->Find(path, *wide_schema_));
      if (cached_) {
        cached_next_ = 0;
        common::ServerMetrics::Get().scan_segments(true).Increment();
        return arrow::Status::OK();
      }
    }
    parquet::ArrowReaderProperties props;
    // Decoded here, one column after the other; a selective query decodes row
    // groups side by side (once the row groups to read are known: below).
    props.set_use_threads(false);
    // Column chunks are read as they are decoded: pre-buffering would read (and
    // hold) every row group of the file before the first batch.
    props.set_pre_buffer(false);
    // Mapped, not read: a column chunk is decompressed straight from the page
    // cache, with no copy into a read buffer (bench/FIXES.md); pages are touched
    // only as they are decoded, and unmapped with the file.
    ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::MemoryMappedFile::Open(path.string(),
                                                                   arrow::io::FileMode::READ));
    parquet::ReaderProperties reader_props(ScanMemoryPool());
    parquet::arrow::FileReaderBuilder builder;
    ARROW_RETURN_NOT_OK(builder.Open(in, reader_props));
    ARROW_ASSIGN_OR_RAISE(parquet_,
                          builder.memory_pool(ScanMemoryPool())->properties(props)->Build());
    const auto& manifest = parquet_->manifest();
    std::vector<int> leaves;
    int block_num_leaf = -1;
    std::vector<int> wide_leaf(table_fields_.size(), -1);  // per wide field, if a leaf
    for (size_t k = 0; k < table_fields_.size(); ++k) {
      const auto& f = manifest.schema_fields.at(static_cast<size_t>(table_fields_[k]));
      if (f.field->name() != wide_schema_->field(static_cast<int>(k))->name()) {
        return arrow::Status::Invalid("direct scan: ", path.string(), " has other columns");
      }
      if (f.is_leaf()) wide_leaf[k] = f.column_index;
      if (f.field->name() == "block_num" && f.is_leaf()) block_num_leaf = f.column_index;
      LeafColumns(f, &leaves);
    }
    // Row groups that may hold blocks of [lo, hi] (by block_num statistics), and
    // the bytes per row of the columns read, to size batches.
    auto metadata = parquet_->parquet_reader()->metadata();
    std::vector<int> row_groups;
    int64_t rows = 0;
    int64_t bytes = 0;
    for (int g = 0; g < metadata->num_row_groups(); ++g) {
      auto rg = metadata->RowGroup(g);
      if (filter_ && block_num_leaf >= 0) {
        auto stats = rg->ColumnChunk(block_num_leaf)->statistics();
        if (stats && stats->HasMinMax()) {
          auto typed = std::static_pointer_cast<parquet::Int64Statistics>(stats);
          auto min = static_cast<uint64_t>(typed->min());
          auto max = static_cast<uint64_t>(typed->max());
          if (max < plan_.lo || min > plan_.hi) continue;
        }
      }
      if (RangesRuleOut(*rg, wide_leaf, *wide_schema_, ranges_)) continue;
      if (!match_.empty()) {
        const bool skip =
            EqualitiesRuleOut(*parquet_->parquet_reader(), g, *rg, wide_leaf, match_);
        common::ServerMetrics::Get().scan_row_groups(skip).Increment();
        if (skip) continue;
      }
      row_groups.push_back(g);
      rows += rg->num_rows();
      for (int leaf : leaves) bytes += rg->ColumnChunk(leaf)->total_uncompressed_size();
    }
    if (rows == 0) return arrow::Status::OK();
    common::ServerMetrics::Get().scan_segments(false).Increment();
    // Decoded batches of about the current batch size (the first rows come soon).
    int64_t batch_rows = options_.rows_per_batch;
    if (options_.soft_batch_bytes > 0 && rows > 0 && bytes > 0) {
      const double row_bytes = static_cast<double>(bytes) / static_cast<double>(rows);
      const int64_t target = sent_any_file_ ? options_.soft_batch_bytes : first_batch_bytes_;
      batch_rows = std::clamp<int64_t>(
          static_cast<int64_t>(static_cast<double>(target) / row_bytes), 1,
          options_.rows_per_batch);
    }
    // A query that keeps few of the rows it decodes (equality or range filters) or
    // computes columns spends its time decoding: decode in large batches, whatever
    // the answer's size, and, when there is enough to decode, several row groups at
    // once on the CPU thread pool (a column per task would leave the threads
    // waiting for the widest column). A plain scan decodes here: the client needs
    // the other core (bench/FIXES.md).
    if (selective_) batch_rows = std::max<int64_t>(batch_rows, kNeedleDecodeRows);
    sent_any_file_ = true;
    parquet_->set_batch_size(batch_rows);
    if (selective_ && rows >= kNeedleDecodeRows) {
      decode_ahead_ = true;
      ARROW_ASSIGN_OR_RAISE(generator_, parquet_->GetRecordBatchGenerator(
                                            parquet_, row_groups, leaves,
                                            arrow::internal::GetCpuThreadPool(),
                                            kDecodeAheadRows));
    } else {
      ARROW_ASSIGN_OR_RAISE(file_reader_, parquet_->GetRecordBatchReader(row_groups, leaves));
    }
    // A whole segment read in full: keep its conversion for the next scans.
    if (options_.cache && all_columns_ && match_.empty() && ranges_.empty() &&
        static_cast<int>(row_groups.size()) == metadata->num_row_groups()) {
      if (auto w = options_.cache->Begin(path, wide_schema_)) {
        cache_writer_ = std::make_unique<BackgroundCacheWriter>(std::move(w));
      }
    }
    return arrow::Status::OK();
  }

  // A batch as the Parquet reader returns it -> the answer's types.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Convert(
      const std::shared_ptr<arrow::RecordBatch>& raw) {
    if (raw->num_columns() != wide_schema_->num_fields()) {
      return arrow::Status::Invalid("direct scan: read ", raw->num_columns(), " columns, expected ",
                                    wide_schema_->num_fields());
    }
    std::vector<std::shared_ptr<arrow::Array>> columns;
    columns.reserve(static_cast<size_t>(raw->num_columns()));
    for (int i = 0; i < raw->num_columns(); ++i) {
      const auto& to = wide_schema_->field(i)->type();
      const auto& col = raw->column(i);
      ARROW_ASSIGN_OR_RAISE(auto data, ConvertData(col->data(), to));
      columns.push_back(arrow::MakeArray(std::move(data)));
    }
    return arrow::RecordBatch::Make(wide_schema_, raw->num_rows(), std::move(columns));
  }

  // One column (or a list's or struct's child) to type `to`. Fixed-size binary
  // becomes binary without copying its values: the binary array shares the value
  // buffer and gets offsets i × width (a null slot spans its unused bytes, which
  // Arrow allows); lists and structs keep their buffers and convert their
  // children; anything else is cast.
  arrow::Result<std::shared_ptr<arrow::ArrayData>> ConvertData(
      const std::shared_ptr<arrow::ArrayData>& data, const std::shared_ptr<arrow::DataType>& to) {
    const auto& from = data->type;
    if (from->Equals(*to)) return data;
    if (from->id() == arrow::Type::FIXED_SIZE_BINARY && to->id() == arrow::Type::BINARY) {
      const int64_t width = static_cast<const arrow::FixedSizeBinaryType&>(*from).byte_width();
      const int64_t slots = data->offset + data->length;
      if (slots * width < std::numeric_limits<int32_t>::max() && data->buffers.size() == 2 &&
          data->buffers[1] != nullptr) {
        ARROW_ASSIGN_OR_RAISE(auto offsets, arrow::AllocateBuffer((slots + 1) * sizeof(int32_t),
                                                                   ScanMemoryPool()));
        auto* o = reinterpret_cast<int32_t*>(offsets->mutable_data());
        for (int64_t i = 0; i <= slots; ++i) o[i] = static_cast<int32_t>(i * width);
        return arrow::ArrayData::Make(to, data->length,
                                      {data->buffers[0], std::move(offsets), data->buffers[1]},
                                      data->null_count, data->offset);
      }
    }
    if (from->id() == arrow::Type::LIST && to->id() == arrow::Type::LIST &&
        data->child_data.size() == 1) {
      const auto& value_type = static_cast<const arrow::ListType&>(*to).value_type();
      ARROW_ASSIGN_OR_RAISE(auto child, ConvertData(data->child_data[0], value_type));
      auto out = data->Copy();
      out->type = to;
      out->child_data = {std::move(child)};
      return out;
    }
    if (from->id() == arrow::Type::STRUCT && to->id() == arrow::Type::STRUCT &&
        from->num_fields() == to->num_fields() &&
        static_cast<int>(data->child_data.size()) == to->num_fields()) {
      auto out = data->Copy();
      out->type = to;
      for (int k = 0; k < to->num_fields(); ++k) {
        ARROW_ASSIGN_OR_RAISE(out->child_data[static_cast<size_t>(k)],
                              ConvertData(data->child_data[static_cast<size_t>(k)],
                                          to->field(k)->type()));
      }
      return out;
    }
    cp::ExecContext context(ScanMemoryPool());
    ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(arrow::MakeArray(data), to, ConversionOptions(to),
                                              &context));
    return cast.make_array()->data();
  }

  // Keep the rows of [lo, hi] (rows of a segment are in block order, but do not
  // rely on it: a mask when the batch straddles a bound).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Filter(
      std::shared_ptr<arrow::RecordBatch> wide) {
    if (!filter_ || wide->num_rows() == 0) return wide;
    const auto& block_num = wide->column(block_num_);
    ARROW_ASSIGN_OR_RAISE(auto minmax, cp::MinMax(block_num));
    const auto& pair = minmax.scalar_as<arrow::StructScalar>().value;
    const auto min = std::static_pointer_cast<arrow::UInt64Scalar>(pair[0])->value;
    const auto max = std::static_pointer_cast<arrow::UInt64Scalar>(pair[1])->value;
    if (min >= plan_.lo && max <= plan_.hi) return wide;
    if (max < plan_.lo || min > plan_.hi) return wide->Slice(0, 0);
    ARROW_ASSIGN_OR_RAISE(
        auto ge, cp::CallFunction("greater_equal",
                                  {block_num, std::make_shared<arrow::UInt64Scalar>(plan_.lo)}));
    ARROW_ASSIGN_OR_RAISE(
        auto le, cp::CallFunction("less_equal",
                                  {block_num, std::make_shared<arrow::UInt64Scalar>(plan_.hi)}));
    ARROW_ASSIGN_OR_RAISE(auto mask, cp::CallFunction("and", {ge, le}));
    ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(wide, mask));
    return kept.record_batch();
  }

  // The next batch from the front pending one: a slice of about the current batch
  // size in bytes (growing from first_batch_bytes to soft_batch_bytes).
  arrow::Status TakeSized(std::shared_ptr<arrow::RecordBatch>* out) {
    auto& front = pending_.front();
    const double limit = static_cast<double>(batch_bytes_);
    batch_bytes_ = std::min(batch_bytes_ * 2, options_.soft_batch_bytes);
    int64_t take = std::clamp<int64_t>(static_cast<int64_t>(limit / std::max(front.row_bytes, 1.0)),
                                       1, options_.rows_per_batch);
    if (take >= front.batch->num_rows()) {
      *out = std::move(front.batch);
      pending_.erase(pending_.begin());
    } else {
      *out = front.batch->Slice(0, take);
      front.batch = front.batch->Slice(take);
    }
    pending_rows_ -= (*out)->num_rows();
    return arrow::Status::OK();
  }

  // Exactly rows_per_batch rows (fewer only at the end) from the pending batches,
  // or fewer when that many would pass kMaxBatchBytes (at least one row), as the
  // engine's batches do.
  arrow::Status TakeExact(std::shared_ptr<arrow::RecordBatch>* out) {
    const auto max_rows = std::max<int64_t>(
        1, static_cast<int64_t>(static_cast<double>(kMaxBatchBytes) /
                                std::max(pending_.front().row_bytes, 1.0)));
    const int64_t want = std::min({pending_rows_, options_.rows_per_batch, max_rows});
    arrow::RecordBatchVector parts;
    int64_t have = 0;
    while (have < want) {
      auto& front = pending_.front();
      const int64_t take = std::min(front.batch->num_rows(), want - have);
      parts.push_back(front.batch->Slice(0, take));
      have += take;
      if (take == front.batch->num_rows()) {
        pending_.erase(pending_.begin());
      } else {
        front.batch = front.batch->Slice(take);
      }
    }
    pending_rows_ -= want;
    if (parts.size() == 1) {
      *out = std::move(parts[0]);
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(*out, arrow::ConcatenateRecordBatches(parts));
    return arrow::Status::OK();
  }

  ScanPlan plan_;
  std::vector<std::filesystem::path> files_;
  std::shared_ptr<arrow::Schema> schema_;
  ScanOptions options_;
  std::vector<int> table_fields_;  // the table's field indices read, ascending
  std::shared_ptr<arrow::Schema> wide_schema_;
  std::vector<int> output_fields_;  // per answer column: its wide field
  bool all_columns_ = false;
  bool filter_ = false;
  int block_num_ = -1;
  // plan_.match with each column as its wide (and raw) field index.
  ScanFieldMatch match_;
  ScanFieldRanges ranges_;  // plan_.ranges, per wide field
  // Filters rows by more than block_num, or computes: decoding is most of its work.
  bool selective_ = false;
  // A segment was decoded row groups side by side (set before any thread reads it).
  bool decode_ahead_ = false;
  std::map<int, cp::Expression> computed_;         // per computed answer column, bound

  size_t next_file_ = 0;
  std::shared_ptr<parquet::arrow::FileReader> parquet_;
  std::function<arrow::Future<std::shared_ptr<arrow::RecordBatch>>()> generator_;
  std::unique_ptr<arrow::RecordBatchReader> file_reader_;
  std::unique_ptr<BackgroundCacheWriter> cache_writer_;      // of the segment being read
  std::unique_ptr<BackgroundCacheWriter> cache_committing_;  // of the segment before
  std::shared_ptr<arrow::ipc::RecordBatchFileReader> cached_;
  int cached_next_ = 0;
  struct Pending {
    std::shared_ptr<arrow::RecordBatch> batch;
    double row_bytes;  // Arrow buffer bytes per row
  };
  std::vector<Pending> pending_;  // answer batches not sent yet
  int64_t pending_rows_ = 0;
  int64_t batch_bytes_ = 0;  // the size the next batch may have
  int64_t first_batch_bytes_ = 0;  // the first file's batches decode about this much
  bool done_ = false;
  bool sent_any_file_ = false;  // a Parquet file was opened: decode large batches now
  // Last: stopped and joined first, before the members its thread uses.
  std::unique_ptr<ReadAhead> read_ahead_;
};

}  // namespace

arrow::Result<std::unique_ptr<ResultReader>> MakeScanReader(
    const ScanPlan& plan, const std::shared_ptr<arrow::Schema>& table_schema,
    std::vector<std::filesystem::path> files, std::shared_ptr<arrow::Schema> schema,
    ScanOptions options) {
  auto reader = std::make_unique<ScanReader>(plan, std::move(files), std::move(schema),
                                             std::move(options));
  ARROW_RETURN_NOT_OK(reader->Init(table_schema));
  common::ServerMetrics::Get().direct_scans().Increment();
  return std::unique_ptr<ResultReader>(std::move(reader));
}

}  // namespace sluice::sql
