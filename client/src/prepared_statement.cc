#include "prepared_statement_internal.h"

#include "arrow/array/util.h"

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
    fields.push_back(arrow::field("$" + std::to_string(i + 1), parameters[i]->type));
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(arrow::schema(std::move(fields)), 1, std::move(columns));
}

arrow::Result<std::unique_ptr<PreparedStatement>> PreparedStatement::Make(
    arrow::flight::FlightClient*, const arrow::flight::FlightCallOptions&, const std::string&) {
  return arrow::Status::NotImplemented(
      "query parameters need Flight SQL prepared statements, not in this build of the client");
}

PreparedStatement::~PreparedStatement() = default;

arrow::Status PreparedStatement::Bind(const arrow::flight::FlightCallOptions&,
                                      const std::shared_ptr<arrow::RecordBatch>&) {
  return arrow::Status::NotImplemented("query parameters");
}

}  // namespace sluice::client
