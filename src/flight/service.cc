#include "flight/service.h"

#include "arrow/flight/api.h"
#include "arrow/ipc/writer.h"
#include "common/log.h"
#include "flight/app_metadata.h"
#include "flight/command.h"

namespace fl = arrow::flight;

namespace sluice::flight {

namespace {

// Streams a batch query's result: one message per record batch, then a final
// empty batch whose metadata says ranges_complete.
class BatchQueryStream : public fl::FlightDataStream {
 public:
  BatchQueryStream(std::unique_ptr<sql::Session> session,
                   std::unique_ptr<sql::ResultReader> reader)
      : session_(std::move(session)), reader_(std::move(reader)) {
    auto ranges = SessionRanges(session_->snapshots());
    data_metadata_ = arrow::Buffer::FromString(MakeAppMetadata(ranges, false, false, "data").dump());
    end_metadata_ = arrow::Buffer::FromString(MakeAppMetadata(ranges, true, false, "end").dump());
  }

  ~BatchQueryStream() override {
    // A client that went away mid-answer: stop the engine's work.
    if (!finished_) session_->Interrupt();
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
    fl::FlightPayload payload;
    if (finished_) return payload;  // null metadata: end of stream
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader_->ReadNext(&batch));
    if (batch) {
      payload.app_metadata = data_metadata_;
    } else {
      ARROW_ASSIGN_OR_RAISE(batch, arrow::RecordBatch::MakeEmpty(reader_->schema()));
      payload.app_metadata = end_metadata_;
      finished_ = true;
    }
    ARROW_RETURN_NOT_OK(arrow::ipc::GetRecordBatchPayload(*batch, ipc_options_,
                                                          &payload.ipc_message));
    return payload;
  }

 private:
  std::unique_ptr<sql::Session> session_;
  std::unique_ptr<sql::ResultReader> reader_;
  arrow::ipc::IpcWriteOptions ipc_options_ = arrow::ipc::IpcWriteOptions::Defaults();
  std::shared_ptr<arrow::Buffer> data_metadata_;
  std::shared_ptr<arrow::Buffer> end_metadata_;
  bool finished_ = false;
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
    : engine_(engine), signer_(std::move(signer)), options_(options) {}

arrow::Result<std::string> FlightService::QueryFromDescriptor(
    const fl::ServerCallContext& context, const fl::FlightDescriptor& request) const {
  if (request.type != fl::FlightDescriptor::CMD) {
    return arrow::Status::Invalid(
        "descriptor must be a command (FlightDescriptor.for_command) holding SQL");
  }
  ARROW_ASSIGN_OR_RAISE(auto sql, SqlFromCommand(request.cmd));
  if (auto stream = Header(context, "amp-stream")) {
    if (*stream == "true" || *stream == "1") {
      return arrow::Status::NotImplemented("streaming queries are not available yet");
    }
  }
  return sql;
}

arrow::Status FlightService::GetFlightInfo(const fl::ServerCallContext& context,
                                           const fl::FlightDescriptor& request,
                                           std::unique_ptr<fl::FlightInfo>* info) {
  ARROW_ASSIGN_OR_RAISE(auto sql, QueryFromDescriptor(context, request));
  ARROW_ASSIGN_OR_RAISE(auto session, engine_->OpenSession());
  ARROW_ASSIGN_OR_RAISE(auto schema, session->Prepare(sql));
  if (HasDictionary(*schema)) {
    return arrow::Status::NotImplemented(
        "results with ENUM (dictionary) columns are not supported; CAST them to VARCHAR");
  }
  TicketPayload payload;
  payload.sql = sql;
  fl::FlightEndpoint endpoint;
  endpoint.ticket.ticket = signer_.Issue(std::move(payload));
  ARROW_ASSIGN_OR_RAISE(auto flight_info,
                        fl::FlightInfo::Make(*schema, request, {endpoint}, -1, -1));
  *info = std::make_unique<fl::FlightInfo>(std::move(flight_info));
  return arrow::Status::OK();
}

arrow::Status FlightService::DoGet(const fl::ServerCallContext& context, const fl::Ticket& request,
                                   std::unique_ptr<fl::FlightDataStream>* stream) {
  ARROW_ASSIGN_OR_RAISE(auto payload, signer_.Redeem(request.ticket));
  ARROW_ASSIGN_OR_RAISE(auto session, engine_->OpenSession());
  ARROW_ASSIGN_OR_RAISE(auto reader, session->Execute(payload.sql, options_.rows_per_batch));
  *stream = std::make_unique<BatchQueryStream>(std::move(session), std::move(reader));
  return arrow::Status::OK();
}

}  // namespace sluice::flight
