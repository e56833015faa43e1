#include "sql/engine.h"

#include <cctype>

#include <algorithm>
#include <array>
#include <tuple>

#include "arrow/c/bridge.h"
#include "arrow/compute/initialize.h"
#include "arrow/record_batch.h"
#include "arrow/util/byte_size.h"
#include "common/log.h"
#include "common/server_metrics.h"
#include "fmt/format.h"
#include "sql/delta_rewrite.h"
#include "sql/duckdb_reader.h"
#include "sql/evm_functions.h"
#include "sql/parse_tree.h"
#include "sql/sandbox.h"
#include "sql/table_refs.h"

namespace sluice::sql {

using json = nlohmann::json;

namespace {

std::string QuoteIdent(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string QuoteString(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// Variable names may only hold identifier characters; dataset and table names are
// checked to be such at AddDataset.
std::string VarName(const char* kind, const std::string& dataset, const std::string& table) {
  return fmt::format("sluice_{}_{}_{}", kind, dataset, table);
}

bool IsIdentifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

arrow::Status Exec(duckdb_connection conn, const std::string& sql) {
  Result res;
  if (duckdb_query(conn, sql.c_str(), res.out()) != DuckDBSuccess) {
    return ResultStatus(res.out());
  }
  return arrow::Status::OK();
}

// SET VARIABLE statements pointing one session at `files` and [lo, hi] of a table.
std::string VariablesSql(const std::string& dataset, const std::string& table,
                         const std::vector<std::filesystem::path>& files, TableRange range) {
  std::string list = "[";
  for (size_t i = 0; i < files.size(); ++i) {
    if (i) list += ",";
    list += QuoteString(files[i].string());
  }
  list += "]";
  return fmt::format(
      "SET VARIABLE {} = {}::VARCHAR[]; SET VARIABLE {} = {}::UBIGINT; "
      "SET VARIABLE {} = {}::UBIGINT;",
      VarName("files", dataset, table), list, VarName("lo", dataset, table), range.lo,
      VarName("hi", dataset, table), range.hi);
}

// A table's empty file alone: what a view lists to be bound or described
// without any segment (on a query server, segments are local only once fetched).
std::vector<std::filesystem::path> EmptyFileOnly(const storage::Snapshot& snap,
                                                 const std::string& table) {
  return snap.FilesFor(table, 1, 0);
}

// The three states of a table in a microbatch (sql/delta_rewrite.h), in this order.
constexpr std::array<RangeState, 3> kRangeStates = {RangeState::kDelta, RangeState::kHistory,
                                                   RangeState::kNew};

// The ranges of kRangeStates for Δ = `d` and H = `h`: N is their hull (they are
// adjacent), either of which may be empty (lo > hi).
std::array<TableRange, 3> StateRanges(const TableRange& d, const TableRange& h) {
  TableRange n{1, 0};
  if (d.lo <= d.hi && h.lo <= h.hi) n = {std::min(d.lo, h.lo), std::max(d.hi, h.hi)};
  else if (d.lo <= d.hi) n = d;
  else if (h.lo <= h.hi) n = h;
  return {d, h, n};
}


}  // namespace

// ---- Engine -------------------------------------------------------------------------

Engine::~Engine() = default;

arrow::Result<std::unique_ptr<Engine>> Engine::Make(const EngineOptions& options) {
  std::unique_ptr<Engine> engine(new Engine());
  Config config;
  if (duckdb_create_config(config.out()) != DuckDBSuccess) {
    return arrow::Status::UnknownError("engine: cannot create configuration");
  }
  auto set = [&](const char* key, const std::string& value) -> arrow::Status {
    if (duckdb_set_config(config.get(), key, value.c_str()) != DuckDBSuccess) {
      return arrow::Status::Invalid("engine: cannot set ", key, "=", value);
    }
    return arrow::Status::OK();
  };
  ARROW_RETURN_NOT_OK(set("autoinstall_known_extensions", "false"));
  ARROW_RETURN_NOT_OK(set("autoload_known_extensions", "false"));
  ARROW_RETURN_NOT_OK(set("allow_community_extensions", "false"));
  if (options.threads > 0) ARROW_RETURN_NOT_OK(set("threads", std::to_string(options.threads)));
  if (options.max_memory_mb > 0) {
    ARROW_RETURN_NOT_OK(set("memory_limit", std::to_string(options.max_memory_mb) + "MB"));
  }
  std::error_code ec;
  auto data_dir = std::filesystem::absolute(options.data_dir, ec);
  std::filesystem::create_directories(data_dir / ".engine_tmp", ec);
  ARROW_RETURN_NOT_OK(set("temp_directory", (data_dir / ".engine_tmp").string()));
  char* error = nullptr;
  if (duckdb_open_ext(nullptr, engine->db_.out(), config.get(), &error) != DuckDBSuccess) {
    std::string msg = error ? error : "unknown";
    duckdb_free(error);
    return arrow::Status::IOError("engine: cannot open: ", msg);
  }
  if (duckdb_connect(engine->db_.get(), engine->admin_.out()) != DuckDBSuccess) {
    return arrow::Status::IOError("engine: cannot connect");
  }
  ARROW_ASSIGN_OR_RAISE(engine->evm_,
                        EvmFunctions::Register(engine->admin_.get(), options.eth_call));
  ARROW_ASSIGN_OR_RAISE(engine->aggregates_, AggregateFunctionNames(engine->admin_.get()));
  {
    Result res;
    if (duckdb_query(engine->admin_.get(), "SELECT current_database()", res.out()) !=
        DuckDBSuccess) {
      return ResultStatus(res.out());
    }
    char* name = duckdb_value_varchar(res.out(), 0, 0);
    engine->catalog_ = name ? name : "";
    duckdb_free(name);
  }
  // The compute functions direct scans filter with (min_max, comparisons, filter).
  ARROW_RETURN_NOT_OK(arrow::compute::Initialize());
  engine->direct_scan_ = options.direct_scan;
  if (options.direct_scan && options.scan_cache_max_mb > 0) {
    ScanCacheOptions cache;
    cache.data_dir = data_dir;
    cache.dir = data_dir / ".scan_cache";
    cache.max_bytes = options.scan_cache_max_mb << 20;
    ARROW_ASSIGN_OR_RAISE(engine->scan_cache_, ScanCache::Open(std::move(cache)));
  }
  std::string dir = data_dir.string();
  if (!dir.empty() && dir.back() != '/') dir += '/';
  ARROW_RETURN_NOT_OK(Exec(engine->admin_.get(),
                           "SET allowed_directories = [" + QuoteString(dir) + "]; "
                           "SET enable_external_access = false; "
                           "SET GLOBAL TimeZone = 'UTC'; "
                           "SET parquet_metadata_cache = true; "
                           // The external file cache serializes concurrent opens of
                           // one file (every stream reads the newest segment).
                           "SET enable_external_file_cache = false; "
                           "SET enable_geoparquet_conversion = false;"));
  return engine;
}

arrow::Status Engine::AddDataset(storage::BlockStore* store) {
  std::lock_guard<std::mutex> lock(mu_);
  if (locked_) return arrow::Status::Invalid("engine: datasets must be added before serving");
  const auto& name = store->options().dataset;
  if (!IsIdentifier(name)) {
    return arrow::Status::Invalid("dataset name '", name,
                                  "' must be an identifier (letters, digits, _)");
  }
  ARROW_RETURN_NOT_OK(Exec(admin_.get(), "CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(name)));
  ARROW_RETURN_NOT_OK(Exec(admin_.get(), std::string("CREATE SCHEMA IF NOT EXISTS ") + kStreamSchema));
  auto snap = store->snapshot();
  // A view over the session's files of a table (`var` names its variables).
  auto create_view = [&](const std::string& schema, const std::string& view, const std::string& table,
                         const std::string& var) -> arrow::Status {
    // The view is bound once at creation: point the variables at the empty file.
    ARROW_RETURN_NOT_OK(
        Exec(admin_.get(), VariablesSql(name, var, EmptyFileOnly(*snap, table), {})));
    return Exec(admin_.get(),
                fmt::format("CREATE VIEW {}.{} AS SELECT * FROM read_parquet(getvariable('{}')) "
                            "WHERE block_num BETWEEN getvariable('{}') AND getvariable('{}')",
                            QuoteIdent(schema), QuoteIdent(view), VarName("files", name, var),
                            VarName("lo", name, var), VarName("hi", name, var)));
  };
  for (const auto& t : snap->tables) {
    if (!IsIdentifier(t.name)) return arrow::Status::Invalid("bad table name ", t.name);
    ARROW_RETURN_NOT_OK(create_view(name, t.name, t.name, t.name));
    // The table as a streaming microbatch reads it (sql/delta_rewrite.h).
    for (auto state : kRangeStates) {
      const std::string view = StateViewName(name, t.name, state);
      ARROW_RETURN_NOT_OK(create_view(kStreamSchema, view, t.name, view));
    }
  }
  datasets_[name] = store;
  return arrow::Status::OK();
}

arrow::Status Engine::AddDerivedTable(const std::string& name, const std::string& sql) {
  std::lock_guard<std::mutex> lock(mu_);
  if (locked_) return arrow::Status::Invalid("engine: tables must be added before serving");
  auto dot = name.find('.');
  std::string schema = dot == std::string::npos ? "" : name.substr(0, dot);
  std::string table = dot == std::string::npos ? "" : name.substr(dot + 1);
  if (!IsIdentifier(schema) || !IsIdentifier(table)) {
    return arrow::Status::Invalid("derived table name '", name,
                                  "' must be <schema>.<table> with identifiers");
  }
  if (datasets_.count(schema)) {
    return arrow::Status::Invalid("derived table ", name, ": schema ", schema,
                                  " holds extracted chain tables; use another schema");
  }
  auto tree = ParseTree(admin_.get(), sql);
  if (!tree.ok()) return tree.status().WithMessage("derived table ", name, ": ", tree.status().message());
  auto st = CheckSandbox(*tree);
  if (!st.ok()) return st.WithMessage("derived table ", name, ": ", st.message());
  ARROW_RETURN_NOT_OK(Exec(admin_.get(), "CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(schema)));
  // The view keeps the typed-decoding calls as rewritten (sql/evm_rewrite.h).
  auto rewritten = RewriteEvmCalls(evm_.get(), admin_.get(), sql, *tree);
  if (!rewritten.ok()) {
    return rewritten.status().WithMessage("derived table ", name, ": ",
                                          rewritten.status().message());
  }
  st = Exec(admin_.get(), "CREATE VIEW " + QuoteIdent(schema) + "." + QuoteIdent(table) + " AS " +
                              rewritten->sql);
  if (!st.ok()) return st.WithMessage("derived table ", name, ": ", st.message());
  derived_trees_[schema + "." + table] = std::move(*tree);
  return arrow::Status::OK();
}

arrow::Status Engine::AddEthCall(const std::string& dataset, EthCallFunction call) {
  std::lock_guard<std::mutex> lock(mu_);
  if (locked_) return arrow::Status::Invalid("engine: eth_call nodes must be added before serving");
  if (!datasets_.count(dataset)) return arrow::Status::Invalid("eth_call: unknown dataset ", dataset);
  evm_->eth_calls().AddNode(dataset, std::move(call));
  // <dataset>.eth_call(…): DuckDB looks functions up by schema, C API ones live in main.
  return Exec(admin_.get(),
              fmt::format("CREATE MACRO {}.eth_call(from_address, to_address, input, block) AS "
                          "__sluice_eth_call({}, from_address, to_address, input, block)",
                          QuoteIdent(dataset), QuoteString(dataset)));
}

arrow::Status Engine::LockDown() {
  // Caller holds mu_.
  if (locked_) return arrow::Status::OK();
  ARROW_RETURN_NOT_OK(Exec(admin_.get(), "SET lock_configuration = true"));
  locked_ = true;
  return arrow::Status::OK();
}

arrow::Result<std::vector<TableInfo>> Engine::ListTables() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (tables_) return *tables_;
  }
  std::vector<TableInfo> tables;
  for (const auto& [name, store] : datasets_) {
    for (const auto& t : store->snapshot()->tables) tables.push_back({name, t.name, "TABLE", {}});
  }
  for (const auto& [qualified, tree] : derived_trees_) {
    auto dot = qualified.find('.');
    tables.push_back({qualified.substr(0, dot), qualified.substr(dot + 1), "VIEW", {}});
  }
  ARROW_ASSIGN_OR_RAISE(auto session, OpenSession());
  for (auto& t : tables) {
    ARROW_ASSIGN_OR_RAISE(t.arrow_schema,
                          session->Prepare("SELECT * FROM " + QuoteIdent(t.schema) + "." +
                                           QuoteIdent(t.name)));
  }
  std::sort(tables.begin(), tables.end(), [](const TableInfo& a, const TableInfo& b) {
    return std::tie(a.schema, a.name) < std::tie(b.schema, b.name);
  });
  std::lock_guard<std::mutex> lock(mu_);
  tables_ = tables;
  return tables;
}

arrow::Result<std::unique_ptr<Session>> Engine::OpenSession(
    const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& pinned) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ARROW_RETURN_NOT_OK(LockDown());
  }
  std::unique_ptr<Session> session(new Session());
  session->engine_ = this;
  if (duckdb_connect(db_.get(), session->conn_.out()) != DuckDBSuccess) {
    return arrow::Status::IOError("engine: cannot open a connection");
  }
  for (const auto& [name, store] : datasets_) {
    auto it = pinned.find(name);
    if (it == pinned.end()) {
      // A query server that lost its metadata connection may hold a stale snapshot.
      ARROW_RETURN_NOT_OK(store->Available());
    }
    session->snapshots_[name] = it != pinned.end() ? it->second : store->snapshot();
  }
  return session;
}

// ---- Session ------------------------------------------------------------------------

Session::~Session() = default;

arrow::Status Session::SetTableRange(const std::string& dataset, const std::string& table,
                                     TableRange range) {
  ranges_[dataset + "." + table] = range;
  return arrow::Status::OK();
}

arrow::Status Session::SetMicrobatch(const std::string& dataset, TableRange delta,
                                     TableRange history) {
  microbatches_[dataset] = MicrobatchRange{delta, history};
  return arrow::Status::OK();
}

std::vector<Session::ViewSource> Session::ViewSources() const {
  std::vector<ViewSource> out;
  for (const auto& [name, snap] : snapshots_) {
    auto mb = microbatches_.find(name);
    for (const auto& t : snap->tables) {
      auto it = ranges_.find(name + "." + t.name);
      out.push_back({name, t.name, name, t.name, it != ranges_.end() ? it->second : TableRange{}});
      if (mb == microbatches_.end()) continue;
      const auto ranges = StateRanges(mb->second.delta, mb->second.history);
      for (size_t i = 0; i < kRangeStates.size(); ++i) {
        const std::string view = StateViewName(name, t.name, kRangeStates[i]);
        out.push_back({name, t.name, kStreamSchema, view, ranges[i]});
      }
    }
  }
  return out;
}

std::vector<Session::ViewSource> Session::ViewsRead() const {
  std::map<std::string, std::vector<std::string>> views;  // schema -> view names
  std::map<std::string, ViewSource> sources;              // "schema.view" -> source
  for (auto& v : ViewSources()) {
    views[v.schema].push_back(v.view);
    sources[v.schema + "." + v.view] = std::move(v);
  }
  std::vector<ViewSource> out;
  for (const auto& key : ChainTablesRead(checked_tree_, engine_->derived_trees_, views)) {
    out.push_back(sources.at(key));
  }
  return out;
}

arrow::Status Session::FetchSegments() {
  bool remote = false;
  for (const auto& [name, snap] : snapshots_) {
    remote |= snap->segment_store && snap->segment_store->remote();
  }
  if (!remote) return arrow::Status::OK();
  for (const ViewSource& v : ViewsRead()) {
    const std::string key = v.schema + "." + v.view;
    auto it = fetched_.find(key);
    if (it != fetched_.end() && it->second.range.lo == v.range.lo &&
        it->second.range.hi == v.range.hi) {
      continue;  // fetched for this range already
    }
    ARROW_ASSIGN_OR_RAISE(auto pin,
                          snapshots_.at(v.dataset)->Fetch(v.table, v.range.lo, v.range.hi));
    fetched_[key] = Fetched{v.range, std::move(pin)};
  }
  return arrow::Status::OK();
}

arrow::Status Session::ApplyVariables(bool empty_files_only) {
  // Only the views the query reads: a session's connection is new, and each
  // SET VARIABLE is a statement DuckDB parses and runs (most of a small query's
  // fixed cost when every view of every table was set: bench/FIXES.md).
  std::string sql;
  for (const ViewSource& v : ViewsRead()) {
    const auto& snap = snapshots_.at(v.dataset);
    std::string set = VariablesSql(v.dataset, v.schema == kStreamSchema ? v.view : v.table,
                                   empty_files_only
                                       ? EmptyFileOnly(*snap, v.table)
                                       : snap->FilesFor(v.table, v.range.lo, v.range.hi),
                                   v.range);
    std::string& applied = applied_variables_[v.schema + "." + v.view];
    if (applied == set) continue;
    sql += set;
    applied = std::move(set);
  }
  if (sql.empty()) return arrow::Status::OK();
  auto st = Exec(conn_.get(), sql);
  if (!st.ok()) applied_variables_.clear();  // unknown which took effect
  return st;
}

arrow::Result<std::shared_ptr<const CheckedQuery>> Session::Check(const std::string& sql) {
  auto query = engine_->queries_.Find(sql);
  if (sql != checked_sql_) common::ServerMetrics::Get().query_checks(query != nullptr).Increment();
  if (!query) {
    auto q = std::make_shared<CheckedQuery>();
    ARROW_ASSIGN_OR_RAISE(q->tree, ParseTree(conn_.get(), sql));
    ARROW_RETURN_NOT_OK(CheckSandbox(q->tree));
    ARROW_ASSIGN_OR_RAISE(q->engine_sql, EngineSql(sql, q->tree));
    if (q->engine_sql == sql) {
      q->engine_tree = q->tree;
    } else {
      ARROW_ASSIGN_OR_RAISE(q->engine_tree, ParseTree(conn_.get(), q->engine_sql));
    }
    engine_->queries_.Put(sql, q);
    query = std::move(q);
  }
  if (sql != checked_sql_) {
    checked_sql_ = sql;
    checked_tree_ = query->tree;
    engine_sql_ = query->engine_sql;
    engine_tree_ = query->engine_tree;
  }
  return query;
}

arrow::Result<PreparedStatement> Session::CheckedPrepare(const std::string& sql,
                                                        bool schema_only) {
  ARROW_RETURN_NOT_OK(Check(sql).status());
  // EVM decoding calls get typed results, eth_call this query's budget (sql/evm_rewrite.h).
  ARROW_ASSIGN_OR_RAISE(evm_query_, RewriteEvmCalls(engine_->evm_.get(), conn_.get(), engine_sql_,
                                                    engine_tree_));
  // DuckDB checks at prepare that every listed file exists. Segments in an object
  // store are fetched first, unless only the schema is wanted: then the views list
  // just the (local) empty files, whose schema is the table's.
  bool remote = false;
  for (const auto& [name, snap] : snapshots_) {
    remote |= snap->segment_store && snap->segment_store->remote();
  }
  if (!(schema_only && remote)) ARROW_RETURN_NOT_OK(FetchSegments());
  ARROW_RETURN_NOT_OK(ApplyVariables(schema_only && remote));
  PreparedStatement stmt;
  if (duckdb_prepare(conn_.get(), evm_query_.sql.c_str(), stmt.out()) != DuckDBSuccess) {
    const char* err = duckdb_prepare_error(stmt.get());
    return ErrorToStatus(DUCKDB_ERROR_INVALID, err ? err : "cannot prepare query");
  }
  if (duckdb_prepared_statement_type(stmt.get()) != DUCKDB_STATEMENT_TYPE_SELECT) {
    return arrow::Status::Invalid("only read-only queries (SELECT) are allowed");
  }
  return stmt;
}


arrow::Result<std::shared_ptr<arrow::Schema>> Session::Prepare(const std::string& sql,
                                                               const Parameters& params) {
  if (!params) {
    // A plain scan planned before: its schema, without DuckDB.
    ARROW_ASSIGN_OR_RAISE(auto query, Check(sql));
    if (query->scan) return query->scan->schema;
  }
  // With parameters the query starts (to learn their types): it needs the files.
  ARROW_ASSIGN_OR_RAISE(auto stmt, CheckedPrepare(sql, /*schema_only=*/!params));
  ARROW_RETURN_NOT_OK(BindParameters(stmt.get(), params));
  if (duckdb_nparams(stmt.get()) == 0) {
    if (auto planned = PlanScanOf(stmt.get())) return planned->schema;
    return PreparedSchema(conn_.get(), stmt.get());
  }
  Result result;
  ARROW_RETURN_NOT_OK(StartStreaming(stmt.get(), &result));
  return ResultSchema(conn_.get(), result.out());
}

arrow::Result<std::pair<std::shared_ptr<arrow::Schema>, std::shared_ptr<arrow::Schema>>>
Session::Describe(const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto stmt, CheckedPrepare(sql, /*schema_only=*/true));
  std::shared_ptr<arrow::Schema> result;
  auto schema = PreparedSchema(conn_.get(), stmt.get());
  if (schema.ok()) result = *schema;
  ARROW_ASSIGN_OR_RAISE(auto params, ParameterSchema(conn_.get(), stmt.get()));
  return std::make_pair(std::move(result), std::move(params));
}

arrow::Result<std::unique_ptr<ResultReader>> Session::Execute(const std::string& sql,
                                                              int64_t rows_per_batch,
                                                              const Parameters& params,
                                                              int64_t soft_batch_bytes) {
  interrupted_->store(false);
  if (!params && engine_->direct_scan_) {
    // A plain scan planned before (by GetFlightInfo's Prepare, or an earlier run):
    // read directly, without DuckDB's parse, bind and prepare.
    ARROW_ASSIGN_OR_RAISE(auto query, Check(sql));
    if (query->scan) {
      ARROW_ASSIGN_OR_RAISE(auto direct, TryDirectScan(*query->scan, rows_per_batch,
                                                       soft_batch_bytes));
      if (direct) return direct;
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto stmt, CheckedPrepare(sql));
  ARROW_RETURN_NOT_OK(BindParameters(stmt.get(), params));
  if (engine_->direct_scan_ && duckdb_nparams(stmt.get()) == 0) {
    if (auto planned = PlanScanOf(stmt.get())) {
      ARROW_ASSIGN_OR_RAISE(auto direct, TryDirectScan(*planned, rows_per_batch,
                                                       soft_batch_bytes));
      if (direct) return direct;
    }
  }
  std::unique_ptr<DuckDBReader> reader(new DuckDBReader());
  reader->rows_per_batch_ = rows_per_batch;
  reader->soft_batch_bytes_ = soft_batch_bytes;
  const bool has_params = duckdb_nparams(stmt.get()) > 0;
  if (!has_params) {
    ARROW_ASSIGN_OR_RAISE(reader->schema_, PreparedSchema(conn_.get(), stmt.get()));
  }
  ARROW_RETURN_NOT_OK(StartStreaming(stmt.get(), &reader->result_));
  if (has_params) {
    ARROW_ASSIGN_OR_RAISE(reader->schema_, ResultSchema(conn_.get(), reader->result_.out()));
  }
  *reader->arrow_options_.out() = duckdb_result_get_arrow_options(reader->result_.out());
  return std::unique_ptr<ResultReader>(std::move(reader));
}

void Session::Interrupt() {
  interrupted_->store(true);
  duckdb_interrupt(conn_.get());
}

}  // namespace sluice::sql
