#include "flight/limits.h"

#include "arrow/flight/types.h"
#include "sql/engine.h"

namespace fl = arrow::flight;

namespace sluice::flight {

arrow::Status ToFlightStatus(arrow::Status status) {
  auto kind = common::LimitOf(status);
  if (!kind) return status;
  if (*kind == common::LimitKind::kDeadlineExceeded) {
    return fl::MakeFlightError(fl::FlightStatusCode::TimedOut, status.message());
  }
  if (*kind == common::LimitKind::kUnavailable) {
    return fl::MakeFlightError(fl::FlightStatusCode::Unavailable, status.message());
  }
  // Arrow Flight's gRPC transport has no RESOURCE_EXHAUSTED: UNAVAILABLE, the
  // retryable code, named in the message; Arrow clients also get the
  // CapacityError code (x-arrow-status).
  return arrow::Status(arrow::StatusCode::CapacityError,
                       "RESOURCE_EXHAUSTED: " + status.message(),
                       std::make_shared<fl::FlightStatusDetail>(fl::FlightStatusCode::Unavailable));
}

arrow::Result<QueryAdmission> Admit(common::Limits* limits, bool streaming) {
  QueryAdmission admission;
  if (limits == nullptr) return admission;
  auto slot = streaming ? limits->AdmitStream() : limits->AdmitQuery();
  if (!slot.ok()) return ToFlightStatus(slot.status());
  admission.slot = std::move(*slot);
  return admission;
}

void WatchBatchQuery(common::Limits* limits, const fl::ServerCallContext& context,
                     sql::Session* session, QueryAdmission* admission) {
  if (limits == nullptr) return;
  admission->watch = limits->WatchQuery([&context] { return context.is_cancelled(); },
                                        [session] { session->Interrupt(); });
}

QueryStream::QueryStream(std::unique_ptr<fl::FlightDataStream> inner, QueryAdmission admission)
    : slot_(std::move(admission.slot)),
      inner_(std::move(inner)),
      watch_(std::move(admission.watch)) {}

QueryStream::~QueryStream() {
  watch_.reset();
  inner_.reset();
  slot_.Release();
}

arrow::Result<fl::FlightPayload> QueryStream::GetSchemaPayload() {
  auto payload = inner_->GetSchemaPayload();
  if (!payload.ok()) return ToFlightStatus(payload.status());
  return payload;
}

arrow::Result<fl::FlightPayload> QueryStream::Next() {
  if (watch_ && watch_->timed_out()) return ToFlightStatus(watch_->Explain(arrow::Status::OK()));
  auto payload = inner_->Next();
  if (!payload.ok()) {
    auto st = watch_ ? watch_->Explain(payload.status()) : payload.status();
    return ToFlightStatus(std::move(st));
  }
  return payload;
}

}  // namespace sluice::flight
