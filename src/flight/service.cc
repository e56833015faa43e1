#include "flight/service.h"

#include <charconv>
#include <functional>

#include "arrow/flight/api.h"
#include "arrow/ipc/writer.h"
#include "common/log.h"
#include "common/server_metrics.h"
#include "flight/app_metadata.h"
#include "flight/batch_stream.h"
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
    : engine_(engine),
      signer_(std::move(signer)),
      options_(std::move(options)),
      running_(signer_.ttl()) {
  if (!options_.stream.cache) options_.stream.cache = std::make_shared<MicrobatchCache>();
  // Streams over several datasets wake when any of them stores blocks.
  watch_ = std::make_shared<StoreWatch>();
  for (const auto& [name, store] : engine_->datasets()) {
    store->Subscribe([watch = watch_](const storage::Snapshot&) { watch->Notify(); });
  }
}

arrow::Result<StreamPlan> FlightService::PlanStream(sql::Session* session,
                                                   const std::string& sql,
                                                   const std::string& resume) const {
  ARROW_ASSIGN_OR_RAISE(auto check, session->CheckStreaming(sql));
  std::set<std::string> datasets;
  for (const auto& t : check.info.tables) {
    if (t.schema.empty() || !engine_->datasets().count(t.schema)) {
      return arrow::Status::Invalid("streaming queries read chain tables (e.g. eth_rpc.blocks); '",
                                    t.schema.empty() ? t.table : t.schema + "." + t.table,
                                    "' is not one");
    }
    datasets.insert(t.schema);
  }
  if (datasets.empty()) {
    return arrow::Status::Invalid("a streaming query must read a chain table, e.g. eth_rpc.blocks");
  }
  StreamPlan plan;
  plan.sql = sql;
  std::map<std::string, storage::BlockStore*> networks;  // network -> store
  for (const auto& d : datasets) {
    auto* store = engine_->datasets().at(d);
    plan.stores.push_back(store);
    networks[store->options().network] = store;
  }
  if (check.delta_sql.empty()) {
    plan.table = check.info.tables.front().table;
  } else {
    plan.mode = StreamPlan::Mode::kDelta;
    plan.delta_sql = std::move(check.delta_sql);
    plan.ordered = check.ordered;
    plan.per_block = check.info.late_rows;
  }
  if (!resume.empty()) {
    ARROW_ASSIGN_OR_RAISE(plan.resume, ParseCursor(resume));
    for (const auto& [name, pos] : plan.resume) {
      auto it = networks.find(name);
      if (it == networks.end()) {
        std::string known;
        for (const auto& [n, store] : networks) known += (known.empty() ? "'" : ", '") + n + "'";
        return arrow::Status::Invalid("amp-resume cursor names unknown network '", name,
                                      "'; this query streams network ", known);
      }
      bool reorged = false;
      ARROW_RETURN_NOT_OK(
          ResolveResume(*it->second, *it->second->snapshot(), pos, &reorged).status());
    }
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

arrow::Status FlightService::Describe(const fl::ServerCallContext& context,
                                      const fl::FlightDescriptor& request,
                                      std::shared_ptr<arrow::Schema>* schema,
                                      TicketPayload* payload, bool* stream, bool schema_only,
                                      std::unique_ptr<sql::Session>* session_out) {
  if (request.type != fl::FlightDescriptor::CMD) {
    return arrow::Status::Invalid(
        "descriptor must be a command (FlightDescriptor.for_command) holding SQL");
  }
  ARROW_ASSIGN_OR_RAISE(auto command, CommandFromDescriptor(request.cmd));
  if (IsMetadataCommand(command)) {
    ARROW_ASSIGN_OR_RAISE(*schema, MetadataSchema(command));
    payload->command = request.cmd;
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
  if (schema_only && !params) {
    // GetSchema of a statement whose parameters are not bound (yet): the schema
    // DuckDB knows without their types.
    ARROW_ASSIGN_OR_RAISE(auto described, session->Describe(query.sql));
    if (!described.first) {
      return arrow::Status::Invalid(
          "the result's schema depends on the types of the parameters: bind them first");
    }
    *schema = std::move(described.first);
  } else {
    ARROW_ASSIGN_OR_RAISE(*schema, session->Prepare(query.sql, params));
  }
  if (HasDictionary(**schema)) {
    return arrow::Status::NotImplemented(
        "results with ENUM (dictionary) columns are not supported; CAST them to VARCHAR");
  }
  payload->sql = query.sql;
  payload->stream = query.stream;
  payload->resume = query.resume;
  payload->rows_per_batch = query.rows_per_batch;
  ARROW_ASSIGN_OR_RAISE(payload->params, SerializeParameters(params));
  if (session_out) *session_out = std::move(session);
  return arrow::Status::OK();
}

arrow::Status FlightService::Plan(const fl::ServerCallContext& context,
                                  const fl::FlightDescriptor& request,
                                  std::unique_ptr<fl::FlightInfo>* info, bool* stream) {
  std::shared_ptr<arrow::Schema> schema;
  TicketPayload payload;
  std::unique_ptr<sql::Session> session;
  ARROW_RETURN_NOT_OK(Describe(context, request, &schema, &payload, stream, false, &session));
  std::optional<SplitPlan> split;
  if (session && !payload.stream) {
    ARROW_ASSIGN_OR_RAISE(split,
                          PlanSplit(session.get(), payload.sql, options_.endpoint_max_blocks));
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
  fl::FlightEndpoint endpoint;
  endpoint.ticket.ticket = signer_.Issue(std::move(payload));
  ARROW_ASSIGN_OR_RAISE(auto flight_info,
                        fl::FlightInfo::Make(*schema, request, {endpoint}, -1, -1));
  *info = std::make_unique<fl::FlightInfo>(std::move(flight_info));
  return arrow::Status::OK();
}

arrow::Status FlightService::GetSchema(const fl::ServerCallContext& context,
                                       const fl::FlightDescriptor& request,
                                       std::unique_ptr<fl::SchemaResult>* schema) {
  std::shared_ptr<arrow::Schema> answer;
  TicketPayload payload;
  bool stream = false;
  ARROW_RETURN_NOT_OK(
      ToFlightStatus(Describe(context, request, &answer, &payload, &stream, true)));
  ARROW_ASSIGN_OR_RAISE(*schema, fl::SchemaResult::Make(*answer));
  return arrow::Status::OK();
}

arrow::Status FlightService::PollFlightInfo(const fl::ServerCallContext& context,
                                            const fl::FlightDescriptor& request,
                                            std::unique_ptr<fl::PollInfo>* info) {
  std::unique_ptr<fl::FlightInfo> flight_info;
  ARROW_RETURN_NOT_OK(GetFlightInfo(context, request, &flight_info));
  // Finished: no descriptor to poll again with.
  *info = std::make_unique<fl::PollInfo>(std::move(flight_info), std::nullopt, 1.0, std::nullopt);
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
  // Cancellable from here (CancelFlightInfo): a batch query's engine is
  // interrupted at once, a stream ends at its next message. Destroyed before the
  // session it interrupts.
  ARROW_ASSIGN_OR_RAISE(
      auto registration,
      running_.Start(request.ticket, payload.stream ? std::function<void()>()
                                                    : [s = session.get()] { s->Interrupt(); }));
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
                                                           &context, watch_));
    *stream = std::make_unique<CancellableStream>(
        std::make_unique<QueryStream>(std::move(query), std::move(admission)),
        std::move(registration));
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
  if (!reader.ok() || registration->cancelled()) {
    auto st = registration->cancelled() ? CancelledStatus()
              : admission.watch         ? admission.watch->Explain(reader.status())
                                        : reader.status();
    admission.watch.reset();  // before the session it interrupts
    return st;
  }
  *stream = std::make_unique<CancellableStream>(
      std::make_unique<QueryStream>(
          std::make_unique<BatchQueryStream>(std::move(session), std::move(*reader)),
          std::move(admission)),
      std::move(registration));
  return arrow::Status::OK();
}

arrow::Status FlightService::ListActions(const fl::ServerCallContext& context,
                                         std::vector<fl::ActionType>* actions) {
  *actions = {
      {std::string(wire::kCreatePreparedStatement),
       "Flight SQL: prepare a query (Any of ActionCreatePreparedStatementRequest)"},
      {std::string(wire::kClosePreparedStatement),
       "Flight SQL: close a prepared statement (Any of ActionClosePreparedStatementRequest)"},
      fl::ActionType::kCancelFlightInfo,
      {std::string(wire::kCancelQuery),
       "Flight SQL (deprecated): cancel a query (Any of ActionCancelQueryRequest)"},
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
  } else if (action.type == fl::ActionType::kCancelFlightInfo.type) {
    auto request = fl::CancelFlightInfoRequest::Deserialize(body);
    if (!request.ok() || !request->info) {
      return arrow::Status::Invalid("CancelFlightInfo: the body is not a CancelFlightInfoRequest");
    }
    ARROW_RETURN_NOT_OK(Cancel(*request->info));
    fl::CancelFlightInfoResult cancelled(fl::CancelStatus::kCancelled);
    ARROW_ASSIGN_OR_RAISE(auto answer, cancelled.SerializeToString());
    results.push_back(fl::Result{arrow::Buffer::FromString(std::move(answer))});
  } else if (action.type == wire::kCancelQuery) {
    ARROW_ASSIGN_OR_RAISE(auto request, wire::DecodeCancelQueryRequest(body));
    auto info = fl::FlightInfo::Deserialize(request.info);
    if (!info.ok()) return arrow::Status::Invalid("CancelQuery: info is not a FlightInfo");
    ARROW_RETURN_NOT_OK(Cancel(**info));
    wire::ActionCancelQueryResult answer;
    answer.result = 1;  // CANCEL_RESULT_CANCELLED
    results.push_back(fl::Result{arrow::Buffer::FromString(wire::Encode(answer))});
  } else {
    return arrow::Status::NotImplemented("action '", action.type,
                                         "' is not supported; ListActions names the ones that are");
  }
  *result = std::make_unique<fl::SimpleResultStream>(std::move(results));
  return arrow::Status::OK();
}

arrow::Status FlightService::Cancel(const fl::FlightInfo& info) {
  // A ticket of this server is remembered as cancelled (its DoGet, if it comes
  // later, is refused); any ticket with running DoGet calls stops them.
  size_t known = 0;
  for (const auto& endpoint : info.endpoints()) {
    const bool valid = signer_.Redeem(endpoint.ticket.ticket).ok();
    size_t running = running_.Cancel(endpoint.ticket.ticket, valid);
    if (valid || running > 0) ++known;
    LOG_DEBUG("cancel: stopped {} running DoGet call(s) of a ticket", running);
  }
  if (known == 0) {
    return arrow::Status::Invalid(
        "cancel: the FlightInfo names no ticket of this server (expired, or from another "
        "server) and none of its queries is running");
  }
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
