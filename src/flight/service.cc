#include "flight/service.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "arrow/flight/api.h"
#include "arrow/ipc/writer.h"
#include "common/log.h"
#include "common/server_metrics.h"
#include "flight/app_metadata.h"
#include "flight/command.h"
#include "flight/cursor.h"
#include "sql/settings_clause.h"

namespace fl = arrow::flight;

namespace sluice::flight {

namespace {

using common::QueryKind;
using common::QueryOutcome;
using common::ServerMetrics;

// Streams a batch query's result: one message per record batch, then a final
// empty batch whose metadata says ranges_complete. Counts the query in
// sluice_queries_total when it ends (ok, error, or cancelled when the client goes
// away first) and the rows and bytes it sends.
//
// A producer thread reads the engine's record batches ahead, up to kPrefetch of
// them, while gRPC sends the previous one: gRPC's Write of a large message
// returns only once the message is on its way, and without read-ahead the engine
// would sit idle meanwhile (bench/FIXES.md: about 1.5x the throughput).
class BatchQueryStream : public fl::FlightDataStream {
 public:
  static constexpr size_t kPrefetch = 2;

  BatchQueryStream(std::unique_ptr<sql::Session> session,
                   std::unique_ptr<sql::ResultReader> reader)
      : session_(std::move(session)), reader_(std::move(reader)) {
    auto ranges = SessionRanges(session_->snapshots());
    data_metadata_ = arrow::Buffer::FromString(MakeAppMetadata(ranges, false, false, "data").dump());
    end_metadata_ = arrow::Buffer::FromString(MakeAppMetadata(ranges, true, false, "end").dump());
    producer_ = std::thread([this] { Produce(); });
  }

  ~BatchQueryStream() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    space_.notify_all();
    // A client that went away mid-answer: stop the engine's work.
    if (!finished_) session_->Interrupt();
    producer_.join();
    if (!counted_) ServerMetrics::Get().CountQuery(QueryKind::kBatch, QueryOutcome::kCancelled);
  }

  std::shared_ptr<arrow::Schema> schema() override { return reader_->schema(); }

  arrow::Result<fl::FlightPayload> GetSchemaPayload() override {
    fl::FlightPayload payload;
    arrow::ipc::DictionaryFieldMapper mapper(*reader_->schema());
    ARROW_RETURN_NOT_OK(arrow::ipc::GetSchemaPayload(*reader_->schema(), ipc_options_, mapper,
                                                     &payload.ipc_message));
    return payload;
  }

  arrow::Result<fl::FlightPayload> Next() override {
    if (finished_) return fl::FlightPayload();  // null metadata: end of stream
    auto payload = NextPayload();
    if (!payload.ok()) {
      finished_ = true;  // the error ends the call
      Count(common::OutcomeOf(payload.status()));
    } else if (finished_) {
      Count(QueryOutcome::kOk);
    }
    return payload;
  }

 private:
  // The producer thread: ReadNext until the end, an error, or stopping_.
  void Produce() {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        space_.wait(lock, [this] { return stopping_ || ready_.size() < kPrefetch; });
        if (stopping_) return;
      }
      std::shared_ptr<arrow::RecordBatch> batch;
      arrow::Status st = reader_->ReadNext(&batch);
      bool last = !st.ok() || batch == nullptr;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_.push_back({std::move(st), std::move(batch)});
      }
      filled_.notify_one();
      if (last) return;
    }
  }

  arrow::Result<fl::FlightPayload> NextPayload() {
    fl::FlightPayload payload;
    std::shared_ptr<arrow::RecordBatch> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      filled_.wait(lock, [this] { return !ready_.empty(); });
      auto [st, b] = std::move(ready_.front());
      ready_.pop_front();
      ARROW_RETURN_NOT_OK(st);
      batch = std::move(b);
    }
    space_.notify_one();
    if (batch) {
      payload.app_metadata = data_metadata_;
    } else {
      ARROW_ASSIGN_OR_RAISE(batch, arrow::RecordBatch::MakeEmpty(reader_->schema()));
      payload.app_metadata = end_metadata_;
      finished_ = true;
    }
    ARROW_RETURN_NOT_OK(arrow::ipc::GetRecordBatchPayload(*batch, ipc_options_,
                                                          &payload.ipc_message));
    ServerMetrics::Get().CountSent(QueryKind::kBatch, batch->num_rows(), PayloadBytes(payload));
    return payload;
  }

  void Count(QueryOutcome outcome) {
    if (counted_) return;
    counted_ = true;
    ServerMetrics::Get().CountQuery(QueryKind::kBatch, outcome);
  }

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

bool HasDictionary(const arrow::Schema& schema) {
  for (const auto& f : schema.fields()) {
    if (f->type()->id() == arrow::Type::DICTIONARY) return true;
  }
  return false;
}

std::optional<std::string> Header(const fl::ServerCallContext& context, std::string_view name) {
  const auto& headers = context.incoming_headers();
  auto it = headers.find(name);
  if (it == headers.end()) return std::nullopt;
  return std::string(it->second);
}

}  // namespace

FlightService::FlightService(sql::Engine* engine, TicketSigner signer, ServiceOptions options)
    : engine_(engine), signer_(std::move(signer)), options_(std::move(options)) {
  if (!options_.stream.cache) options_.stream.cache = std::make_shared<MicrobatchCache>();
}

arrow::Result<StreamPlan> FlightService::PlanStream(sql::Session* session,
                                                   const std::string& sql,
                                                   const std::string& resume) const {
  ARROW_ASSIGN_OR_RAISE(auto info, session->CheckStreaming(sql));
  std::string dataset;
  std::map<std::string, int> reads;
  for (const auto& t : info.tables) {
    if (t.schema.empty() || !engine_->datasets().count(t.schema)) {
      return arrow::Status::Invalid("streaming queries read chain tables (e.g. eth_rpc.blocks); '",
                                    t.schema.empty() ? t.table : t.schema + "." + t.table,
                                    "' is not one");
    }
    if (!dataset.empty() && dataset != t.schema) {
      return arrow::Status::Invalid("a streaming query reads the tables of one dataset; this one "
                                    "reads ", dataset, " and ", t.schema);
    }
    dataset = t.schema;
    ++reads[t.table];
  }
  if (dataset.empty()) {
    return arrow::Status::Invalid("a streaming query must read a chain table, e.g. eth_rpc.blocks");
  }
  StreamPlan plan;
  plan.sql = sql;
  plan.store = engine_->datasets().at(dataset);
  for (const auto& [table, n] : reads) {
    if (n > 1) {
      return arrow::Status::Invalid("a streaming query may read each table once; ", dataset, ".",
                                    table, " is read ", n, " times");
    }
    plan.tables.push_back(table);
  }
  if (info.has_join && !info.has_block_grouping && !info.joins_on_block_num) {
    plan.mode = StreamPlan::Mode::kDeltaJoin;
  } else if (info.tables.size() > 1 || info.has_block_grouping) {
    plan.mode = StreamPlan::Mode::kPerBlock;
  }
  if (!resume.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto cursor, ParseCursor(resume));
    const auto& network = plan.store->options().network;
    for (const auto& [name, pos] : cursor) {
      if (name != network) {
        return arrow::Status::Invalid("amp-resume cursor names unknown network '", name,
                                      "'; this query streams network '", network, "'");
      }
      plan.resume = pos;
    }
    bool reorged = false;
    ARROW_RETURN_NOT_OK(
        ResolveResume(*plan.store, *plan.store->snapshot(), *plan.resume, &reorged).status());
  }
  return plan;
}

namespace {

// The query of a request: its SQL without the SETTINGS clause, whether it
// streams, and its resume cursor.
struct Request {
  std::string sql;
  bool stream = false;
  std::string resume;
};

arrow::Result<Request> ParseRequest(const fl::ServerCallContext& context,
                                    const fl::FlightDescriptor& descriptor) {
  if (descriptor.type != fl::FlightDescriptor::CMD) {
    return arrow::Status::Invalid(
        "descriptor must be a command (FlightDescriptor.for_command) holding SQL");
  }
  ARROW_ASSIGN_OR_RAISE(auto command, SqlFromCommand(descriptor.cmd));
  ARROW_ASSIGN_OR_RAISE(auto settings, sql::ExtractSettings(command));
  std::optional<bool> header;
  if (auto h = Header(context, "amp-stream")) {
    auto parsed = sql::ParseStreamHeader(*h);
    if (!parsed.ok()) return arrow::Status::Invalid("header amp-stream: ", parsed.status().message());
    header = *parsed;
  }
  Request r;
  r.sql = std::move(settings.sql);
  r.stream = sql::IsStreaming(settings, header);
  r.resume = Header(context, "amp-resume").value_or("");
  if (!r.stream && !r.resume.empty()) {
    return arrow::Status::Invalid(
        "header amp-resume applies to streaming queries (SETTINGS stream = true or amp-stream: "
        "true)");
  }
  return r;
}

}  // namespace

arrow::Status FlightService::GetFlightInfo(const fl::ServerCallContext& context,
                                           const fl::FlightDescriptor& request,
                                           std::unique_ptr<fl::FlightInfo>* info) {
  // A query refused here ends here: count it (one that plans is counted by DoGet).
  bool stream = false;
  auto st = Plan(context, request, info, &stream);
  if (!st.ok()) {
    ServerMetrics::Get().CountQuery(stream ? QueryKind::kStream : QueryKind::kBatch,
                                    common::OutcomeOf(st));
  }
  return st;
}

arrow::Status FlightService::Plan(const fl::ServerCallContext& context,
                                  const fl::FlightDescriptor& request,
                                  std::unique_ptr<fl::FlightInfo>* info, bool* stream) {
  ARROW_ASSIGN_OR_RAISE(auto query, ParseRequest(context, request));
  *stream = query.stream;
  ARROW_ASSIGN_OR_RAISE(auto session, engine_->OpenSession());
  if (query.stream) ARROW_RETURN_NOT_OK(PlanStream(session.get(), query.sql, query.resume).status());
  ARROW_ASSIGN_OR_RAISE(auto schema, session->Prepare(query.sql));
  if (HasDictionary(*schema)) {
    return arrow::Status::NotImplemented(
        "results with ENUM (dictionary) columns are not supported; CAST them to VARCHAR");
  }
  TicketPayload payload;
  payload.sql = query.sql;
  payload.stream = query.stream;
  payload.resume = query.resume;
  fl::FlightEndpoint endpoint;
  endpoint.ticket.ticket = signer_.Issue(std::move(payload));
  ARROW_ASSIGN_OR_RAISE(auto flight_info,
                        fl::FlightInfo::Make(*schema, request, {endpoint}, -1, -1));
  *info = std::make_unique<fl::FlightInfo>(std::move(flight_info));
  return arrow::Status::OK();
}

arrow::Status FlightService::DoGet(const fl::ServerCallContext& context, const fl::Ticket& request,
                                   std::unique_ptr<fl::FlightDataStream>* stream) {
  // A query that fails before its stream exists ends here; the streams count
  // the others when they end.
  bool streaming = false;
  auto st = Open(context, request, stream, &streaming);
  if (!st.ok()) {
    ServerMetrics::Get().CountQuery(streaming ? QueryKind::kStream : QueryKind::kBatch,
                                    common::OutcomeOf(st));
  }
  return st;
}

arrow::Status FlightService::Open(const fl::ServerCallContext& context, const fl::Ticket& request,
                                  std::unique_ptr<fl::FlightDataStream>* stream,
                                  bool* streaming) {
  ARROW_ASSIGN_OR_RAISE(auto payload, signer_.Redeem(request.ticket));
  *streaming = payload.stream;
  ARROW_ASSIGN_OR_RAISE(auto session, engine_->OpenSession());
  if (payload.stream) {
    ARROW_ASSIGN_OR_RAISE(auto plan, PlanStream(session.get(), payload.sql, payload.resume));
    ARROW_ASSIGN_OR_RAISE(auto schema, session->Prepare(payload.sql));
    ARROW_ASSIGN_OR_RAISE(*stream, StreamingQuery::Make(engine_, std::move(plan), options_.stream,
                                                        std::move(schema), &context));
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto reader, session->Execute(payload.sql, options_.rows_per_batch));
  *stream = std::make_unique<BatchQueryStream>(std::move(session), std::move(reader));
  return arrow::Status::OK();
}

}  // namespace sluice::flight
