// Flight SQL prepared statements with bound parameters (QueryOptions::parameters).
// Internal to the client library.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "arrow/flight/client.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "arrow/scalar.h"

namespace sluice::client {

/// \brief The parameters as a record batch of one row; column i (named "$i+1")
/// holds parameter i. Invalid for a null pointer among them.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> ParameterBatch(
    const std::vector<std::shared_ptr<arrow::Scalar>>& parameters);

/// \brief A statement prepared on the server (action CreatePreparedStatement),
/// closed on the server (action ClosePreparedStatement) when destroyed.
class PreparedStatement {
 public:
  /// \brief Prepare `sql`. NotImplemented when this build has no Flight SQL
  /// encoders; the server's error otherwise.
  static arrow::Result<std::unique_ptr<PreparedStatement>> Make(
      arrow::flight::FlightClient* flight, const arrow::flight::FlightCallOptions& call,
      const std::string& sql);
  ~PreparedStatement();

  /// \brief Send the parameters (DoPut of a one-row record batch).
  arrow::Status Bind(const arrow::flight::FlightCallOptions& call,
                     const std::shared_ptr<arrow::RecordBatch>& parameters);

  /// \brief The descriptor GetFlightInfo takes to run the bound statement.
  const arrow::flight::FlightDescriptor& descriptor() const { return descriptor_; }

 private:
  PreparedStatement() = default;
  arrow::flight::FlightClient* flight_ = nullptr;
  arrow::flight::FlightCallOptions call_;
  std::string handle_;
  arrow::flight::FlightDescriptor descriptor_;
};

}  // namespace sluice::client
