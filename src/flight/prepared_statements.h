// Flight SQL prepared statements (docs/protocol.md, "Flight SQL"): CreatePreparedStatement keeps a
// query under a random handle, DoPut binds one row of parameters to it, and
// GetFlightInfo(CommandPreparedStatementQuery) turns it into a ticket that carries
// the query and its parameters (so DoGet needs no state). Handles live in this
// process until closed, idle for `idle_ttl`, or evicted beyond `max_statements`
// (least recently used first).
#pragma once

#include <chrono>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "arrow/result.h"
#include "sql/parameters.h"

namespace sluice::flight {

/// \brief A prepared statement: its SQL as sent, and its bound parameters.
struct PreparedQuery {
  std::string sql;
  sql::Parameters params;  ///< null until DoPut binds some
};

/// \brief Prepared statements by handle. Thread-safe.
class PreparedStatements {
 public:
  explicit PreparedStatements(size_t max_statements = 4096,
                              std::chrono::seconds idle_ttl = std::chrono::hours(1))
      : max_(max_statements), idle_ttl_(idle_ttl) {}

  /// \brief Keep `sql`; returns its new handle (32 hex characters).
  std::string Add(std::string sql);
  /// \brief The statement of `handle`. KeyError "unknown prepared statement" for a
  /// handle never issued here, closed, or expired.
  arrow::Result<PreparedQuery> Get(const std::string& handle);
  /// \brief Bind `params` to `handle` (replacing earlier ones); errors as Get.
  arrow::Status Bind(const std::string& handle, sql::Parameters params);
  /// \brief Forget `handle`; closing an unknown handle is not an error.
  void Remove(const std::string& handle);
  /// \brief How many statements are open.
  size_t size() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    PreparedQuery query;
    Clock::time_point used;
    std::list<std::string>::iterator lru;
  };
  void ExpireLocked(Clock::time_point now);
  Entry* FindLocked(const std::string& handle);

  size_t max_;
  std::chrono::seconds idle_ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // front: most recently used
};

/// \brief Parameters as an Arrow IPC stream (schema + one batch), for tickets.
arrow::Result<std::string> SerializeParameters(const sql::Parameters& params);
/// \brief The inverse of SerializeParameters; empty bytes give null.
arrow::Result<sql::Parameters> DeserializeParameters(const std::string& bytes);

}  // namespace sluice::flight
