#include "flight/auth.h"

#include "arrow/flight/server_auth.h"
#include "arrow/flight/types.h"
#include "common/log.h"

namespace fl = arrow::flight;

namespace sluice::flight {

namespace {

// Answers a Handshake with the token in the `authorization` header.
class TokenMiddleware : public fl::ServerMiddleware {
 public:
  explicit TokenMiddleware(std::string token) : token_(std::move(token)) {}
  std::string name() const override { return "TokenMiddleware"; }
  void SendingHeaders(fl::AddCallHeaders* outgoing_headers) override {
    outgoing_headers->AddHeader("authorization", "Bearer " + token_);
  }
  void CallCompleted(const arrow::Status&) override {}

 private:
  std::string token_;
};

}  // namespace

arrow::Status AuthMiddlewareFactory::StartCall(const fl::CallInfo& info,
                                               const fl::ServerCallContext& context,
                                               std::shared_ptr<fl::ServerMiddleware>* middleware) {
  if (!auth_->enabled()) {
    // Nothing to check; a Handshake (Basic, bearer or empty) is still answered
    // with a bearer token, which later calls may send and which is ignored.
    if (info.method == fl::FlightMethod::Handshake) {
      *middleware = std::make_shared<TokenMiddleware>(std::string(kAuthOffToken));
    }
    return arrow::Status::OK();
  }
  std::optional<common::KeyId> id;
  const auto& headers = context.incoming_headers();
  // gRPC lower-cases header names. One valid `authorization` header suffices.
  auto range = headers.equal_range("authorization");
  for (auto it = range.first; it != range.second && !id; ++it) {
    if (auto credential = common::Authenticator::CredentialOf(it->second)) {
      id = auth_->Verify(*credential);
    }
  }
  if (!id) {
    common::CountAuthFailure("flight");
    LOG_DEBUG("flight: refused unauthenticated {} from {}", fl::ToString(info.method),
              context.peer());
    return fl::MakeFlightError(fl::FlightStatusCode::Unauthenticated,
                               common::kUnauthenticatedMessage);
  }
  if (info.method == fl::FlightMethod::Handshake) {
    *middleware = std::make_shared<TokenMiddleware>(auth_->IssueToken(*id));
  }
  return arrow::Status::OK();
}

void InstallAuth(std::shared_ptr<const common::Authenticator> auth,
                 fl::FlightServerOptions* options) {
  if (!auth) return;
  options->auth_handler = std::make_shared<fl::NoOpAuthHandler>();
  options->middleware.emplace_back(kAuthMiddlewareKey,
                                   std::make_shared<AuthMiddlewareFactory>(std::move(auth)));
}

}  // namespace sluice::flight
