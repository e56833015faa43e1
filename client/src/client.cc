#include "sluice/client/client.h"

#include <cstdlib>

#include "arrow/flight/types.h"
#include "sluice/client/cursor_store.h"
#include "prepared_statement_internal.h"

namespace fl = arrow::flight;

namespace sluice::client {

namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

arrow::Status CheckFetchSize(int64_t fetch_size) {
  if (fetch_size < 0 || fetch_size > kMaxFetchSize) {
    return arrow::Status::Invalid("fetch_size must be 0 (the server's default) or 1..",
                                  kMaxFetchSize, " rows, not ", fetch_size);
  }
  return arrow::Status::OK();
}

// What is left of `timeout` since `start` (at least 1 ms, so an expired deadline
// still fails as a timeout rather than meaning "none").
std::optional<Millis> Remaining(std::optional<Millis> timeout, Clock::time_point start) {
  if (!timeout) return std::nullopt;
  auto left = *timeout - std::chrono::duration_cast<Millis>(Clock::now() - start);
  return std::max(left, Millis(1));
}

std::optional<fl::FlightStatusCode> FlightCode(const arrow::Status& status) {
  auto detail = fl::FlightStatusDetail::UnwrapStatus(status);
  if (!detail) return std::nullopt;
  return detail->code();
}

}  // namespace

arrow::Result<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  if (options.flight_url.empty()) {
    const char* env = std::getenv(kFlightUrlEnv);
    options.flight_url = (env != nullptr && *env != '\0') ? env : kDefaultFlightUrl;
  }
  if (options.timeout && options.timeout->count() <= 0) {
    return arrow::Status::Invalid("timeout must be > 0 ms");
  }
  auto location = fl::Location::Parse(options.flight_url);
  if (!location.ok()) {
    return arrow::Status::Invalid("flight_url '", options.flight_url,
                                  "' is not a Flight location (grpc://host:port): ",
                                  location.status().message());
  }
  ARROW_ASSIGN_OR_RAISE(auto flight, fl::FlightClient::Connect(*location));
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(flight)));
}

Client::Client(ClientOptions options, std::unique_ptr<fl::FlightClient> flight)
    : options_(std::move(options)), flight_url_(options_.flight_url), flight_(std::move(flight)) {}

Client::~Client() { (void)Close(); }

arrow::Status Client::Close() {
  if (closed_) return arrow::Status::OK();
  closed_ = true;
  return flight_->Close();
}

fl::FlightCallOptions Client::CallOptions(const Headers& extra,
                                          std::optional<Millis> timeout) const {
  fl::FlightCallOptions call;
  if (!options_.api_key.empty()) {
    call.headers.emplace_back("authorization", "Bearer " + options_.api_key);
  }
  for (const auto& h : options_.headers) call.headers.push_back(h);
  for (const auto& h : extra) call.headers.push_back(h);
  if (timeout) call.timeout = fl::TimeoutDuration(static_cast<double>(timeout->count()) / 1000.0);
  return call;
}

arrow::Result<std::unique_ptr<QueryReader>> Client::Query(const std::string& sql,
                                                          const QueryOptions& options) {
  if (closed_) return arrow::Status::Invalid("the client is closed");
  ARROW_RETURN_NOT_OK(CheckFetchSize(options.fetch_size));
  if (options.max_pages && *options.max_pages < 0) {
    return arrow::Status::Invalid("max_pages must be >= 0, not ", *options.max_pages);
  }
  if (options.timeout && options.timeout->count() <= 0) {
    return arrow::Status::Invalid("timeout must be > 0 ms");
  }
  if (!options.parameters.empty() && options.parameter_batch) {
    return arrow::Status::Invalid("set parameters or parameter_batch, not both");
  }
  const auto start = Clock::now();
  const auto timeout = options.timeout ? options.timeout : options_.timeout;
  Headers extra = options.headers;
  if (options.fetch_size > 0) {
    extra.emplace_back("sluice-fetch-size", std::to_string(options.fetch_size));
  }

  fl::FlightDescriptor descriptor = fl::FlightDescriptor::Command(sql);
  // With parameters: a Flight SQL prepared statement, bound, then run by its
  // descriptor; closed once GetFlightInfo answered (the ticket holds it all).
  std::unique_ptr<PreparedStatement> statement;
  if (!options.parameters.empty() || options.parameter_batch) {
    std::shared_ptr<arrow::RecordBatch> parameters = options.parameter_batch;
    if (!parameters) {
      ARROW_ASSIGN_OR_RAISE(parameters, ParameterBatch(options.parameters));
    }
    ARROW_ASSIGN_OR_RAISE(
        auto prepared,
        PreparedStatement::Make(flight_.get(), CallOptions(extra, Remaining(timeout, start)), sql));
    ARROW_RETURN_NOT_OK(
        prepared->Bind(CallOptions(extra, Remaining(timeout, start)), parameters));
    descriptor = prepared->descriptor();
    statement = std::move(prepared);
  }

  ARROW_ASSIGN_OR_RAISE(auto info, flight_->GetFlightInfo(
                                       CallOptions(extra, Remaining(timeout, start)), descriptor));
  statement.reset();
  if (info->endpoints().empty()) {
    return arrow::Status::IOError("the server's FlightInfo has no endpoint");
  }
  ARROW_ASSIGN_OR_RAISE(auto reader,
                        flight_->DoGet(CallOptions(extra, Remaining(timeout, start)),
                                       info->endpoints()[0].ticket));
  auto schema = reader->GetSchema();
  if (!schema.ok()) {
    reader->Cancel();
    return schema.status();
  }
  std::unique_ptr<QueryReader> out(new QueryReader(std::move(reader), *schema, options));
  if (options.max_pages && *options.max_pages == 0) out->Finish(/*cancel_call=*/true);
  return out;
}

arrow::Result<std::shared_ptr<arrow::Table>> Client::QueryTable(const std::string& sql,
                                                                const QueryOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto reader, Query(sql, options));
  return reader->ReadAll();
}

arrow::Result<std::unique_ptr<sluice::client::Stream>> Client::Stream(const std::string& sql,
                                                                      StreamOptions options) {
  if (closed_) return arrow::Status::Invalid("the client is closed");
  ARROW_RETURN_NOT_OK(CheckFetchSize(options.fetch_size));
  if (options.timeout && options.timeout->count() <= 0) {
    return arrow::Status::Invalid("timeout must be > 0 ms");
  }
  auto store = options.cursor_store;
  if (!store && !options.cursor_file.empty()) {
    store = std::make_shared<FileCursorStore>(options.cursor_file);
  }
  std::optional<std::string> cursor = options.cursor;
  if (!cursor && store) {
    ARROW_ASSIGN_OR_RAISE(cursor, store->Load());
  }

  Headers extra = options.headers;
  extra.emplace_back("amp-stream", "true");
  if (cursor) extra.emplace_back("amp-resume", *cursor);
  if (options.fetch_size > 0) {
    extra.emplace_back("sluice-fetch-size", std::to_string(options.fetch_size));
  }
  const auto timeout = options.timeout ? options.timeout : options_.timeout;
  ARROW_ASSIGN_OR_RAISE(auto info, flight_->GetFlightInfo(CallOptions(extra, timeout),
                                                          fl::FlightDescriptor::Command(sql)));
  if (info->endpoints().empty()) {
    return arrow::Status::IOError("the server's FlightInfo has no endpoint");
  }
  ARROW_ASSIGN_OR_RAISE(auto reader,
                        flight_->DoGet(CallOptions(extra, std::nullopt), info->endpoints()[0].ticket));
  auto schema = reader->GetSchema();
  if (!schema.ok()) {
    reader->Cancel();
    return schema.status();
  }
  return std::unique_ptr<sluice::client::Stream>(
      new sluice::client::Stream(std::move(reader), *schema, std::move(cursor), std::move(store)));
}

bool IsTimedOut(const arrow::Status& status) {
  return FlightCode(status) == fl::FlightStatusCode::TimedOut;
}

bool IsUnavailable(const arrow::Status& status) {
  return FlightCode(status) == fl::FlightStatusCode::Unavailable;
}

bool IsCancelled(const arrow::Status& status) {
  return status.IsCancelled() || FlightCode(status) == fl::FlightStatusCode::Cancelled;
}

}  // namespace sluice::client
