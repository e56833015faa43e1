#include "flight/flight_sql.h"

#include <set>

#include "arrow/array/builder_binary.h"
#include "arrow/array/builder_nested.h"
#include "arrow/array/builder_primitive.h"
#include "arrow/array/builder_union.h"
#include "arrow/buffer.h"
#include "arrow/config.h"
#include "arrow/ipc/writer.h"
#include "arrow/type.h"

namespace sluice::flight {

namespace {

// SqlInfo ids (FlightSql.proto, enum SqlInfo) that sluice answers.
enum SqlInfoId : uint32_t {
  kServerName = 0,
  kServerVersion = 1,
  kServerArrowVersion = 2,
  kServerReadOnly = 3,
  kServerSql = 4,
  kServerSubstrait = 5,
  kServerTransaction = 8,
  kServerCancel = 9,
  kServerBulkIngestion = 10,
  kSqlDdlCatalog = 500,
  kSqlDdlSchema = 501,
  kSqlDdlTable = 502,
  kSqlIdentifierQuoteChar = 504,
};

// Type codes of the GetSqlInfo value union.
enum ValueCode : int8_t { kString = 0, kBool = 1, kBigint = 2, kInt32Bitmask = 3 };

constexpr const char* kServerVersionString = "0.1.0";

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

using InfoValue = std::variant<std::string, bool, int64_t, int32_t>;

std::map<uint32_t, InfoValue> SqlInfoValues() {
  return {
      {kServerName, std::string("sluice")},
      {kServerVersion, std::string(kServerVersionString)},
      {kServerArrowVersion, std::string(arrow::GetBuildInfo().version_string)},
      {kServerReadOnly, true},
      {kServerSql, true},
      {kServerSubstrait, false},
      {kServerTransaction, int32_t{0}},  // SQL_SUPPORTED_TRANSACTION_NONE
      {kServerCancel, false},
      {kServerBulkIngestion, false},
      {kSqlDdlCatalog, false},
      {kSqlDdlSchema, false},
      {kSqlDdlTable, false},
      {kSqlIdentifierQuoteChar, std::string("\"")},
  };
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> SqlInfoResult(
    const wire::CommandGetSqlInfo& command, const std::shared_ptr<arrow::Schema>& schema) {
  auto values = SqlInfoValues();
  std::vector<uint32_t> ids = command.info;
  if (ids.empty()) {
    for (const auto& [id, value] : values) ids.push_back(id);
  }
  arrow::UInt32Builder names;
  auto type = SqlInfoValueType();
  std::vector<std::shared_ptr<arrow::ArrayBuilder>> children = {
      std::make_shared<arrow::StringBuilder>(),
      std::make_shared<arrow::BooleanBuilder>(),
      std::make_shared<arrow::Int64Builder>(),
      std::make_shared<arrow::Int32Builder>(),
      std::make_shared<arrow::ListBuilder>(arrow::default_memory_pool(),
                                           std::make_shared<arrow::StringBuilder>()),
      std::make_shared<arrow::MapBuilder>(
          arrow::default_memory_pool(), std::make_shared<arrow::Int32Builder>(),
          std::make_shared<arrow::ListBuilder>(arrow::default_memory_pool(),
                                               std::make_shared<arrow::Int32Builder>())),
  };
  arrow::DenseUnionBuilder value(arrow::default_memory_pool(), children, type);
  for (uint32_t id : ids) {
    auto it = values.find(id);
    if (it == values.end()) continue;  // unknown ids are left out, as the spec allows
    ARROW_RETURN_NOT_OK(names.Append(id));
    const auto& v = it->second;
    if (auto* s = std::get_if<std::string>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kString));
      ARROW_RETURN_NOT_OK(static_cast<arrow::StringBuilder&>(*children[kString]).Append(*s));
    } else if (auto* b = std::get_if<bool>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kBool));
      ARROW_RETURN_NOT_OK(static_cast<arrow::BooleanBuilder&>(*children[kBool]).Append(*b));
    } else if (auto* i = std::get_if<int64_t>(&v)) {
      ARROW_RETURN_NOT_OK(value.Append(kBigint));
      ARROW_RETURN_NOT_OK(static_cast<arrow::Int64Builder&>(*children[kBigint]).Append(*i));
    } else {
      ARROW_RETURN_NOT_OK(value.Append(kInt32Bitmask));
      ARROW_RETURN_NOT_OK(static_cast<arrow::Int32Builder&>(*children[kInt32Bitmask])
                              .Append(std::get<int32_t>(v)));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto name_array, names.Finish());
  ARROW_ASSIGN_OR_RAISE(auto value_array, value.Finish());
  return arrow::RecordBatch::Make(schema, name_array->length(), {name_array, value_array});
}

// An optional filter: absent matches everything.
bool Matches(const std::optional<std::string>& pattern, std::string_view text) {
  return !pattern || MatchLike(text, *pattern);
}

}  // namespace

bool MatchLike(std::string_view text, std::string_view pattern) {
  // Iterative matcher with backtracking to the last '%'.
  size_t t = 0, p = 0, star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '%') {
      star_p = ++p;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      bool escaped = pattern[p] == '\\' && p + 1 < pattern.size();
      char want = escaped ? pattern[p + 1] : pattern[p];
      if ((!escaped && want == '_') || want == text[t]) {
        p += escaped ? 2 : 1;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '%') ++p;
  return p == pattern.size();
}

bool IsMetadataCommand(const wire::Command& command) {
  return std::holds_alternative<wire::CommandGetCatalogs>(command) ||
         std::holds_alternative<wire::CommandGetDbSchemas>(command) ||
         std::holds_alternative<wire::CommandGetTables>(command) ||
         std::holds_alternative<wire::CommandGetTableTypes>(command) ||
         std::holds_alternative<wire::CommandGetSqlInfo>(command);
}

arrow::Result<std::shared_ptr<arrow::Schema>> MetadataSchema(const wire::Command& command) {
  using arrow::field;
  using arrow::utf8;
  if (std::holds_alternative<wire::CommandGetCatalogs>(command)) {
    return arrow::schema({field("catalog_name", utf8(), false)});
  }
  if (std::holds_alternative<wire::CommandGetDbSchemas>(command)) {
    return arrow::schema({field("catalog_name", utf8()), field("db_schema_name", utf8(), false)});
  }
  if (auto* t = std::get_if<wire::CommandGetTables>(&command)) {
    arrow::FieldVector fields = {field("catalog_name", utf8()), field("db_schema_name", utf8()),
                                 field("table_name", utf8(), false),
                                 field("table_type", utf8(), false)};
    if (t->include_schema) fields.push_back(field("table_schema", arrow::binary(), false));
    return arrow::schema(fields);
  }
  if (std::holds_alternative<wire::CommandGetTableTypes>(command)) {
    return arrow::schema({field("table_type", utf8(), false)});
  }
  if (std::holds_alternative<wire::CommandGetSqlInfo>(command)) {
    return arrow::schema({field("info_name", arrow::uint32(), false),
                          field("value", SqlInfoValueType(), false)});
  }
  return arrow::Status::Invalid("not a Flight SQL metadata command");
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MetadataResult(sql::Engine* engine,
                                                                 const wire::Command& command) {
  ARROW_ASSIGN_OR_RAISE(auto schema, MetadataSchema(command));
  if (auto* info = std::get_if<wire::CommandGetSqlInfo>(&command)) {
    return SqlInfoResult(*info, schema);
  }
  const std::string& catalog = engine->catalog();
  std::vector<std::unique_ptr<arrow::StringBuilder>> columns;
  for (int i = 0; i < schema->num_fields(); ++i) {
    columns.push_back(std::make_unique<arrow::StringBuilder>());
  }
  arrow::BinaryBuilder table_schemas;
  int64_t rows = 0;
  if (std::holds_alternative<wire::CommandGetCatalogs>(command)) {
    ARROW_RETURN_NOT_OK(columns[0]->Append(catalog));
    rows = 1;
  } else if (std::holds_alternative<wire::CommandGetTableTypes>(command)) {
    for (const char* type : {"TABLE", "VIEW"}) ARROW_RETURN_NOT_OK(columns[0]->Append(type));
    rows = 2;
  } else {
    ARROW_ASSIGN_OR_RAISE(auto tables, engine->ListTables());
    if (auto* s = std::get_if<wire::CommandGetDbSchemas>(&command)) {
      std::set<std::string> schemas;
      if (!s->catalog || *s->catalog == catalog) {
        for (const auto& t : tables) {
          if (Matches(s->db_schema_filter_pattern, t.schema)) schemas.insert(t.schema);
        }
      }
      for (const auto& name : schemas) {
        ARROW_RETURN_NOT_OK(columns[0]->Append(catalog));
        ARROW_RETURN_NOT_OK(columns[1]->Append(name));
        ++rows;
      }
    } else {
      const auto& g = std::get<wire::CommandGetTables>(command);
      if (!g.catalog || *g.catalog == catalog) {
        for (const auto& t : tables) {
          if (!Matches(g.db_schema_filter_pattern, t.schema) ||
              !Matches(g.table_name_filter_pattern, t.name)) {
            continue;
          }
          if (!g.table_types.empty() &&
              std::find(g.table_types.begin(), g.table_types.end(), t.type) ==
                  g.table_types.end()) {
            continue;
          }
          ARROW_RETURN_NOT_OK(columns[0]->Append(catalog));
          ARROW_RETURN_NOT_OK(columns[1]->Append(t.schema));
          ARROW_RETURN_NOT_OK(columns[2]->Append(t.name));
          ARROW_RETURN_NOT_OK(columns[3]->Append(t.type));
          if (g.include_schema) {
            ARROW_ASSIGN_OR_RAISE(auto bytes, arrow::ipc::SerializeSchema(*t.arrow_schema));
            ARROW_RETURN_NOT_OK(table_schemas.Append(bytes->data(), bytes->size()));
          }
          ++rows;
        }
      }
    }
  }
  arrow::ArrayVector arrays;
  for (int i = 0; i < schema->num_fields(); ++i) {
    if (schema->field(i)->type()->id() == arrow::Type::BINARY) {
      ARROW_ASSIGN_OR_RAISE(arrays.emplace_back(), table_schemas.Finish());
    } else {
      ARROW_ASSIGN_OR_RAISE(arrays.emplace_back(), columns[i]->Finish());
    }
  }
  return arrow::RecordBatch::Make(schema, rows, std::move(arrays));
}

}  // namespace sluice::flight
