#include "flight/service.h"

#include <charconv>
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
#include "flight/endpoints.h"
#include "flight/flight_sql.h"
#include "flight/limits.h"
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
  int64_t rows_per_batch = 0;  // header sluice-fetch-size; 0: the server's rows_per_batch
};

constexpr int64_t kMaxFetchSize = 1 << 20;

// The header `sluice-fetch-size: N`: rows per record batch, 1..1048576.
arrow::Result<int64_t> ParseFetchSize(const std::string& text) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > kMaxFetchSize) {
    return arrow::Status::Invalid("header sluice-fetch-size must be an integer from 1 to ",
                                  kMaxFetchSize, " (rows per record batch), not '", text, "'");
  }
  return n;
}

arrow::Result<Request> ParseRequest(const fl::ServerCallContext& context,
                                    const std::string& command) {
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
  if (auto h = Header(context, "sluice-fetch-size")) {
    ARROW_ASSIGN_OR_RAISE(r.rows_per_batch, ParseFetchSize(*h));
  }
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
  return ToFlightStatus(std::move(st));
}

arrow::Status FlightService::Plan(const fl::ServerCallContext& context,
                                  const fl::FlightDescriptor& request,
                                  std::unique_ptr<fl::FlightInfo>* info, bool* stream) {
  if (request.type != fl::FlightDescriptor::CMD) {
    return arrow::Status::Invalid(
        "descriptor must be a command (FlightDescriptor.for_command) holding SQL");
  }
  ARROW_ASSIGN_OR_RAISE(auto command, CommandFromDescriptor(request.cmd));
  TicketPayload payload;
  fl::FlightEndpoint endpoint;
  if (IsMetadataCommand(command)) {
    ARROW_ASSIGN_OR_RAISE(auto schema, MetadataSchema(command));
    payload.command = request.cmd;
    endpoint.ticket.ticket = signer_.Issue(std::move(payload));
    ARROW_ASSIGN_OR_RAISE(auto flight_info,
                          fl::FlightInfo::Make(*schema, request, {endpoint}, -1, -1));
    *info = std::make_unique<fl::FlightInfo>(std::move(flight_info));
    return arrow::Status::OK();
  }
  std::string text;
  sql::Parameters params;
  if (auto* q = std::get_if<wire::CommandStatementQuery>(&command)) {
    text = std::move(q->query);
  } else {
    const auto& handle = std::get<wire::CommandPreparedStatementQuery>(command);
    ARROW_ASSIGN_OR_RAISE(auto prepared, prepared_.Get(handle.prepared_statement_handle));
    text = std::move(prepared.sql);
    params = std::move(prepared.params);
  }
  ARROW_ASSIGN_OR_RAISE(auto query, ParseRequest(context, text));
  *stream = query.stream;
  if (query.stream && params) {
    return arrow::Status::Invalid(
        "parameters apply to batch queries; send a streaming query as SQL text without "
        "parameters");
  }
  ARROW_ASSIGN_OR_RAISE(auto session, engine_->OpenSession());
  if (query.stream) ARROW_RETURN_NOT_OK(PlanStream(session.get(), query.sql, query.resume).status());
  ARROW_ASSIGN_OR_RAISE(auto schema, session->Prepare(query.sql, params));
  if (HasDictionary(*schema)) {
    return arrow::Status::NotImplemented(
        "results with ENUM (dictionary) columns are not supported; CAST them to VARCHAR");
  }
  payload.sql = query.sql;
  payload.stream = query.stream;
  payload.resume = query.resume;
  payload.rows_per_batch = query.rows_per_batch;
  ARROW_ASSIGN_OR_RAISE(payload.params, SerializeParameters(params));
  std::optional<SplitPlan> split;
  if (!query.stream) {
    ARROW_ASSIGN_OR_RAISE(split, PlanSplit(session.get(), query.sql, options_.endpoint_max_blocks));
  }
  if (split) {  // several endpoints, in block order (flight/endpoints.h)
    std::vector<fl::FlightEndpoint> endpoints;
    for (size_t i = 0; i < split->ranges.size(); ++i) {
      TicketPayload part = payload;
      part.range_table = split->dataset + "." + split->table;
      part.range_lo = split->ranges[i].start;
      part.range_hi = split->ranges[i].end;
      part.range_hash = storage::HashToHex(split->end_hashes[i]);
      fl::FlightEndpoint e;
      e.ticket.ticket = signer_.Issue(std::move(part));
      ARROW_ASSIGN_OR_RAISE(e.locations, EndpointLocations(i, options_.endpoint_locations));
      endpoints.push_back(std::move(e));
    }
    ARROW_ASSIGN_OR_RAISE(auto flight_info, fl::FlightInfo::Make(*schema, request, endpoints, -1,
                                                                 -1, /*ordered=*/true));
    *info = std::make_unique<fl::FlightInfo>(std::move(flight_info));
    return arrow::Status::OK();
  }
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
  return ToFlightStatus(std::move(st));
}

arrow::Status FlightService::Open(const fl::ServerCallContext& context, const fl::Ticket& request,
                                  std::unique_ptr<fl::FlightDataStream>* stream,
                                  bool* streaming) {
  ARROW_ASSIGN_OR_RAISE(auto payload, signer_.Redeem(request.ticket));
  *streaming = payload.stream;
  if (!payload.command.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto command, CommandFromDescriptor(payload.command));
    ARROW_ASSIGN_OR_RAISE(auto batch, MetadataResult(engine_, command));
    ARROW_ASSIGN_OR_RAISE(auto reader, arrow::RecordBatchReader::Make({batch}, batch->schema()));
    *stream = std::make_unique<fl::RecordBatchStream>(std::move(reader));
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto params, DeserializeParameters(payload.params));
  ARROW_ASSIGN_OR_RAISE(auto admission, Admit(options_.limits, payload.stream));
  ARROW_ASSIGN_OR_RAISE(auto session, engine_->OpenSession());
  if (payload.stream) {
    ARROW_ASSIGN_OR_RAISE(auto plan, PlanStream(session.get(), payload.sql, payload.resume));
    ARROW_ASSIGN_OR_RAISE(auto schema, session->Prepare(payload.sql));
    StreamOptions stream_options = options_.stream;
    if (payload.rows_per_batch > 0) {  // the client's fetch size, exactly
      stream_options.rows_per_batch = payload.rows_per_batch;
      stream_options.soft_batch_bytes = 0;
    }
    ARROW_ASSIGN_OR_RAISE(auto query, StreamingQuery::Make(engine_, std::move(plan),
                                                           stream_options, std::move(schema),
                                                           &context));
    *stream = std::make_unique<QueryStream>(std::move(query), std::move(admission));
    return arrow::Status::OK();
  }
  if (!payload.range_table.empty()) ARROW_RETURN_NOT_OK(RestrictToRange(session.get(), payload));
  // Watched from here: a client gone or a deadline passed interrupts the engine.
  WatchBatchQuery(options_.limits, context, session.get(), &admission);
  const int64_t rows_per_batch =
      payload.rows_per_batch > 0 ? payload.rows_per_batch : options_.rows_per_batch;
  // A fetch size the client asked for is kept exactly (up to sql::kMaxBatchBytes).
  auto reader = session->Execute(payload.sql, rows_per_batch, params,
                                 payload.rows_per_batch > 0 ? 0 : sql::kDefaultBatchBytes);
  if (!reader.ok()) {
    auto st = admission.watch ? admission.watch->Explain(reader.status()) : reader.status();
    admission.watch.reset();  // before the session it interrupts
    return st;
  }
  *stream = std::make_unique<QueryStream>(
      std::make_unique<BatchQueryStream>(std::move(session), std::move(*reader)),
      std::move(admission));
  return arrow::Status::OK();
}

arrow::Status FlightService::ListActions(const fl::ServerCallContext& context,
                                         std::vector<fl::ActionType>* actions) {
  *actions = {
      {std::string(wire::kCreatePreparedStatement),
       "Flight SQL: prepare a query (Any of ActionCreatePreparedStatementRequest)"},
      {std::string(wire::kClosePreparedStatement),
       "Flight SQL: close a prepared statement (Any of ActionClosePreparedStatementRequest)"},
  };
  return arrow::Status::OK();
}

arrow::Status FlightService::DoAction(const fl::ServerCallContext& context,
                                      const fl::Action& action,
                                      std::unique_ptr<fl::ResultStream>* result) {
  std::string_view body = action.body ? std::string_view(*action.body) : std::string_view();
  std::vector<fl::Result> results;
  if (action.type == wire::kCreatePreparedStatement) {
    ARROW_ASSIGN_OR_RAISE(auto request, wire::DecodeCreatePreparedStatementRequest(body));
    // A streaming query may be prepared (ADBC prepares every query) but not given
    // parameters: GetFlightInfo refuses that combination.
    ARROW_ASSIGN_OR_RAISE(auto query, ParseRequest(context, request.query));
    ARROW_ASSIGN_OR_RAISE(auto session, engine_->OpenSession());
    ARROW_ASSIGN_OR_RAISE(auto schemas, session->Describe(query.sql));
    wire::ActionCreatePreparedStatementResult answer;
    if (schemas.first) {
      if (HasDictionary(*schemas.first)) {
        return arrow::Status::NotImplemented(
            "results with ENUM (dictionary) columns are not supported; CAST them to VARCHAR");
      }
      ARROW_ASSIGN_OR_RAISE(auto bytes, arrow::ipc::SerializeSchema(*schemas.first));
      answer.dataset_schema = bytes->ToString();
    }
    if (schemas.second) {
      ARROW_ASSIGN_OR_RAISE(auto bytes, arrow::ipc::SerializeSchema(*schemas.second));
      answer.parameter_schema = bytes->ToString();
    }
    answer.prepared_statement_handle = prepared_.Add(request.query);
    results.push_back(fl::Result{arrow::Buffer::FromString(wire::Encode(answer))});
  } else if (action.type == wire::kClosePreparedStatement) {
    ARROW_ASSIGN_OR_RAISE(auto request, wire::DecodeClosePreparedStatementRequest(body));
    prepared_.Remove(request.prepared_statement_handle);
  } else {
    return arrow::Status::NotImplemented("action '", action.type,
                                         "' is not supported; ListActions names the ones that are");
  }
  *result = std::make_unique<fl::SimpleResultStream>(std::move(results));
  return arrow::Status::OK();
}

arrow::Status FlightService::DoPut(const fl::ServerCallContext& context,
                                   std::unique_ptr<fl::FlightMessageReader> reader,
                                   std::unique_ptr<fl::FlightMetadataWriter> writer) {
  const auto& descriptor = reader->descriptor();
  const wire::CommandPreparedStatementQuery* handle = nullptr;
  wire::Command command;
  if (descriptor.type == fl::FlightDescriptor::CMD) {
    auto decoded = CommandFromDescriptor(descriptor.cmd);
    if (decoded.ok()) {
      command = std::move(*decoded);
      handle = std::get_if<wire::CommandPreparedStatementQuery>(&command);
    }
  }
  if (handle == nullptr) {
    return arrow::Status::NotImplemented(
        "sluice is read-only: DoPut only binds parameters to a prepared statement "
        "(descriptor CommandPreparedStatementQuery)");
  }
  ARROW_ASSIGN_OR_RAISE(auto table, reader->ToTable());
  sql::Parameters params;
  if (table->num_columns() > 0) {
    if (table->num_rows() != 1) {
      return arrow::Status::Invalid("bind exactly one row of parameters to a query; got ",
                                    table->num_rows());
    }
    ARROW_ASSIGN_OR_RAISE(params, table->CombineChunksToBatch());
  }
  ARROW_RETURN_NOT_OK(prepared_.Bind(handle->prepared_statement_handle, std::move(params)));
  wire::DoPutPreparedStatementResult answer;
  answer.prepared_statement_handle = handle->prepared_statement_handle;
  return writer->WriteMetadata(*arrow::Buffer::FromString(wire::Encode(answer)));
}

}  // namespace sluice::flight
