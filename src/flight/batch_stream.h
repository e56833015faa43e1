// The FlightDataStream of a batch query's DoGet (protocol.md §2, §4): one
// message per record batch with app_metadata `kind: "data"`, then a final empty
// batch with `ranges_complete: true` (`kind: "end"`).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "arrow/flight/server.h"
#include "arrow/ipc/writer.h"
#include "common/server_metrics.h"
#include "sql/engine.h"

namespace sluice::flight {

/// \brief Streams a batch query's result. Counts the query in
/// sluice_queries_total when it ends (ok, error, or cancelled when the client goes
/// away first) and the rows and bytes it sends.
///
/// A producer thread reads the engine's record batches ahead, up to kPrefetch of
/// them, while gRPC sends the previous one: gRPC's Write of a large message
/// returns only once the message is on its way, and without read-ahead the engine
/// would sit idle meanwhile (bench/FIXES.md: about 1.5x the throughput).
class BatchQueryStream : public arrow::flight::FlightDataStream {
 public:
  static constexpr size_t kPrefetch = 2;

  /// \brief Stream `reader`'s batches; `session` is the one it runs in (its
  /// snapshots give the ranges of the app_metadata).
  BatchQueryStream(std::unique_ptr<sql::Session> session,
                   std::unique_ptr<sql::ResultReader> reader);
  /// \brief Interrupts the engine when the answer was not read to its end.
  ~BatchQueryStream() override;

  std::shared_ptr<arrow::Schema> schema() override { return reader_->schema(); }
  arrow::Result<arrow::flight::FlightPayload> GetSchemaPayload() override;
  arrow::Result<arrow::flight::FlightPayload> Next() override;

 private:
  void Produce();  // the producer thread: ReadNext until the end, an error, or stopping_
  arrow::Result<arrow::flight::FlightPayload> NextPayload();
  void Count(common::QueryOutcome outcome);

  std::unique_ptr<sql::Session> session_;
  std::unique_ptr<sql::ResultReader> reader_;
  arrow::ipc::IpcWriteOptions ipc_options_ = arrow::ipc::IpcWriteOptions::Defaults();
  std::shared_ptr<arrow::Buffer> data_metadata_;
  std::shared_ptr<arrow::Buffer> end_metadata_;
  bool finished_ = false;  // touched by gRPC's thread only
  bool counted_ = false;
  // Read-ahead: the producer fills ready_ (a null batch: the end) up to kPrefetch.
  std::mutex mu_;
  std::condition_variable space_;
  std::condition_variable filled_;
  std::deque<std::pair<arrow::Status, std::shared_ptr<arrow::RecordBatch>>> ready_;
  bool stopping_ = false;
  std::thread producer_;  // last: starts after every member above exists
};

}  // namespace sluice::flight
