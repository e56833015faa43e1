// Checked queries remembered by the engine: the same SQL text (GetFlightInfo and
// then DoGet of one query; a dashboard that repeats its queries) is parsed and
// checked by the sandbox once, and a plain scan (sql/scan.h) is planned once, so
// that its DoGet runs no DuckDB statement at all (bench/FIXES.md: a small query's
// fixed cost).
//
// What is remembered depends only on the SQL text and on what is fixed once the
// engine serves (the catalog, the tables and their columns, the derived tables),
// never on a session's snapshot or ranges.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "nlohmann/json.hpp"
#include "sql/scan.h"

namespace sluice::sql {

/// \brief A query that passed the sandbox, and what was derived from it.
struct CheckedQuery {
  nlohmann::json tree;         ///< its parse tree (DuckDB's json_serialize_sql)
  std::string engine_sql;      ///< the SQL DuckDB runs (Session::EngineSql)
  nlohmann::json engine_tree;  ///< the parse tree of engine_sql
  /// A plain scan that a direct scan answers, with the schema DuckDB plans for it;
  /// nullopt when DuckDB answers the query or it was not planned yet.
  std::optional<PlannedScan> scan;
};

/// \brief The last `capacity` checked queries, by SQL text (least recently used
/// forgotten first). Thread-safe. SQL longer than kMaxSqlBytes is not remembered.
class QueryCache {
 public:
  static constexpr size_t kMaxSqlBytes = 64 * 1024;

  explicit QueryCache(size_t capacity = 256) : capacity_(capacity) {}

  /// \brief The query remembered for `sql`, or null.
  std::shared_ptr<const CheckedQuery> Find(const std::string& sql);

  /// \brief Remember `query` for `sql` (replacing what was remembered).
  void Put(const std::string& sql, std::shared_ptr<const CheckedQuery> query);

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const CheckedQuery>>;
  const size_t capacity_;
  std::mutex mu_;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace sluice::sql
