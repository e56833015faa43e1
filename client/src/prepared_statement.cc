#include "prepared_statement_internal.h"

#include "arrow/array/util.h"
#include "arrow/buffer.h"

#ifdef SLUICE_CLIENT_HAVE_WIRE
#include "wire/flight_sql.h"
#endif

namespace fl = arrow::flight;

namespace sluice::client {

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ParameterBatch(
    const std::vector<std::shared_ptr<arrow::Scalar>>& parameters) {
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (!parameters[i]) {
      return arrow::Status::Invalid("parameter ", i + 1,
                                    " is a null pointer (for SQL NULL use arrow::MakeNullScalar)");
    }
    ARROW_ASSIGN_OR_RAISE(auto column, arrow::MakeArrayFromScalar(*parameters[i], 1));
    fields.push_back(arrow::field(std::to_string(i + 1), parameters[i]->type));
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(arrow::schema(std::move(fields)), 1, std::move(columns));
}

#ifdef SLUICE_CLIENT_HAVE_WIRE

namespace {

fl::FlightDescriptor StatementDescriptor(const std::string& handle) {
  return fl::FlightDescriptor::Command(
      wire::EncodeCommand(wire::CommandPreparedStatementQuery{handle}));
}

}  // namespace

arrow::Result<std::unique_ptr<PreparedStatement>> PreparedStatement::Make(
    fl::FlightClient* flight, const fl::FlightCallOptions& call, const std::string& sql) {
  fl::Action action{std::string(wire::kCreatePreparedStatement),
                    arrow::Buffer::FromString(
                        wire::Encode(wire::ActionCreatePreparedStatementRequest{sql}))};
  ARROW_ASSIGN_OR_RAISE(auto results, flight->DoAction(call, action));
  ARROW_ASSIGN_OR_RAISE(auto result, results->Next());
  if (!result || !result->body) {
    return arrow::Status::IOError("CreatePreparedStatement answered nothing");
  }
  ARROW_ASSIGN_OR_RAISE(auto created,
                        wire::DecodeCreatePreparedStatementResult(result->body->ToString()));
  ARROW_RETURN_NOT_OK(results->Drain());
  std::unique_ptr<PreparedStatement> statement(new PreparedStatement());
  statement->flight_ = flight;
  statement->call_ = call;
  statement->handle_ = std::move(created.prepared_statement_handle);
  statement->descriptor_ = StatementDescriptor(statement->handle_);
  return statement;
}

PreparedStatement::~PreparedStatement() {
  // The ticket holds the query and its parameters: the statement is not needed
  // once GetFlightInfo answered. An error here only leaves it to the server's
  // expiry of idle statements.
  fl::Action action{std::string(wire::kClosePreparedStatement),
                    arrow::Buffer::FromString(
                        wire::Encode(wire::ActionClosePreparedStatementRequest{handle_}))};
  auto results = flight_->DoAction(call_, action);
  if (results.ok()) (void)(*results)->Drain();
}

arrow::Status PreparedStatement::Bind(const fl::FlightCallOptions& call,
                                      const std::shared_ptr<arrow::RecordBatch>& parameters) {
  if (parameters->num_rows() != 1) {
    return arrow::Status::Invalid("parameters must be one row, not ", parameters->num_rows());
  }
  ARROW_ASSIGN_OR_RAISE(auto put, flight_->DoPut(call, descriptor_, parameters->schema()));
  ARROW_RETURN_NOT_OK(put.writer->WriteRecordBatch(*parameters));
  ARROW_RETURN_NOT_OK(put.writer->DoneWriting());
  std::shared_ptr<arrow::Buffer> answer;
  ARROW_RETURN_NOT_OK(put.reader->ReadMetadata(&answer));
  ARROW_RETURN_NOT_OK(put.writer->Close());
  if (answer && answer->size() > 0) {
    ARROW_ASSIGN_OR_RAISE(auto result, wire::DecodeDoPutPreparedStatementResult(answer->ToString()));
    if (result.prepared_statement_handle && !result.prepared_statement_handle->empty()) {
      handle_ = *result.prepared_statement_handle;
      descriptor_ = StatementDescriptor(handle_);
    }
  }
  return arrow::Status::OK();
}

#else  // no Flight SQL encoders in this build

arrow::Result<std::unique_ptr<PreparedStatement>> PreparedStatement::Make(
    fl::FlightClient*, const fl::FlightCallOptions&, const std::string&) {
  return arrow::Status::NotImplemented(
      "query parameters need Flight SQL prepared statements, not in this build of the client");
}

PreparedStatement::~PreparedStatement() = default;

arrow::Status PreparedStatement::Bind(const fl::FlightCallOptions&,
                                      const std::shared_ptr<arrow::RecordBatch>&) {
  return arrow::Status::NotImplemented("query parameters");
}

#endif

}  // namespace sluice::client
