// Authentication of Arrow Flight calls (docs/security.md), with the keys and
// tokens of common/auth.h.
//
// A server middleware checks the gRPC header `authorization` of every call,
// Handshake included, before the service sees it:
//   - `Bearer <API key or token>`: accepted on any call;
//   - `Basic base64(<user>:<API key>)`: the user is ignored (pyarrow's
//     FlightClient.authenticate_basic_token sends an empty one); accepted too;
//   - on a Handshake with valid credentials, the answer's headers carry
//     `authorization: Bearer <token>`, a token valid for auth_token_ttl_secs,
//     which pyarrow returns as the header pair to send on later calls;
//   - anything else (no header, another scheme, an unknown key, an expired or
//     altered token): UNAUTHENTICATED with common::kUnauthenticatedMessage, the
//     same whatever was wrong. The refusal is logged at debug level with the
//     peer's address and method, never with the credential, and counted in
//     sluice_auth_failures_total{endpoint="flight"}.
//
// Without keys (Authenticator::enabled() false) nothing is checked, and a
// Handshake of any kind (Basic, bearer, or none at all) succeeds with
// `authorization: Bearer sluice-auth-off` (kAuthOffToken), which later calls may
// send: clients that always handshake (spicepy's Client(api_key), the Flight SQL
// JDBC driver with a user and password) connect to an open server unchanged.
#pragma once

#include <memory>
#include <string_view>

#include "arrow/flight/server.h"
#include "arrow/flight/server_middleware.h"
#include "common/auth.h"

namespace sluice::flight {

/// \brief The middleware factory to install under kAuthMiddlewareKey.
class AuthMiddlewareFactory : public arrow::flight::ServerMiddlewareFactory {
 public:
  explicit AuthMiddlewareFactory(std::shared_ptr<const common::Authenticator> auth)
      : auth_(std::move(auth)) {}

  arrow::Status StartCall(const arrow::flight::CallInfo& info,
                          const arrow::flight::ServerCallContext& context,
                          std::shared_ptr<arrow::flight::ServerMiddleware>* middleware) override;

 private:
  std::shared_ptr<const common::Authenticator> auth_;
};

/// \brief The key of the middleware in FlightServerOptions::middleware.
inline constexpr const char* kAuthMiddlewareKey = "sluice-auth";

/// \brief The bearer token a Handshake answers when authentication is off.
inline constexpr std::string_view kAuthOffToken = "sluice-auth-off";

/// \brief Install authentication in `options`: the middleware, and a no-op auth
/// handler so that the Handshake is served (the middleware does the checking and
/// answers the token), whether or not `auth` has keys.
void InstallAuth(std::shared_ptr<const common::Authenticator> auth,
                 arrow::flight::FlightServerOptions* options);

}  // namespace sluice::flight
