#include "sql/engine.h"

#include <algorithm>
#include <tuple>

#include "arrow/c/bridge.h"
#include "arrow/compute/initialize.h"
#include "arrow/record_batch.h"
#include "arrow/util/byte_size.h"
#include "common/log.h"
#include "fmt/format.h"
#include "sql/evm_functions.h"
#include "sql/sandbox.h"
#include "sql/table_refs.h"

namespace sluice::sql {

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

// The DuckDB answer of a query (see ResultReader).
class DuckDBReader : public ResultReader {
 public:
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override;

  std::shared_ptr<arrow::Schema> schema_;
  Result result_;
  ArrowOptions arrow_options_;
  int64_t rows_per_batch_ = 65536;
  int64_t soft_batch_bytes_ = kDefaultBatchBytes;  // <= 0: rows (and kMaxBatchBytes) only
  std::shared_ptr<arrow::RecordBatch> carry_;  // rows fetched past the last batch
  bool done_ = false;
};

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
  ARROW_RETURN_NOT_OK(RegisterEvmFunctions(engine->admin_.get()));
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
  auto snap = store->snapshot();
  for (const auto& t : snap->tables) {
    if (!IsIdentifier(t.name)) return arrow::Status::Invalid("bad table name ", t.name);
    // The view is bound once at creation: point the variables at the empty file.
    ARROW_RETURN_NOT_OK(
        Exec(admin_.get(), VariablesSql(name, t.name, snap->FilesFor(t.name, UINT64_MAX, 0), {})));
    ARROW_RETURN_NOT_OK(Exec(
        admin_.get(),
        fmt::format("CREATE VIEW {}.{} AS SELECT * FROM read_parquet(getvariable('{}')) "
                    "WHERE block_num BETWEEN getvariable('{}') AND getvariable('{}')",
                    QuoteIdent(name), QuoteIdent(t.name), VarName("files", name, t.name),
                    VarName("lo", name, t.name), VarName("hi", name, t.name))));
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
  auto st = CheckTableFunctions(*tree);
  if (!st.ok()) return st.WithMessage("derived table ", name, ": ", st.message());
  ARROW_RETURN_NOT_OK(Exec(admin_.get(), "CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(schema)));
  st = Exec(admin_.get(), "CREATE VIEW " + QuoteIdent(schema) + "." + QuoteIdent(table) + " AS " + sql);
  if (!st.ok()) return st.WithMessage("derived table ", name, ": ", st.message());
  derived_trees_[schema + "." + table] = std::move(*tree);
  return arrow::Status::OK();
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
  fetched_.erase(dataset + "." + table);
  variables_dirty_ = true;
  return arrow::Status::OK();
}

arrow::Status Session::FetchSegments() {
  bool remote = false;
  std::map<std::string, std::vector<std::string>> tables;
  for (const auto& [name, snap] : snapshots_) {
    remote |= snap->segment_store && snap->segment_store->remote();
    for (const auto& t : snap->tables) tables[name].push_back(t.name);
  }
  if (!remote) return arrow::Status::OK();
  for (const auto& key : ChainTablesRead(checked_tree_, engine_->derived_trees_, tables)) {
    if (fetched_.count(key)) continue;
    const auto dot = key.find('.');
    TableRange range;
    auto it = ranges_.find(key);
    if (it != ranges_.end()) range = it->second;
    ARROW_ASSIGN_OR_RAISE(fetched_[key], snapshots_.at(key.substr(0, dot))
                                             ->Fetch(key.substr(dot + 1), range.lo, range.hi));
  }
  return arrow::Status::OK();
}

arrow::Status Session::ApplyVariables(bool empty_files_only) {
  if (!variables_dirty_ && empty_files_only == empty_files_only_) return arrow::Status::OK();
  std::string sql;
  for (const auto& [name, snap] : snapshots_) {
    for (const auto& t : snap->tables) {
      TableRange range;
      auto it = ranges_.find(name + "." + t.name);
      if (it != ranges_.end()) range = it->second;
      const auto files = empty_files_only ? snap->FilesFor(t.name, UINT64_MAX, 0)
                                          : snap->FilesFor(t.name, range.lo, range.hi);
      sql += VariablesSql(name, t.name, files, range);
    }
  }
  ARROW_RETURN_NOT_OK(Exec(conn_.get(), sql));
  variables_dirty_ = false;
  empty_files_only_ = empty_files_only;
  return arrow::Status::OK();
}

arrow::Result<IncrementalInfo> Session::CheckStreaming(const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto tree, ParseTree(conn_.get(), sql));
  ARROW_RETURN_NOT_OK(CheckTableFunctions(tree));
  checked_sql_ = sql;  // the sandbox passed: Prepare/Execute need not parse it again
  checked_tree_ = tree;
  IncrementalContext ctx;
  ctx.is_aggregate = [this](const std::string& name) { return engine_->IsAggregate(name); };
  ctx.view_tree = [this](const std::string& schema,
                         const std::string& name) -> std::optional<nlohmann::json> {
    auto it = engine_->derived_trees_.find(schema + "." + name);
    if (it == engine_->derived_trees_.end()) return std::nullopt;
    return it->second;
  };
  IncrementalInfo info;
  ARROW_RETURN_NOT_OK(CheckIncremental(tree, ctx, &info));
  return info;
}

arrow::Result<PreparedStatement> Session::CheckedPrepare(const std::string& sql,
                                                        bool schema_only) {
  if (sql != checked_sql_) {
    ARROW_ASSIGN_OR_RAISE(auto tree, ParseTree(conn_.get(), sql));
    ARROW_RETURN_NOT_OK(CheckTableFunctions(tree));
    checked_sql_ = sql;
    checked_tree_ = std::move(tree);
  }
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
  if (duckdb_prepare(conn_.get(), sql.c_str(), stmt.out()) != DuckDBSuccess) {
    const char* err = duckdb_prepare_error(stmt.get());
    return ErrorToStatus(DUCKDB_ERROR_INVALID, err ? err : "cannot prepare query");
  }
  if (duckdb_prepared_statement_type(stmt.get()) != DUCKDB_STATEMENT_TYPE_SELECT) {
    return arrow::Status::Invalid("only read-only queries (SELECT) are allowed");
  }
  return stmt;
}

namespace {
// The Arrow schema of `n` DuckDB columns.
arrow::Result<std::shared_ptr<arrow::Schema>> ColumnsSchema(duckdb_connection conn,
                                                            std::vector<LogicalType> types,
                                                            std::vector<const char*> names) {
  const idx_t n = types.size();
  std::vector<duckdb_logical_type> raw(n);
  for (idx_t i = 0; i < n; ++i) raw[i] = types[i].get();
  ArrowOptions options;
  duckdb_connection_get_arrow_options(conn, options.out());
  ArrowSchema c_schema;
  ErrorData err;
  *err.out() = duckdb_to_arrow_schema(options.get(), raw.data(), names.data(), n, &c_schema);
  ARROW_RETURN_NOT_OK(ErrorDataStatus(err.get()));
  return arrow::ImportSchema(&c_schema);
}

arrow::Result<std::shared_ptr<arrow::Schema>> PreparedSchema(duckdb_connection conn,
                                                             duckdb_prepared_statement stmt) {
  idx_t n = duckdb_prepared_statement_column_count(stmt);
  std::vector<LogicalType> types(n);
  std::vector<const char*> names(n);
  // Each name is a copy the caller frees with duckdb_free.
  struct DuckFree {
    void operator()(const char* p) const { duckdb_free(const_cast<char*>(p)); }
  };
  std::vector<std::unique_ptr<const char, DuckFree>> owned_names(n);
  for (idx_t i = 0; i < n; ++i) {
    *types[i].out() = duckdb_prepared_statement_column_logical_type(stmt, i);
    owned_names[i].reset(duckdb_prepared_statement_column_name(stmt, i));
    names[i] = owned_names[i].get();
  }
  return ColumnsSchema(conn, std::move(types), names);
}

// The schema of a started query's result (placeholders' types are known by then).
arrow::Result<std::shared_ptr<arrow::Schema>> ResultSchema(duckdb_connection conn,
                                                           duckdb_result* result) {
  idx_t n = duckdb_column_count(result);
  std::vector<LogicalType> types(n);
  std::vector<const char*> names(n);
  for (idx_t i = 0; i < n; ++i) {
    *types[i].out() = duckdb_column_logical_type(result, i);
    names[i] = duckdb_column_name(result, i);
  }
  return ColumnsSchema(conn, std::move(types), names);
}

// Start a prepared query as a streaming result.
arrow::Status StartStreaming(duckdb_prepared_statement stmt, Result* result) {
  PendingResult pending;
  if (duckdb_pending_prepared_streaming(stmt, pending.out()) != DuckDBSuccess) {
    const char* err = duckdb_pending_error(pending.get());
    return ErrorToStatus(DUCKDB_ERROR_INVALID, err ? err : "cannot start query");
  }
  if (duckdb_execute_pending(pending.get(), result->out()) != DuckDBSuccess) {
    return ResultStatus(result->out());
  }
  return arrow::Status::OK();
}
}  // namespace

arrow::Result<std::shared_ptr<arrow::Schema>> Session::Prepare(const std::string& sql,
                                                               const Parameters& params) {
  // With parameters the query starts (to learn their types): it needs the files.
  ARROW_ASSIGN_OR_RAISE(auto stmt, CheckedPrepare(sql, /*schema_only=*/!params));
  ARROW_RETURN_NOT_OK(BindParameters(stmt.get(), params));
  if (duckdb_nparams(stmt.get()) == 0) return PreparedSchema(conn_.get(), stmt.get());
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
  ARROW_ASSIGN_OR_RAISE(auto stmt, CheckedPrepare(sql));
  ARROW_RETURN_NOT_OK(BindParameters(stmt.get(), params));
  if (engine_->direct_scan_ && duckdb_nparams(stmt.get()) == 0) {
    auto direct = DirectScan(stmt.get(), rows_per_batch, soft_batch_bytes);
    if (direct) return direct;
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

std::unique_ptr<ResultReader> Session::DirectScan(duckdb_prepared_statement stmt,
                                                  int64_t rows_per_batch,
                                                  int64_t soft_batch_bytes) {
  auto plan = PlainScanOf(checked_tree_, engine_->catalog_, snapshots_);
  if (!plan) return nullptr;
  // The session's restriction of the table (a streaming microbatch) applies too.
  auto range = ranges_.find(plan->dataset + "." + plan->table);
  if (range != ranges_.end()) {
    plan->lo = std::max(plan->lo, range->second.lo);
    plan->hi = std::min(plan->hi, range->second.hi);
  }
  auto schema = PreparedSchema(conn_.get(), stmt);
  if (!schema.ok()) return nullptr;
  const auto& snap = snapshots_.at(plan->dataset);
  auto def = std::find_if(snap->tables.begin(), snap->tables.end(),
                          [&](const storage::TableDef& t) { return t.name == plan->table; });
  // The segment files only: the table's empty file (first, for DuckDB's views) holds
  // no rows.
  auto files = snap->FilesFor(plan->table, plan->lo, plan->hi);
  auto empty = snap->empty_files.find(plan->table);
  if (empty != snap->empty_files.end()) {
    files.erase(std::remove(files.begin(), files.end(), empty->second), files.end());
  }
  ScanOptions options;
  options.rows_per_batch = rows_per_batch;
  // Without a fetch size, batches grow from the usual size to kDirectScanBatchBytes.
  options.soft_batch_bytes = soft_batch_bytes > 0 ? kDirectScanBatchBytes : soft_batch_bytes;
  options.first_batch_bytes = soft_batch_bytes;
  options.interrupted = interrupted_;
  options.cache = engine_->scan_cache_;
  auto reader = MakeScanReader(*plan, def->schema, std::move(files), std::move(*schema),
                               std::move(options));
  if (!reader.ok()) {
    LOG_DEBUG("direct scan not possible, DuckDB answers: {}", reader.status().ToString());
    return nullptr;
  }
  return std::move(*reader);
}

void Session::Interrupt() {
  interrupted_->store(true);
  duckdb_interrupt(conn_.get());
}

// ---- DuckDBReader -----------------------------------------------------------------

arrow::Status DuckDBReader::ReadNext(std::shared_ptr<arrow::RecordBatch>* out) {
  out->reset();
  arrow::RecordBatchVector parts;
  int64_t rows = 0;
  int64_t bytes = 0;  // of the parts, as their slices reference
  if (carry_) {
    rows = carry_->num_rows();
    ARROW_ASSIGN_OR_RAISE(bytes, arrow::util::ReferencedBufferSize(*carry_));
    parts.push_back(std::move(carry_));
    carry_.reset();
  }
  // Wide rows stop at soft_batch_bytes_ (when set): large messages cost more than
  // they save (bench/FIXES.md); narrow ones still coalesce up to rows_per_batch.
  while (!done_ && rows < rows_per_batch_ && bytes < kMaxBatchBytes &&
         (soft_batch_bytes_ <= 0 || bytes < soft_batch_bytes_)) {
    DataChunk chunk;
    *chunk.out() = duckdb_fetch_chunk(result_.get());
    if (!chunk) {
      // End of the result, or an error (interrupt, out of memory, …).
      const char* err = duckdb_result_error(result_.out());
      if (err != nullptr && *err != '\0') return ResultStatus(result_.out());
      done_ = true;
      break;
    }
    idx_t n = duckdb_data_chunk_get_size(chunk.get());
    if (n == 0) continue;
    ArrowArray c_array;
    ErrorData err;
    *err.out() = duckdb_data_chunk_to_arrow(arrow_options_.get(), chunk.get(), &c_array);
    ARROW_RETURN_NOT_OK(ErrorDataStatus(err.get()));
    ARROW_ASSIGN_OR_RAISE(auto batch, arrow::ImportRecordBatch(&c_array, schema_));
    const int64_t batch_bytes = arrow::util::TotalBufferSize(*batch);
    if (!parts.empty() && bytes + batch_bytes > kMaxBatchBytes) {
      carry_ = std::move(batch);  // wide rows: they start the next batch
      break;
    }
    rows += batch->num_rows();
    bytes += batch_bytes;
    parts.push_back(std::move(batch));
  }
  if (parts.empty()) return arrow::Status::OK();
  std::shared_ptr<arrow::RecordBatch> batch;
  if (parts.size() == 1) {
    batch = std::move(parts[0]);
  } else {
    ARROW_ASSIGN_OR_RAISE(batch, arrow::ConcatenateRecordBatches(parts));
  }
  int64_t keep = std::min(batch->num_rows(), rows_per_batch_);
  if (bytes > kMaxBatchBytes && keep > 1) {
    // About kMaxBatchBytes of rows (the average row), at least one.
    keep = std::max<int64_t>(
        1, std::min(keep, static_cast<int64_t>(static_cast<double>(batch->num_rows()) *
                                               kMaxBatchBytes / static_cast<double>(bytes))));
  }
  if (batch->num_rows() > keep) {
    // (Never with a chunk held back above: that leaves rows and bytes under the limits.)
    carry_ = batch->Slice(keep);
    batch = batch->Slice(0, keep);
  }
  *out = std::move(batch);
  return arrow::Status::OK();
}

}  // namespace sluice::sql
