// Batch queries: options and the reader of an answer (docs/cpp-client.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrow/flight/client.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "arrow/scalar.h"
#include "arrow/status.h"
#include "arrow/table.h"
#include "sluice/client/block_range.h"

namespace sluice::client {

/// \brief The largest fetch size the server accepts (rows per record batch).
inline constexpr int64_t kMaxFetchSize = 1 << 20;

/// \brief Called after each page: `page_number` counts from 1, `rows_in_page`
/// is the page's row count (> 0). The calls' rows add up to the rows read.
/// Runs on the thread reading the answer, before the page is returned.
using PageCallback = std::function<void(int64_t page_number, int64_t rows_in_page)>;

/// \brief How Client::Query runs a query and pages its answer. A page is one
/// non-empty record batch as the server sent it.
struct QueryOptions {
  /// \brief Rows per record batch the server sends (header `sluice-fetch-size`),
  /// 1..kMaxFetchSize; every page but the last then has exactly this many rows.
  /// 0: the server's `rows_per_batch` setting (65,536 by default). A smaller
  /// fetch size bounds the memory of a page.
  int64_t fetch_size = 0;
  /// \brief Stop after this many pages: the reader then ends (complete() false)
  /// and the call is cancelled, so the server stops computing. nullopt: no limit.
  std::optional<int64_t> max_pages;
  /// \brief Called after each page (may be empty).
  PageCallback page_callback;
  /// \brief Deadline of the whole call (GetFlightInfo, then DoGet until the last
  /// page), counted from Query(); past it reading fails (IsTimedOut()).
  /// nullopt: ClientOptions::timeout.
  std::optional<std::chrono::milliseconds> timeout;
  /// \brief Values of the query's placeholders (`?` in order, or `$1`, `$2`, …),
  /// typed Arrow scalars, e.g. arrow::MakeScalar(int64_t{5}),
  /// arrow::MakeScalar(std::string("0x…")). The server binds them as values
  /// (Flight SQL prepared statement): text is never spliced into the SQL.
  std::vector<std::shared_ptr<arrow::Scalar>> parameters;
  /// \brief Alternatively, the parameters as a record batch of one row (column
  /// i binds placeholder i+1). Set at most one of `parameters` and this.
  std::shared_ptr<arrow::RecordBatch> parameter_batch;
  /// \brief Extra gRPC headers of this query's calls.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// \brief The answer of a batch query, read page by page (one record batch at a
/// time: memory holds the page returned and what gRPC buffers, whatever the
/// size of the answer).
///
/// An arrow::RecordBatchReader: ReadNext() / Next() give the next page (nullptr
/// at the end), ReadAll() / ToTable() the rest of the answer as a table.
/// Cancel() may be called from any thread, also while another thread waits in
/// ReadNext(); the server then stops the query.
class QueryReader : public arrow::RecordBatchReader {
 public:
  ~QueryReader() override;

  /// \brief The schema of the answer.
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  /// \brief The next page, or nullptr once the answer is complete, max_pages is
  /// reached or Close() was called. Cancelled after Cancel(); the server's error
  /// (e.g. Invalid for a query failing at run time) or a transport error
  /// otherwise.
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override;

  /// \brief ReadNext() as a Result.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Next();

  /// \brief The remaining pages as one table (in memory). Errors as ReadNext().
  arrow::Result<std::shared_ptr<arrow::Table>> ReadAll();

  /// \brief Stop: cancel the gRPC call (the server stops the query). Thread-safe,
  /// idempotent; a no-op once the answer is complete. Reading then fails with
  /// Cancelled.
  void Cancel();

  /// \brief Stop reading; cancels the call if the answer is not complete.
  arrow::Status Close() override;

  /// \brief Pages read so far (the number of the last one).
  int64_t page_number() const { return page_number_; }
  /// \brief Rows in the pages read so far.
  int64_t total_rows() const { return total_rows_; }
  /// \brief The server's end message arrived: every row was read.
  bool complete() const { return complete_.load(); }
  /// \brief No more pages (complete, max_pages reached, closed or cancelled).
  bool done() const { return done_; }
  /// \brief Cancel() was called before the answer was complete.
  bool cancelled() const { return cancelled_.load(); }
  /// \brief The blocks the answer was computed from (the server's `range`),
  /// known after the first message; nullopt for several networks or no blocks.
  const std::optional<BlockRange>& range() const { return range_; }
  /// \brief The app_metadata JSON of the last message read.
  const std::string& app_metadata() const { return app_metadata_; }

 private:
  friend class Client;
  QueryReader(std::unique_ptr<arrow::flight::FlightStreamReader> reader,
              std::shared_ptr<arrow::Schema> schema, QueryOptions options);
  void Finish(bool cancel_call);

  std::unique_ptr<arrow::flight::FlightStreamReader> reader_;
  std::shared_ptr<arrow::Schema> schema_;
  std::optional<int64_t> max_pages_;
  PageCallback page_callback_;
  int64_t page_number_ = 0;
  int64_t total_rows_ = 0;
  std::atomic<bool> complete_{false};  // read by Cancel() on any thread
  bool done_ = false;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> call_cancelled_{false};
  std::optional<BlockRange> range_;
  std::string app_metadata_;
};

}  // namespace sluice::client
