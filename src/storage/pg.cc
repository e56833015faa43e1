#include "storage/pg.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>

#include "common/hex.h"

using arrow::Status;

namespace sluice::storage::pg {

// ---- Result -------------------------------------------------------------------------

Result::Result(pg_result* res) : res_(res) {}
Result::Result(Result&& o) noexcept : res_(o.res_) { o.res_ = nullptr; }
Result& Result::operator=(Result&& o) noexcept {
  if (this != &o) {
    if (res_) PQclear(res_);
    res_ = o.res_;
    o.res_ = nullptr;
  }
  return *this;
}
Result::~Result() {
  if (res_) PQclear(res_);
}
int Result::rows() const { return res_ ? PQntuples(res_) : 0; }
bool Result::IsNull(int row, int col) const { return PQgetisnull(res_, row, col) != 0; }
std::string Result::Text(int row, int col) const {
  return std::string(PQgetvalue(res_, row, col), PQgetlength(res_, row, col));
}
int64_t Result::Int(int row, int col) const {
  return IsNull(row, col) ? 0 : std::strtoll(PQgetvalue(res_, row, col), nullptr, 10);
}
std::string Result::Bytes(int row, int col) const {
  std::string text = Text(row, col);  // "\x0a1b…" (bytea_output = hex)
  if (text.rfind("\\x", 0) == 0) text = text.substr(2);
  auto bytes = common::FromHex(text);
  if (!bytes.ok()) return {};
  return std::string(bytes->begin(), bytes->end());
}

// ---- Connection ---------------------------------------------------------------------

arrow::Result<std::unique_ptr<Connection>> Connection::Open(const std::string& url,
                                                            std::chrono::seconds timeout) {
  const std::string connect_timeout = std::to_string(std::max<int64_t>(1, timeout.count()));
  // Defaults first: the URL's own settings (expanded from dbname) win.
  const char* keys[] = {"connect_timeout", "application_name", "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "dbname", nullptr};
  const char* values[] = {connect_timeout.c_str(), "sluice", "5", "2", "3", url.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Status::IOError("PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::IOError("PostgreSQL: cannot connect: ", msg);
  }
  // Notices ("relation … already exists, skipping") are not errors: not printed.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  std::unique_ptr<Connection> c(new Connection(conn));
  return c;
}

Connection::~Connection() { PQfinish(conn_); }

Status Connection::Error(const char* what) const {
  std::string msg = PQerrorMessage(conn_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Status::IOError("PostgreSQL: connection lost: ", msg);
  }
  return Status::Invalid("PostgreSQL: ", what, ": ", msg);
}

arrow::Result<Result> Connection::Exec(const std::string& sql, const std::vector<Param>& params) {
  std::vector<const char*> values(params.size());
  for (size_t i = 0; i < params.size(); ++i) values[i] = params[i] ? params[i]->c_str() : nullptr;
  pg_result* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                values.data(), nullptr, nullptr, /*resultFormat=*/0);
  Result owned(res);
  const auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    if (PQstatus(conn_) != CONNECTION_OK || res == nullptr) return Error("statement failed");
    std::string msg = PQresultErrorMessage(res);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::Invalid("PostgreSQL: ", msg);
  }
  return owned;
}

Status Connection::ExecScript(const std::string& sql) {
  // PQexec runs every statement and returns the last one's result, or the error
  // that stopped the script.
  pg_result* res = PQexec(conn_, sql.c_str());
  Result owned(res);
  const auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    if (PQstatus(conn_) != CONNECTION_OK || res == nullptr) return Error("script failed");
    std::string msg = PQresultErrorMessage(res);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::Invalid("PostgreSQL: ", msg);
  }
  return Status::OK();
}

bool Connection::ok() const { return PQstatus(conn_) == CONNECTION_OK; }

int Connection::socket() const { return PQsocket(conn_); }

arrow::Result<std::vector<std::pair<std::string, std::string>>> Connection::Notifications() {
  if (PQconsumeInput(conn_) == 0) return Error("reading notifications");
  std::vector<std::pair<std::string, std::string>> out;
  while (PGnotify* n = PQnotifies(conn_)) {
    out.emplace_back(n->relname, n->extra ? n->extra : "");
    PQfreemem(n);
  }
  if (PQstatus(conn_) != CONNECTION_OK) return Error("reading notifications");
  return out;
}

void Connection::Cancel() {
  PGcancel* cancel = PQgetCancel(conn_);
  if (cancel == nullptr) return;
  char err[256];
  PQcancel(cancel, err, sizeof(err));
  PQfreeCancel(cancel);
}

// ---- literals -----------------------------------------------------------------------

std::string ArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += items[i];
  }
  return out + "}";
}

std::string QuotedArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace sluice::storage::pg
