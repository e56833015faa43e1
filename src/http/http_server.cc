#include "http/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "common/limits.h"
#include "common/log.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace sluice::http {

arrow::Result<std::unique_ptr<HttpServer>> HttpServer::Bind(std::string name,
                                                           const ListenOptions& options) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->name_ = std::move(name);
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return arrow::Status::Invalid(s->name_, ": TLS needs both a certificate and a key file");
  }
  if (!options.tls_cert_file.empty()) {
    // cpp-httplib as Debian builds it (CPPHTTPLIB_OPENSSL_SUPPORT): OpenSSL.
    auto tls = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                    options.tls_key_file.c_str());
    if (!tls->is_valid()) {
      return arrow::Status::IOError(s->name_, ": cannot load the TLS certificate ",
                                    options.tls_cert_file, " and key ", options.tls_key_file,
                                    " (PEM files that match)");
    }
    s->server_ = std::move(tls);
    s->tls_ = true;
  } else {
    s->server_ = std::make_unique<httplib::Server>();
  }
  auto& svr = *s->server_;
  if (options.auth && options.auth->enabled()) {
    s->auth_ = options.auth;
    // Checked before routing: a refused request reaches no handler.
    svr.set_pre_routing_handler(
        [self = s.get(), open = options.open_paths](const httplib::Request& req,
                                                    httplib::Response& res) {
          for (const auto& p : open) {
            const bool prefix = !p.empty() && p.back() == '/';
            if (prefix ? req.path.rfind(p, 0) == 0 : req.path == p) {
              return httplib::Server::HandlerResponse::Unhandled;
            }
          }
          if (self->Authenticated(req)) return httplib::Server::HandlerResponse::Unhandled;
          common::CountAuthFailure(self->name_);
          LOG_DEBUG("{}: refused unauthenticated {} {} from {}", self->name_, req.method,
                    req.path, req.remote_addr);
          res.set_header("WWW-Authenticate", "Bearer");
          SetError(&res, 401, "UNAUTHENTICATED", common::kUnauthenticatedMessage);
          return httplib::Server::HandlerResponse::Handled;
        });
  }
  const int threads = std::max(1, options.threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a
  // second server share the port silently instead of failing to bind.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  svr.set_write_timeout(options.write_timeout_secs, 0);
  svr.set_tcp_nodelay(true);
  svr.set_payload_max_length(16 << 20);
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                               std::exception_ptr ep) {
    std::string what = "unexpected error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    SetError(&res, 500, "INTERNAL", what);
  });
  if (options.port == 0) {
    s->port_ = svr.bind_to_any_port(options.host);
    if (s->port_ < 0) {
      return arrow::Status::IOError(s->name_, ": cannot listen on ", options.host, ":0");
    }
  } else {
    if (!svr.bind_to_port(options.host, options.port)) {
      return arrow::Status::IOError(s->name_, ": cannot listen on ", options.host, ":",
                                    options.port, " (address in use or unknown host)");
    }
    s->port_ = options.port;
  }
  return s;
}

HttpServer::~HttpServer() { Stop(); }

bool HttpServer::Authenticated(const httplib::Request& req) const {
  if (!auth_) return true;
  auto range = req.headers.equal_range("Authorization");  // case-insensitive
  for (auto it = range.first; it != range.second; ++it) {
    auto credential = common::Authenticator::CredentialOf(it->second);
    if (credential && auth_->Verify(*credential)) return true;
  }
  range = req.headers.equal_range("X-API-Key");
  for (auto it = range.first; it != range.second; ++it) {
    if (auth_->Verify(it->second)) return true;
  }
  return false;
}

void HttpServer::Start() {
  thread_ = std::thread([this] {
    if (!server_->listen_after_bind()) LOG_ERROR("{}: the HTTP server stopped on an error", name_);
    exited_ = true;
  });
  // httplib's stop() is a no-op until the server runs: wait for it, so that a
  // Stop right after Start is not lost.
  while (!server_->is_running() && !exited_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::pair<int, std::string> HttpStatusOf(const arrow::Status& status) {
  if (auto limit = common::LimitOf(status)) {
    if (*limit == common::LimitKind::kDeadlineExceeded) return {504, "DEADLINE_EXCEEDED"};
    if (*limit == common::LimitKind::kUnavailable) return {503, "UNAVAILABLE"};
    return {429, "RESOURCE_EXHAUSTED"};
  }
  if (status.IsInvalid() || status.IsTypeError() || status.IsKeyError() ||
      status.IsIndexError()) {
    return {400, "INVALID_ARGUMENT"};
  }
  if (status.IsNotImplemented()) return {501, "UNIMPLEMENTED"};
  if (status.IsOutOfMemory() || status.IsCapacityError()) return {503, "RESOURCE_EXHAUSTED"};
  if (status.IsCancelled()) return {503, "CANCELLED"};
  return {500, "INTERNAL"};
}

std::string ErrorJson(const std::string& code, const std::string& message) {
  nlohmann::json j = {{"error_code", code}, {"error_message", message}};
  // Invalid UTF-8 in a message (DuckDB may quote raw input) is replaced, never thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void SetError(httplib::Response* response, int http_status, const std::string& code,
              const std::string& message) {
  response->status = http_status;
  response->set_content(ErrorJson(code, message), "application/json");
}

}  // namespace sluice::http
