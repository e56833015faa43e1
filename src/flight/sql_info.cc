#include "flight/sql_info.h"

#include "arrow/array/builder_binary.h"
#include "arrow/array/builder_nested.h"
#include "arrow/array/builder_primitive.h"
#include "arrow/array/builder_union.h"
#include "arrow/array/array_binary.h"
#include "arrow/config.h"
#include "arrow/type.h"

namespace sluice::flight {

namespace {

// SqlInfo ids (FlightSql.proto, enum SqlInfo).
enum SqlInfoId : uint32_t {
  kServerName = 0,
  kServerVersion = 1,
  kServerArrowVersion = 2,
  kServerReadOnly = 3,
  kServerSql = 4,
  kServerSubstrait = 5,
  kServerSubstraitMinVersion = 6,
  kServerSubstraitMaxVersion = 7,
  kServerTransaction = 8,
  kServerCancel = 9,
  kServerBulkIngestion = 10,
  kServerIngestTransactionsSupported = 11,
  kServerStatementTimeout = 100,
  kServerTransactionTimeout = 101,
  kSqlDdlCatalog = 500,
  kSqlDdlSchema = 501,
  kSqlDdlTable = 502,
  kSqlIdentifierCase = 503,
  kSqlIdentifierQuoteChar = 504,
  kSqlQuotedIdentifierCase = 505,
  kSqlAllTablesAreSelectable = 506,
  kSqlNullOrdering = 507,
  kSqlKeywords = 508,
  kSqlNumericFunctions = 509,
  kSqlStringFunctions = 510,
  kSqlSystemFunctions = 511,
  kSqlDatetimeFunctions = 512,
  kSqlSearchStringEscape = 513,
  kSqlExtraNameCharacters = 514,
  kSqlSupportsColumnAliasing = 515,
  kSqlNullPlusNullIsNull = 516,
  kSqlSupportsConvert = 517,
  kSqlSupportsTableCorrelationNames = 518,
  kSqlSupportsDifferentTableCorrelationNames = 519,
  kSqlSupportsExpressionsInOrderBy = 520,
  kSqlSupportsOrderByUnrelated = 521,
  kSqlSupportedGroupBy = 522,
  kSqlSupportsLikeEscapeClause = 523,
  kSqlSupportsNonNullableColumns = 524,
  kSqlSupportedGrammar = 525,
  kSqlAnsi92SupportedLevel = 526,
  kSqlSupportsIntegrityEnhancementFacility = 527,
  kSqlOuterJoinsSupportLevel = 528,
  kSqlSchemaTerm = 529,
  kSqlProcedureTerm = 530,
  kSqlCatalogTerm = 531,
  kSqlCatalogAtStart = 532,
  kSqlSchemasSupportedActions = 533,
  kSqlCatalogsSupportedActions = 534,
  kSqlSupportedPositionedCommands = 535,
  kSqlSelectForUpdateSupported = 536,
  kSqlStoredProceduresSupported = 537,
  kSqlSupportedSubqueries = 538,
  kSqlCorrelatedSubqueriesSupported = 539,
  kSqlSupportedUnions = 540,
  kSqlMaxBinaryLiteralLength = 541,  // 541..555 and 557..561: int64 limits
  kSqlMaxRowSize = 555,
  kSqlMaxRowSizeIncludesBlobs = 556,
  kSqlMaxStatementLength = 557,
  kSqlMaxUsernameLength = 561,
  kSqlDefaultTransactionIsolation = 562,
  kSqlTransactionsSupported = 563,
  kSqlSupportedTransactionsIsolationLevels = 564,
  kSqlDataDefinitionCausesTransactionCommit = 565,
  kSqlDataDefinitionsInTransactionsIgnored = 566,
  kSqlSupportedResultSetTypes = 567,
  kSqlSupportedConcurrenciesForResultSetUnspecified = 568,
  kSqlSupportedConcurrenciesForResultSetForwardOnly = 569,
  kSqlSupportedConcurrenciesForResultSetScrollSensitive = 570,
  kSqlSupportedConcurrenciesForResultSetScrollInsensitive = 571,
  kSqlBatchUpdatesSupported = 572,
  kSqlSavepointsSupported = 573,
  kSqlNamedParametersSupported = 574,
  kSqlLocatorsUpdateCopy = 575,
  kSqlStoredFunctionsUsingCallSyntaxSupported = 576,
};

// Type codes of the value union, in SqlInfoValueType()'s order.
enum ValueCode : int8_t {
  kString = 0,
  kBool = 1,
  kBigint = 2,
  kInt32 = 3,
  kStringList = 4,
  kInt32Map = 5,
};

constexpr const char* kServerVersionString = "0.1.0";

// A bit per enum value: Bits({0, 1}) == 0b11.
int32_t Bits(std::initializer_list<int> positions) {
  int32_t mask = 0;
  for (int p : positions) mask |= int32_t{1} << p;
  return mask;
}

// SqlSupportsConvert (FlightSql.proto): which CASTs the engine does, from -> to.
enum Convert : int32_t {
  kBigint_ = 0, kBinary = 1, kBit = 2, kChar = 3, kDate = 4, kDecimal = 5, kFloat = 6,
  kInteger = 7, kIntervalDayTime = 8, kIntervalYearMonth = 9, kLongVarbinary = 10,
  kLongVarchar = 11, kNumeric = 12, kReal = 13, kSmallint = 14, kTime = 15, kTimestamp = 16,
  kTinyint = 17, kVarbinary = 18, kVarchar = 19,
};

std::map<int32_t, std::vector<int32_t>> SupportedConversions() {
  const std::vector<int32_t> numbers = {kBigint_, kBit,      kDecimal,  kFloat,  kInteger,
                                        kNumeric, kReal,     kSmallint, kTinyint};
  const std::vector<int32_t> strings = {kChar, kLongVarchar, kVarchar};
  const std::vector<int32_t> binaries = {kBinary, kLongVarbinary, kVarbinary};
  const std::vector<int32_t> intervals = {kIntervalDayTime, kIntervalYearMonth};
  auto join = [](std::initializer_list<std::vector<int32_t>> parts) {
    std::vector<int32_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    std::sort(out.begin(), out.end());
    return out;
  };
  std::map<int32_t, std::vector<int32_t>> m;
  for (int32_t n : numbers) m[n] = join({numbers, strings});
  for (int32_t s : strings) {
    m[s] = join({numbers, strings, binaries, intervals, {kDate, kTime, kTimestamp}});
  }
  for (int32_t b : binaries) m[b] = join({binaries, strings});
  for (int32_t i : intervals) m[i] = join({intervals, strings});
  m[kDate] = join({strings, {kDate, kTimestamp}});
  m[kTime] = join({strings, {kTime}});
  m[kTimestamp] = join({strings, {kDate, kTime, kTimestamp}});
  return m;
}

// Functions in the sense of JDBC's getNumericFunctions() etc.; the ones the
// engine does not have are left out (SqlInfoValues asks it).
const std::vector<std::string>& NumericFunctions() {
  static const std::vector<std::string> f = {
      "abs",   "acos",    "asin",  "atan",   "atan2", "cbrt",  "ceil",  "ceiling", "cos",
      "cot",   "degrees", "exp",   "floor",  "ln",    "log",   "log10", "log2",    "mod",
      "pi",    "pow",     "power", "radians", "random", "round", "sign", "sin",    "sqrt",
      "tan",   "trunc"};
  return f;
}
const std::vector<std::string>& StringFunctions() {
  static const std::vector<std::string> f = {
      "ascii",   "chr",        "concat",    "concat_ws",      "contains",    "left",
      "length",  "lower",      "lpad",      "ltrim",          "md5",         "position",
      "regexp_matches", "regexp_replace", "repeat", "replace", "reverse",    "right",
      "rpad",    "rtrim",      "sha256",    "split_part",     "starts_with", "strpos",
      "substr",  "substring",  "trim",      "upper"};
  return f;
}
const std::vector<std::string>& SystemFunctions() {
  static const std::vector<std::string> f = {"coalesce", "current_database", "current_schema",
                                             "ifnull",   "nullif",           "typeof",
                                             "version"};
  return f;
}
const std::vector<std::string>& DatetimeFunctions() {
  static const std::vector<std::string> f = {
      "age",       "current_date", "current_timestamp", "date_add",   "date_diff", "date_part",
      "date_sub",  "date_trunc",   "dayname",           "dayofmonth", "dayofweek", "dayofyear",
      "epoch",     "epoch_ms",     "extract",           "hour",       "make_date", "make_timestamp",
      "minute",    "month",        "monthname",         "now",        "quarter",   "second",
      "strftime",  "strptime",     "to_timestamp",      "week",       "year"};
  return f;
}

std::string SqlList(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += "'" + n + "'";
  }
  return out;
}

// The first column of a query's answer, as strings.
arrow::Result<std::vector<std::string>> QueryStrings(sql::Engine* engine, const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto session, engine->OpenSession());
  ARROW_ASSIGN_OR_RAISE(auto reader, session->Execute(sql, 4096));
  std::vector<std::string> out;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
    if (!batch) break;
    const auto& col = static_cast<const arrow::StringArray&>(*batch->column(0));
    for (int64_t i = 0; i < col.length(); ++i) {
      if (col.IsValid(i)) out.emplace_back(col.GetView(i));
    }
  }
  return out;
}

// `candidates` the engine has, in the order given.
arrow::Result<std::vector<std::string>> KnownFunctions(
    sql::Engine* engine, const std::vector<std::string>& candidates) {
  ARROW_ASSIGN_OR_RAISE(
      auto known, QueryStrings(engine, "SELECT DISTINCT function_name::VARCHAR FROM "
                                       "duckdb_functions() WHERE function_name IN (" +
                                           SqlList(candidates) + ")"));
  std::vector<std::string> out;
  for (const auto& c : candidates) {
    if (std::find(known.begin(), known.end(), c) != known.end()) out.push_back(c);
  }
  return out;
}

}  // namespace

std::shared_ptr<arrow::DataType> SqlInfoValueType() {
  return arrow::dense_union(
      {arrow::field("string_value", arrow::utf8(), false),
       arrow::field("bool_value", arrow::boolean(), false),
       arrow::field("bigint_value", arrow::int64(), false),
       arrow::field("int32_bitmask", arrow::int32(), false),
       arrow::field("string_list", arrow::list(arrow::utf8()), false),
       arrow::field("int32_to_int32_list_map",
                    arrow::map(arrow::int32(), arrow::list(arrow::int32())), false)});
}

arrow::Result<std::map<uint32_t, SqlInfoValue>> SqlInfoValues(sql::Engine* engine) {
  ARROW_ASSIGN_OR_RAISE(
      auto keywords,
      QueryStrings(engine, "SELECT upper(keyword_name) FROM duckdb_keywords() "
                           "WHERE keyword_category = 'reserved' ORDER BY 1"));
  ARROW_ASSIGN_OR_RAISE(auto numeric, KnownFunctions(engine, NumericFunctions()));
  ARROW_ASSIGN_OR_RAISE(auto string, KnownFunctions(engine, StringFunctions()));
  ARROW_ASSIGN_OR_RAISE(auto system, KnownFunctions(engine, SystemFunctions()));
  ARROW_ASSIGN_OR_RAISE(auto datetime, KnownFunctions(engine, DatetimeFunctions()));
  std::map<uint32_t, SqlInfoValue> v = {
      {kServerName, std::string("sluice")},
      {kServerVersion, std::string(kServerVersionString)},
      {kServerArrowVersion, std::string(arrow::GetBuildInfo().version_string)},
      {kServerReadOnly, true},
      {kServerSql, true},
      {kServerSubstrait, false},
      {kServerSubstraitMinVersion, std::string()},  // no Substrait
      {kServerSubstraitMaxVersion, std::string()},
      {kServerTransaction, int32_t{0}},  // SqlSupportedTransaction NONE
      {kServerCancel, true},             // CancelQuery and CancelFlightInfo
      {kServerBulkIngestion, false},
      {kServerIngestTransactionsSupported, false},
      // Prepared statement handles live until idle for an hour
      // (flight/prepared_statements.h), in milliseconds.
      {kServerStatementTimeout, int32_t{3600 * 1000}},
      {kServerTransactionTimeout, int32_t{0}},
      {kSqlDdlCatalog, false},
      {kSqlDdlSchema, false},
      {kSqlDdlTable, false},
      // DuckDB: identifiers are case-insensitive, quoted or not
      // (SqlSupportedCaseSensitivity CASE_INSENSITIVE).
      {kSqlIdentifierCase, int32_t{1}},
      {kSqlIdentifierQuoteChar, std::string("\"")},
      {kSqlQuotedIdentifierCase, int32_t{1}},
      {kSqlAllTablesAreSelectable, true},
      {kSqlNullOrdering, int32_t{3}},  // NULLS LAST by default: SQL_NULLS_SORTED_AT_END
      {kSqlKeywords, std::move(keywords)},
      {kSqlNumericFunctions, std::move(numeric)},
      {kSqlStringFunctions, std::move(string)},
      {kSqlSystemFunctions, std::move(system)},
      {kSqlDatetimeFunctions, std::move(datetime)},
      {kSqlSearchStringEscape, std::string("\\")},  // GetTables/GetDbSchemas patterns
      {kSqlExtraNameCharacters, std::string()},
      {kSqlSupportsColumnAliasing, true},
      {kSqlNullPlusNullIsNull, true},
      {kSqlSupportsConvert, SupportedConversions()},
      {kSqlSupportsTableCorrelationNames, true},
      {kSqlSupportsDifferentTableCorrelationNames, false},
      {kSqlSupportsExpressionsInOrderBy, true},
      {kSqlSupportsOrderByUnrelated, true},
      {kSqlSupportedGroupBy, Bits({0, 1})},  // UNRELATED, BEYOND_SELECT
      {kSqlSupportsLikeEscapeClause, true},
      {kSqlSupportsNonNullableColumns, true},
      {kSqlSupportedGrammar, Bits({0, 1})},  // MINIMUM, CORE
      {kSqlAnsi92SupportedLevel, Bits({0, 1})},  // ENTRY, INTERMEDIATE
      {kSqlSupportsIntegrityEnhancementFacility, false},
      {kSqlOuterJoinsSupportLevel, int32_t{2}},  // SQL_FULL_OUTER_JOINS
      {kSqlSchemaTerm, std::string("schema")},
      {kSqlProcedureTerm, std::string("procedure")},
      {kSqlCatalogTerm, std::string("catalog")},
      {kSqlCatalogAtStart, true},
      {kSqlSchemasSupportedActions, int32_t{0}},
      {kSqlCatalogsSupportedActions, int32_t{0}},
      {kSqlSupportedPositionedCommands, int32_t{0}},
      {kSqlSelectForUpdateSupported, false},
      {kSqlStoredProceduresSupported, false},
      {kSqlSupportedSubqueries, Bits({0, 1, 2, 3})},  // comparisons, EXISTS, IN, quantified
      {kSqlCorrelatedSubqueriesSupported, true},
      {kSqlSupportedUnions, Bits({0, 1})},  // UNION, UNION ALL
      {kSqlMaxRowSizeIncludesBlobs, false},
      // SQL_TRANSACTION_NONE. FlightSql.proto calls it an int32 ordinal, but
      // arrow-java's SqlInfoBuilder writes it as an int64 and its JDBC driver
      // reads an int64 (getDefaultTransactionIsolation: ClassCastException on an
      // int32, and the connection leaks the answer's memory); so int64.
      {kSqlDefaultTransactionIsolation, int64_t{0}},
      {kSqlTransactionsSupported, false},
      {kSqlSupportedTransactionsIsolationLevels, Bits({0})},  // NONE
      {kSqlDataDefinitionCausesTransactionCommit, false},
      {kSqlDataDefinitionsInTransactionsIgnored, false},
      {kSqlSupportedResultSetTypes, Bits({1})},  // FORWARD_ONLY
      {kSqlSupportedConcurrenciesForResultSetUnspecified, int32_t{0}},
      {kSqlSupportedConcurrenciesForResultSetForwardOnly, Bits({1})},  // READ_ONLY
      {kSqlSupportedConcurrenciesForResultSetScrollSensitive, int32_t{0}},
      {kSqlSupportedConcurrenciesForResultSetScrollInsensitive, int32_t{0}},
      {kSqlBatchUpdatesSupported, false},
      {kSqlSavepointsSupported, false},
      {kSqlNamedParametersSupported, false},
      {kSqlLocatorsUpdateCopy, false},
      {kSqlStoredFunctionsUsingCallSyntaxSupported, false},
  };
  // The int64 limits (SQL_MAX_BINARY_LITERAL_LENGTH .. SQL_MAX_USERNAME_LENGTH but
  // SQL_MAX_ROW_SIZE_INCLUDES_BLOBS): 0, "no limit or not known" (JDBC).
  for (uint32_t id = kSqlMaxBinaryLiteralLength; id <= kSqlMaxUsernameLength; ++id) {
    if (id != kSqlMaxRowSizeIncludesBlobs) v.emplace(id, int64_t{0});
  }
  return v;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> SqlInfoResult(
    sql::Engine* engine, const wire::CommandGetSqlInfo& command,
    const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto values, SqlInfoValues(engine));
  std::vector<uint32_t> ids = command.info;
  if (ids.empty()) {
    for (const auto& [id, value] : values) ids.push_back(id);
  }
  auto* pool = arrow::default_memory_pool();
  auto strings = std::make_shared<arrow::StringBuilder>(pool);
  auto bools = std::make_shared<arrow::BooleanBuilder>(pool);
  auto bigints = std::make_shared<arrow::Int64Builder>(pool);
  auto int32s = std::make_shared<arrow::Int32Builder>(pool);
  auto list_items = std::make_shared<arrow::StringBuilder>(pool);
  auto lists = std::make_shared<arrow::ListBuilder>(pool, list_items);
  auto map_keys = std::make_shared<arrow::Int32Builder>(pool);
  auto map_item_values = std::make_shared<arrow::Int32Builder>(pool);
  auto map_items = std::make_shared<arrow::ListBuilder>(pool, map_item_values);
  auto maps = std::make_shared<arrow::MapBuilder>(pool, map_keys, map_items);
  arrow::DenseUnionBuilder value(pool, {strings, bools, bigints, int32s, lists, maps},
                                 SqlInfoValueType());
  arrow::UInt32Builder names;
  for (uint32_t id : ids) {
    auto it = values.find(id);
    if (it == values.end()) continue;  // unknown ids are left out, as the spec allows
    ARROW_RETURN_NOT_OK(names.Append(id));
    const auto& v = it->second;
    if (auto* s = std::get_if<std::string>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kString));
      ARROW_RETURN_NOT_OK(strings->Append(*s));
    } else if (auto* b = std::get_if<bool>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kBool));
      ARROW_RETURN_NOT_OK(bools->Append(*b));
    } else if (auto* i64 = std::get_if<int64_t>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kBigint));
      ARROW_RETURN_NOT_OK(bigints->Append(*i64));
    } else if (auto* i32 = std::get_if<int32_t>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kInt32));
      ARROW_RETURN_NOT_OK(int32s->Append(*i32));
    } else if (auto* l = std::get_if<std::vector<std::string>>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kStringList));
      ARROW_RETURN_NOT_OK(lists->Append());
      for (const auto& item : *l) ARROW_RETURN_NOT_OK(list_items->Append(item));
    } else {
      ARROW_RETURN_NOT_OK(value.Append(kInt32Map));
      ARROW_RETURN_NOT_OK(maps->Append());
      for (const auto& [from, to] : std::get<std::map<int32_t, std::vector<int32_t>>>(v)) {
        ARROW_RETURN_NOT_OK(map_keys->Append(from));
        ARROW_RETURN_NOT_OK(map_items->Append());
        ARROW_RETURN_NOT_OK(map_item_values->AppendValues(to));
      }
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto name_array, names.Finish());
  ARROW_ASSIGN_OR_RAISE(auto value_array, value.Finish());
  return arrow::RecordBatch::Make(schema, name_array->length(), {name_array, value_array});
}

}  // namespace sluice::flight
