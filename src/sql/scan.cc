#include "sql/scan.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "arrow/array/array_base.h"
#include "arrow/array/util.h"
#include "arrow/builder.h"
#include "arrow/compute/api.h"
#include "arrow/io/file.h"
#include "arrow/util/byte_size.h"
#include "parquet/arrow/reader.h"
#include "parquet/arrow/schema.h"
#include "parquet/bloom_filter.h"
#include "parquet/bloom_filter_reader.h"
#include "parquet/exception.h"
#include "parquet/file_reader.h"
#include "parquet/metadata.h"
#include "parquet/properties.h"
#include "parquet/statistics.h"
#include "common/server_metrics.h"
#include "sql/engine.h"
#include "sql/scan_cache.h"
#include "sql/scan_memory.h"

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

// Writes a segment's scan cache entry on a thread of its own, off the answer's
// path: the scan hands each batch over and goes on. A writer that falls
// kMaxQueuedBytes behind (a slow disk, or no idle CPU while the scan runs) gives
// the entry up rather than hold the scan or more memory; so does one whose write
// fails (a cache only costs speed).
class BackgroundCacheWriter {
 public:
  static constexpr int64_t kMaxQueuedBytes = int64_t{64} << 20;

  explicit BackgroundCacheWriter(std::unique_ptr<ScanCacheWriter> writer)
      : writer_(std::move(writer)), thread_([this] { Run(); }) {}

  // Waits for the thread: an entry not committed is deleted.
  ~BackgroundCacheWriter() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!commit_) failed_ = true;  // given up: stop at once
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Write(std::shared_ptr<arrow::RecordBatch> batch) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (failed_ || stop_) return;
      // The bytes its rows use (a slice of a larger decoded buffer counts its part).
      const int64_t bytes = arrow::util::ReferencedBufferSize(*batch).ValueOr(0);
      if (queued_bytes_ + bytes > kMaxQueuedBytes) {
        failed_ = true;
        queue_.clear();
        queued_bytes_ = 0;
      } else {
        queued_bytes_ += bytes;
        queue_.emplace_back(std::move(batch), bytes);
      }
    }
    cv_.notify_all();
  }

  // Back to normal priority: whoever waits for this writer (the end of the scan)
  // waits for its few queued batches, not for the machine to be idle.
  void Hurry() {
    sched_param param{};
    (void)pthread_setschedparam(thread_.native_handle(), SCHED_OTHER, &param);
  }

  // The segment is complete: publish the entry once everything queued is written.
  void Commit() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      commit_ = true;
      stop_ = true;
    }
    cv_.notify_all();
  }

 private:
  void Run() {
    // Only CPU time nothing else wants: the answer and other queries come first.
    sched_param param{};
    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return failed_ || stop_ || !queue_.empty(); });
      if (failed_) break;
      if (queue_.empty()) break;  // stopped, all written
      auto [batch, bytes] = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= bytes;
      lock.unlock();
      const bool ok = writer_->Write(*batch).ok();
      batch.reset();
      lock.lock();
      if (!ok) failed_ = true;
    }
    const bool commit = commit_ && !failed_;
    lock.unlock();
    if (commit) (void)writer_->Commit();
    writer_.reset();  // not committed: deletes what it wrote
  }

  std::unique_ptr<ScanCacheWriter> writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<arrow::RecordBatch>, int64_t>> queue_;
  int64_t queued_bytes_ = 0;
  bool stop_ = false;
  bool commit_ = false;
  bool failed_ = false;
  std::thread thread_;  // last: starts once the rest is initialized
};

// Reads a plan's rows from the files one after another: the needed fields ("wide"
// batches: table order, the answer's types), filtered to [lo, hi], projected to
// the answer's columns and cut into batches.
// Rows a needle query (equality filters) decodes at a time.
constexpr int64_t kNeedleDecodeRows = 64 * 1024;

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
      const auto& type = schema_->field(static_cast<int>(j))->type();
      auto [it, inserted] = target.emplace(plan_.columns[j], type);
      if (!inserted && !it->second->Equals(*type)) {
        return arrow::Status::Invalid("direct scan: one column, two types");
      }
    }
    batch_bytes_ = std::min(options_.first_batch_bytes, options_.soft_batch_bytes);
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
    for (const auto& c : plan_.columns) output_fields_.push_back(wide_schema_->GetFieldIndex(c));
    if (filter_) block_num_ = wide_schema_->GetFieldIndex("block_num");
    for (const auto& clause : plan_.match) {
      std::vector<std::pair<int, std::string>> resolved;
      for (const auto& eq : clause) {
        resolved.emplace_back(wide_schema_->GetFieldIndex(eq.column), eq.value);
      }
      match_.push_back(std::move(resolved));
    }
    return arrow::Status::OK();
  }

  ~ScanReader() override {
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
      std::shared_ptr<arrow::RecordBatch> wide;
      ARROW_RETURN_NOT_OK(NextWide(&wide));
      if (!wide) {
        done_ = true;
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(wide, Filter(std::move(wide)));
      if (wide->num_rows() == 0) continue;
      std::vector<std::shared_ptr<arrow::Array>> columns;
      columns.reserve(output_fields_.size());
      for (int i : output_fields_) columns.push_back(wide->column(i));
      auto batch = arrow::RecordBatch::Make(schema_, wide->num_rows(), std::move(columns));
      const double row_bytes = static_cast<double>(arrow::util::TotalBufferSize(*batch)) /
                               static_cast<double>(batch->num_rows());
      pending_rows_ += batch->num_rows();
      pending_.push_back({std::move(batch), row_bytes});
    }
  }

 private:
  // The next wide batch of the current file, opening the next file at the end of
  // one; null at the end of the last.
  arrow::Status NextWide(std::shared_ptr<arrow::RecordBatch>* out) {
    while (true) {
      if (file_reader_) {
        std::shared_ptr<arrow::RecordBatch> raw;
        ARROW_RETURN_NOT_OK(file_reader_->ReadNext(&raw));
        if (raw && !match_.empty()) {
          ARROW_ASSIGN_OR_RAISE(raw, Match(std::move(raw)));
          if (raw->num_rows() == 0) continue;
        }
        if (raw) {
          ARROW_ASSIGN_OR_RAISE(*out, Convert(raw));
          if (cache_writer_) cache_writer_->Write(*out);
          return arrow::Status::OK();
        }
        file_reader_.reset();
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
    // A needle query reads few row groups of a segment: never from the cache.
    if (options_.cache && match_.empty()) {
      ARROW_ASSIGN_OR_RAISE(cached_, options_.cache->Find(path, *wide_schema_));
      if (cached_) {
        cached_next_ = 0;
        common::ServerMetrics::Get().scan_segments(true).Increment();
        return arrow::Status::OK();
      }
    }
    parquet::ArrowReaderProperties props;
    // The client needs the other core (bench/FIXES.md), but not for the few rows of
    // a needle query: then columns are decoded side by side (once the row groups
    // to read are known: below).
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
      if (!match_.empty()) {
        const bool skip = RuledOut(g, *rg, wide_leaf);
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
      const int64_t target = sent_any_file_ ? options_.soft_batch_bytes : batch_bytes_;
      batch_rows = std::clamp<int64_t>(
          static_cast<int64_t>(static_cast<double>(target) / row_bytes), 1,
          options_.rows_per_batch);
    }
    // A needle query keeps few of the rows it decodes: decode in large batches
    // (fewer, larger tasks for the decoding threads), whatever the answer's size.
    if (!match_.empty()) batch_rows = std::max<int64_t>(batch_rows, kNeedleDecodeRows);
    // Side by side only when there is enough to decode: for a small segment, handing
    // a task per column to the thread pool costs more than decoding it here.
    parquet_->set_use_threads(!match_.empty() && rows >= kNeedleDecodeRows);
    sent_any_file_ = true;
    parquet_->set_batch_size(batch_rows);
    ARROW_ASSIGN_OR_RAISE(file_reader_, parquet_->GetRecordBatchReader(row_groups, leaves));
    // A whole segment read in full: keep its conversion for the next scans.
    if (options_.cache && all_columns_ && match_.empty() &&
        static_cast<int>(row_groups.size()) == metadata->num_row_groups()) {
      if (auto w = options_.cache->Begin(path, wide_schema_)) {
        cache_writer_ = std::make_unique<BackgroundCacheWriter>(std::move(w));
      }
    }
    return arrow::Status::OK();
  }

  // Whether row group `g` surely holds no row of some equality clause: for each
  // of its equalities the column's statistics or bloom filter exclude the value.
  bool RuledOut(int g, parquet::RowGroupMetaData& rg, const std::vector<int>& wide_leaf) {
    auto& blooms = parquet_->parquet_reader()->GetBloomFilterReader();
    std::shared_ptr<parquet::RowGroupBloomFilterReader> group;
    for (const auto& clause : match_) {
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

  // The rows of a raw batch (the table's types) that pass every equality clause.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Match(
      std::shared_ptr<arrow::RecordBatch> raw) {
    const int64_t n = raw->num_rows();
    std::vector<uint8_t> keep(static_cast<size_t>(n), 1);
    for (const auto& clause : match_) {
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
  std::vector<std::vector<std::pair<int, std::string>>> match_;
  size_t next_file_ = 0;
  std::unique_ptr<parquet::arrow::FileReader> parquet_;
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
  bool done_ = false;
  bool sent_any_file_ = false;  // a Parquet file was opened: decode large batches now
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
