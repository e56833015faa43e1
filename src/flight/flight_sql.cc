#include "flight/flight_sql.h"

#include <algorithm>
#include <optional>
#include <set>

#include "arrow/array/builder_binary.h"
#include "arrow/array/builder_nested.h"
#include "arrow/array/builder_primitive.h"
#include "arrow/buffer.h"
#include "arrow/ipc/writer.h"
#include "arrow/type.h"
#include "flight/sql_info.h"

namespace sluice::flight {

namespace {

// GetXdbcTypeInfo rows: the types sluice's answers have (DuckDB's types as Arrow
// types), in XDBC terms (FlightSql.proto, XdbcDataType / XdbcDatetimeSubcode).
struct XdbcType {
  const char* name;
  int32_t data_type;                  // XdbcDataType
  std::optional<int32_t> column_size;  // precision, characters, or bits (radix 2)
  const char* literal_prefix;         // nullptr: none
  const char* literal_suffix;
  bool has_create_params;             // DECIMAL(precision, scale)
  bool case_sensitive;
  int32_t searchable;                 // Searchable: 2 BASIC, 3 FULL
  std::optional<bool> unsigned_attribute;
  bool fixed_prec_scale;
  std::optional<int32_t> minimum_scale;
  std::optional<int32_t> maximum_scale;
  int32_t sql_data_type;                  // as data_type; 9 DATETIME, 10 INTERVAL
  std::optional<int32_t> datetime_subcode;  // XdbcDatetimeSubcode
  std::optional<int32_t> num_prec_radix;
};

const std::vector<XdbcType>& XdbcTypes() {
  using std::nullopt;
  // Ordered by data_type, then type_name, as FlightSql.proto asks.
  static const std::vector<XdbcType> types = [] {
    std::vector<XdbcType> t = {
        {"BIGINT", -5, 19, nullptr, nullptr, false, false, 2, false, false, 0, 0, -5, nullopt, 10},
        {"UBIGINT", -5, 20, nullptr, nullptr, false, false, 2, true, false, 0, 0, -5, nullopt, 10},
        {"TINYINT", -6, 3, nullptr, nullptr, false, false, 2, false, false, 0, 0, -6, nullopt, 10},
        {"UTINYINT", -6, 3, nullptr, nullptr, false, false, 2, true, false, 0, 0, -6, nullopt, 10},
        {"BOOLEAN", -7, 1, nullptr, nullptr, false, false, 2, nullopt, false, nullopt, nullopt, -7,
         nullopt, nullopt},
        {"BLOB", -3, nullopt, "'", "'::BLOB", false, false, 2, nullopt, false, nullopt, nullopt, -3,
         nullopt, nullopt},
        {"DECIMAL", 3, 38, nullptr, nullptr, true, false, 2, false, false, 0, 38, 3, nullopt, 10},
        {"INTEGER", 4, 10, nullptr, nullptr, false, false, 2, false, false, 0, 0, 4, nullopt, 10},
        {"UINTEGER", 4, 10, nullptr, nullptr, false, false, 2, true, false, 0, 0, 4, nullopt, 10},
        {"SMALLINT", 5, 5, nullptr, nullptr, false, false, 2, false, false, 0, 0, 5, nullopt, 10},
        {"USMALLINT", 5, 5, nullptr, nullptr, false, false, 2, true, false, 0, 0, 5, nullopt, 10},
        {"FLOAT", 7, 24, nullptr, nullptr, false, false, 2, false, false, nullopt, nullopt, 7,
         nullopt, 2},
        {"DOUBLE", 8, 53, nullptr, nullptr, false, false, 2, false, false, nullopt, nullopt, 8,
         nullopt, 2},
        {"INTERVAL", 10, nullopt, "INTERVAL '", "'", false, false, 2, nullopt, false, nullopt,
         nullopt, 10, nullopt, nullopt},
        {"VARCHAR", 12, nullopt, "'", "'", false, true, 3, nullopt, false, nullopt, nullopt, 12,
         nullopt, nullopt},
        {"DATE", 91, 10, "DATE '", "'", false, false, 2, nullopt, false, nullopt, nullopt, 9, 1,
         nullopt},
        {"TIME", 92, 15, "TIME '", "'", false, false, 2, nullopt, false, 0, 6, 9, 2, nullopt},
        {"TIMESTAMP", 93, 26, "TIMESTAMP '", "'", false, false, 2, nullopt, false, 0, 6, 9, 3,
         nullopt},
        {"TIMESTAMP WITH TIME ZONE", 93, 32, "TIMESTAMPTZ '", "'", false, false, 2, nullopt, false,
         0, 6, 9, 5, nullopt},
    };
    std::stable_sort(t.begin(), t.end(), [](const XdbcType& a, const XdbcType& b) {
      return a.data_type != b.data_type ? a.data_type < b.data_type
                                        : std::string_view(a.name) < std::string_view(b.name);
    });
    return t;
  }();
  return types;
}

template <typename Builder, typename T>
arrow::Status AppendOptional(Builder* b, const std::optional<T>& v) {
  return v ? b->Append(*v) : b->AppendNull();
}

arrow::Status AppendText(arrow::StringBuilder* b, const char* v) {
  return v ? b->Append(v) : b->AppendNull();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> XdbcTypeInfoResult(
    const wire::CommandGetXdbcTypeInfo& command, const std::shared_ptr<arrow::Schema>& schema) {
  arrow::StringBuilder type_name, literal_prefix, literal_suffix, local_type_name;
  arrow::Int32Builder data_type, column_size, nullable, searchable, minimum_scale, maximum_scale,
      sql_data_type, datetime_subcode, num_prec_radix, interval_precision;
  arrow::BooleanBuilder case_sensitive, unsigned_attribute, fixed_prec_scale, auto_increment;
  auto params_item = std::make_shared<arrow::StringBuilder>();
  arrow::ListBuilder create_params(arrow::default_memory_pool(), params_item,
                                   schema->GetFieldByName("create_params")->type());
  int64_t rows = 0;
  for (const auto& t : XdbcTypes()) {
    if (command.data_type && *command.data_type != t.data_type) continue;
    ++rows;
    ARROW_RETURN_NOT_OK(type_name.Append(t.name));
    ARROW_RETURN_NOT_OK(data_type.Append(t.data_type));
    ARROW_RETURN_NOT_OK(AppendOptional(&column_size, t.column_size));
    ARROW_RETURN_NOT_OK(AppendText(&literal_prefix, t.literal_prefix));
    ARROW_RETURN_NOT_OK(AppendText(&literal_suffix, t.literal_suffix));
    if (t.has_create_params) {
      ARROW_RETURN_NOT_OK(create_params.Append());
      ARROW_RETURN_NOT_OK(params_item->AppendValues({"precision", "scale"}));
    } else {
      ARROW_RETURN_NOT_OK(create_params.AppendNull());
    }
    ARROW_RETURN_NOT_OK(nullable.Append(1));  // NULLABILITY_NULLABLE
    ARROW_RETURN_NOT_OK(case_sensitive.Append(t.case_sensitive));
    ARROW_RETURN_NOT_OK(searchable.Append(t.searchable));
    ARROW_RETURN_NOT_OK(AppendOptional(&unsigned_attribute, t.unsigned_attribute));
    ARROW_RETURN_NOT_OK(fixed_prec_scale.Append(t.fixed_prec_scale));
    ARROW_RETURN_NOT_OK(t.num_prec_radix ? auto_increment.Append(false)
                                         : auto_increment.AppendNull());
    ARROW_RETURN_NOT_OK(local_type_name.Append(t.name));
    ARROW_RETURN_NOT_OK(AppendOptional(&minimum_scale, t.minimum_scale));
    ARROW_RETURN_NOT_OK(AppendOptional(&maximum_scale, t.maximum_scale));
    ARROW_RETURN_NOT_OK(sql_data_type.Append(t.sql_data_type));
    ARROW_RETURN_NOT_OK(AppendOptional(&datetime_subcode, t.datetime_subcode));
    ARROW_RETURN_NOT_OK(AppendOptional(&num_prec_radix, t.num_prec_radix));
    ARROW_RETURN_NOT_OK(interval_precision.AppendNull());
  }
  arrow::ArrayVector columns;
  for (arrow::ArrayBuilder* b : std::initializer_list<arrow::ArrayBuilder*>{
           &type_name, &data_type, &column_size, &literal_prefix, &literal_suffix, &create_params,
           &nullable, &case_sensitive, &searchable, &unsigned_attribute, &fixed_prec_scale,
           &auto_increment, &local_type_name, &minimum_scale, &maximum_scale, &sql_data_type,
           &datetime_subcode, &num_prec_radix, &interval_precision}) {
    ARROW_ASSIGN_OR_RAISE(columns.emplace_back(), b->Finish());
  }
  return arrow::RecordBatch::Make(schema, rows, std::move(columns));
}

// GetPrimaryKeys, GetExportedKeys, GetImportedKeys, GetCrossReference.
bool IsKeysCommand(const wire::Command& command) {
  return std::holds_alternative<wire::CommandGetPrimaryKeys>(command) ||
         std::holds_alternative<wire::CommandGetExportedKeys>(command) ||
         std::holds_alternative<wire::CommandGetImportedKeys>(command) ||
         std::holds_alternative<wire::CommandGetCrossReference>(command);
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
         std::holds_alternative<wire::CommandGetSqlInfo>(command) ||
         std::holds_alternative<wire::CommandGetXdbcTypeInfo>(command) || IsKeysCommand(command);
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
  if (std::holds_alternative<wire::CommandGetXdbcTypeInfo>(command)) {
    using arrow::boolean;
    using arrow::int32;
    return arrow::schema(
        {field("type_name", utf8(), false), field("data_type", int32(), false),
         field("column_size", int32()), field("literal_prefix", utf8()),
         field("literal_suffix", utf8()),
         field("create_params", arrow::list(field("item", utf8(), false))),
         field("nullable", int32(), false), field("case_sensitive", boolean(), false),
         field("searchable", int32(), false), field("unsigned_attribute", boolean()),
         field("fixed_prec_scale", boolean(), false), field("auto_increment", boolean()),
         field("local_type_name", utf8()), field("minimum_scale", int32()),
         field("maximum_scale", int32()), field("sql_data_type", int32(), false),
         field("datetime_subcode", int32()), field("num_prec_radix", int32()),
         field("interval_precision", int32())});
  }
  if (std::holds_alternative<wire::CommandGetPrimaryKeys>(command)) {
    return arrow::schema({field("catalog_name", utf8()), field("db_schema_name", utf8()),
                          field("table_name", utf8(), false), field("column_name", utf8(), false),
                          field("key_name", utf8()), field("key_sequence", arrow::int32(), false)});
  }
  if (IsKeysCommand(command)) {  // exported, imported keys and cross reference: one schema
    return arrow::schema(
        {field("pk_catalog_name", utf8()), field("pk_db_schema_name", utf8()),
         field("pk_table_name", utf8(), false), field("pk_column_name", utf8(), false),
         field("fk_catalog_name", utf8()), field("fk_db_schema_name", utf8()),
         field("fk_table_name", utf8(), false), field("fk_column_name", utf8(), false),
         field("key_sequence", arrow::int32(), false), field("fk_key_name", utf8()),
         field("pk_key_name", utf8()), field("update_rule", arrow::uint8(), false),
         field("delete_rule", arrow::uint8(), false)});
  }
  return arrow::Status::Invalid("not a Flight SQL metadata command");
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MetadataResult(sql::Engine* engine,
                                                                 const wire::Command& command) {
  ARROW_ASSIGN_OR_RAISE(auto schema, MetadataSchema(command));
  if (auto* info = std::get_if<wire::CommandGetSqlInfo>(&command)) {
    return SqlInfoResult(engine, *info, schema);
  }
  if (auto* types = std::get_if<wire::CommandGetXdbcTypeInfo>(&command)) {
    return XdbcTypeInfoResult(*types, schema);
  }
  if (IsKeysCommand(command)) {
    // No table has a primary or foreign key: the answer is empty.
    return arrow::RecordBatch::MakeEmpty(schema);
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
