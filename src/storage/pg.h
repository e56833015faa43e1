// A thin C++ face of libpq (Debian's libpq-dev): a connection, parameterized
// statements in text format, results, and errors as arrow::Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"

struct pg_conn;
struct pg_result;

namespace sluice::storage::pg {

/// \brief A statement's result (owned PGresult). Values are text.
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* res);
  Result(Result&&) noexcept;
  Result& operator=(Result&&) noexcept;
  ~Result();
  int rows() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  /// A bytea column (hex output format) as bytes.
  std::string Bytes(int row, int col) const;

 private:
  pg_result* res_ = nullptr;
};

/// \brief A text parameter, or SQL NULL.
using Param = std::optional<std::string>;

/// \brief One connection. Not thread-safe: one user at a time.
class Connection {
 public:
  /// \brief Connect to `url` (a libpq connection URI or key=value string) within
  /// `timeout`. IOError "PostgreSQL: …" when unreachable or refused.
  static arrow::Result<std::unique_ptr<Connection>> Open(const std::string& url,
                                                         std::chrono::seconds timeout);
  ~Connection();
  /// \brief Run one statement with `$1…` parameters. IOError when the connection
  /// is lost, Invalid for an SQL error (both "PostgreSQL: …").
  arrow::Result<Result> Exec(const std::string& sql, const std::vector<Param>& params = {});
  /// \brief Run statements without parameters (several, separated by `;`).
  arrow::Status ExecScript(const std::string& sql);
  /// \brief Whether the connection is still up as far as libpq knows.
  bool ok() const;
  /// \brief The socket, for waiting on notifications.
  int socket() const;
  /// \brief Read what arrived on the socket and return the notifications'
  /// (channel, payload) pairs. IOError when the connection is lost.
  arrow::Result<std::vector<std::pair<std::string, std::string>>> Notifications();
  /// \brief Ask the server to cancel the statement running on this connection
  /// (from another thread).
  void Cancel();

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  arrow::Status Error(const char* what) const;
  pg_conn* conn_;
};

/// \brief ROLLBACK on scope exit unless Done() (after a successful COMMIT).
class Transaction {
 public:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  ~Transaction() {
    if (!done_ && conn_->ok()) (void)conn_->Exec("ROLLBACK");
  }
  void Done() { done_ = true; }

 private:
  Connection* conn_;
  bool done_ = false;
};

/// \brief `{a,b,c}`: a PostgreSQL array literal of plain tokens (numbers, hex).
std::string ArrayLiteral(const std::vector<std::string>& items);

/// \brief A text array literal with each item quoted (any text).
std::string QuotedArrayLiteral(const std::vector<std::string>& items);

}  // namespace sluice::storage::pg
