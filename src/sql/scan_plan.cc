// PlainScanOf: which parse trees are plain scans (sql/scan.h), and their plans.
#include <cctype>
#include <functional>
#include <map>

#include "arrow/type.h"
#include "sql/scan.h"
#include "sql/scan_expression.h"

namespace sluice::sql {

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool EqualsIgnoreCase(const std::string& a, const std::string& b) { return Lower(a) == Lower(b); }

bool IsNullOrEmpty(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (it->is_array() || it->is_object()) return it->empty();
  if (it->is_string()) return it->get<std::string>().empty();
  if (it->is_boolean()) return !it->get<bool>();
  return false;
}

// The name a column reference uses for the table: its alias, else its name.
struct TableRef {
  std::string name;
  std::string alias;
  bool Names(const std::string& qualifier) const {
    return EqualsIgnoreCase(qualifier, alias.empty() ? name : alias);
  }
};

// A column reference `col` or `t.col` to the scanned table: the column's name.
std::optional<std::string> ColumnRefName(const nlohmann::json& e, const TableRef& table) {
  if (e.value("class", "") != "COLUMN_REF") return std::nullopt;
  const auto& names = e.at("column_names");
  if (names.size() == 1) return names[0].get<std::string>();
  if (names.size() == 2 && table.Names(names[0].get<std::string>())) return names[1].get<std::string>();
  return std::nullopt;
}

// A WHERE clause made only of block_num comparisons with integer constants joined
// by AND: narrows [lo, hi]. False for anything else.
bool BlockRangeOf(const nlohmann::json& e, const TableRef& table, __int128* lo, __int128* hi) {
  const std::string cls = e.value("class", "");
  const std::string type = e.value("type", "");
  auto is_block_num = [&](const nlohmann::json& x) {
    auto name = ColumnRefName(x, table);
    return name && EqualsIgnoreCase(*name, "block_num");
  };
  if (cls == "CONJUNCTION" && type == "CONJUNCTION_AND") {
    for (const auto& child : e.at("children")) {
      if (!BlockRangeOf(child, table, lo, hi)) return false;
    }
    return true;
  }
  if (cls == "COMPARISON") {
    const auto& l = e.at("left");
    const auto& r = e.at("right");
    if (is_block_num(l)) {
      auto c = IntegerConstantOf(r);
      return c && NarrowByComparison(type, *c, false, lo, hi);
    }
    if (is_block_num(r)) {
      auto c = IntegerConstantOf(l);
      return c && NarrowByComparison(type, *c, true, lo, hi);
    }
    return false;
  }
  if (cls == "BETWEEN" && type == "COMPARE_BETWEEN" && is_block_num(e.at("input"))) {
    auto a = IntegerConstantOf(e.at("lower"));
    auto b = IntegerConstantOf(e.at("upper"));
    if (!a || !b) return false;
    *lo = std::max(*lo, *a);
    *hi = std::min(*hi, *b);
    return true;
  }
  return false;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The bytes of a BLOB constant as DuckDB prints them: `\xHH` escapes and other
// characters as themselves (a backslash otherwise: not handled).
std::optional<std::string> BlobLiteral(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 3 >= text.size()) return std::nullopt;
    if (text[i + 1] != 'x' && text[i + 1] != 'X') return std::nullopt;
    int a = HexDigit(text[i + 2]);
    int b = HexDigit(text[i + 3]);
    if (a < 0 || b < 0) return std::nullopt;
    out.push_back(static_cast<char>(a * 16 + b));
    i += 3;
  }
  return out;
}

// The value of a BLOB constant expression: a BLOB constant, `'…'::BLOB`, or
// from_hex/unhex of an even-length string of hex digits (other forms: DuckDB).
std::optional<std::string> BlobConstant(const nlohmann::json& e) {
  const std::string cls = e.value("class", "");
  auto string_constant = [](const nlohmann::json& c, const char* type) -> std::optional<std::string> {
    if (c.value("class", "") != "CONSTANT") return std::nullopt;
    const auto& v = c.at("value");
    if (v.value("is_null", true) || v.at("type").value("id", "") != type) return std::nullopt;
    if (!v.at("value").is_string()) return std::nullopt;
    return v.at("value").get<std::string>();
  };
  if (cls == "CONSTANT") {
    auto text = string_constant(e, "BLOB");
    return text ? BlobLiteral(*text) : std::nullopt;
  }
  if (cls == "CAST" && e.at("cast_type").value("id", "") == "BLOB" && !e.value("try_cast", false)) {
    auto text = string_constant(e.at("child"), "VARCHAR");
    return text ? BlobLiteral(*text) : std::nullopt;
  }
  if (cls == "FUNCTION") {
    const std::string fn = Lower(e.value("function_name", ""));
    if ((fn != "from_hex" && fn != "unhex") || !e.value("schema", "").empty() ||
        e.at("children").size() != 1 || !IsNullOrEmpty(e, "filter") || e.value("distinct", false) ||
        !e.at("order_bys").at("orders").empty()) {
      return std::nullopt;
    }
    auto text = string_constant(e.at("children")[0], "VARCHAR");
    if (!text || text->size() % 2 != 0) return std::nullopt;
    std::string out;
    for (size_t i = 0; i < text->size(); i += 2) {
      int a = HexDigit((*text)[i]);
      int b = HexDigit((*text)[i + 1]);
      if (a < 0 || b < 0) return std::nullopt;
      out.push_back(static_cast<char>(a * 16 + b));
    }
    return out;
  }
  return std::nullopt;
}

// `column = <BLOB constant>` (either side) or an OR of such: the clause's
// equalities. `column_of` resolves a column reference to a fixed-size binary
// column of the table (nullopt: not one).
bool EqualityClauseOf(const nlohmann::json& e,
                      const std::function<std::optional<std::string>(const nlohmann::json&)>& column_of,
                      std::vector<ScanEquality>* out) {
  const std::string cls = e.value("class", "");
  const std::string type = e.value("type", "");
  if (cls == "CONJUNCTION" && type == "CONJUNCTION_OR") {
    for (const auto& child : e.at("children")) {
      if (!EqualityClauseOf(child, column_of, out)) return false;
    }
    return true;
  }
  if (cls != "COMPARISON" || type != "COMPARE_EQUAL") return false;
  for (const auto& [col, val] : {std::pair{"left", "right"}, std::pair{"right", "left"}}) {
    auto column = column_of(e.at(col));
    if (!column) continue;
    auto value = BlobConstant(e.at(val));
    if (!value) return false;
    out->push_back({*column, *value});
    return true;
  }
  return false;
}

}  // namespace

std::optional<ScanPlan> PlainScanOf(
    const nlohmann::json& tree, const std::string& catalog,
    const std::map<std::string, std::shared_ptr<const storage::Snapshot>>& snapshots) {
  try {
    const auto& statements = tree.at("statements");
    if (statements.size() != 1) return std::nullopt;
    const auto& node = statements[0].at("node");
    if (node.value("type", "") != "SELECT_NODE") return std::nullopt;
    for (const char* key : {"modifiers", "group_expressions", "group_sets", "having", "sample",
                            "qualify"}) {
      if (!IsNullOrEmpty(node, key)) return std::nullopt;
    }
    if (!node.at("cte_map").at("map").empty()) return std::nullopt;
    if (node.value("aggregate_handling", "") != "STANDARD_HANDLING") return std::nullopt;
    const auto& from = node.at("from_table");
    if (from.value("type", "") != "BASE_TABLE") return std::nullopt;
    for (const char* key : {"sample", "column_name_alias", "at_clause"}) {
      if (!IsNullOrEmpty(from, key)) return std::nullopt;
    }
    const std::string catalog_name = from.value("catalog_name", "");
    if (!catalog_name.empty() && !EqualsIgnoreCase(catalog_name, catalog)) return std::nullopt;
    // The dataset and table, as the store spells them.
    ScanPlan plan;
    const storage::TableDef* def = nullptr;
    for (const auto& [name, snap] : snapshots) {
      if (!EqualsIgnoreCase(name, from.value("schema_name", ""))) continue;
      for (const auto& t : snap->tables) {
        if (EqualsIgnoreCase(t.name, from.value("table_name", ""))) {
          plan.dataset = name;
          plan.table = t.name;
          def = &t;
        }
      }
    }
    if (def == nullptr) return std::nullopt;
    TableRef table{from.value("table_name", ""), from.value("alias", "")};
    auto column_named = [&](const std::string& name) -> std::optional<std::string> {
      for (const auto& f : def->schema->fields()) {
        if (EqualsIgnoreCase(f->name(), name)) return f->name();
      }
      return std::nullopt;
    };
    // A column reference to the table's column: its name and stored type.
    ScanColumnOf column_of = [&](const nlohmann::json& x)
        -> std::optional<std::pair<std::string, std::shared_ptr<arrow::DataType>>> {
      auto name = ColumnRefName(x, table);
      if (!name) return std::nullopt;
      auto column = column_named(*name);
      if (!column) return std::nullopt;
      return std::pair{*column, def->schema->GetFieldByName(*column)->type()};
    };
    std::vector<std::optional<arrow::compute::Expression>> computed;
    for (const auto& item : node.at("select_list")) {
      const std::string cls = item.value("class", "");
      if (cls == "STAR") {
        for (const char* key : {"exclude_list", "replace_list", "columns", "expr",
                                "qualified_exclude_list", "rename_list"}) {
          if (!IsNullOrEmpty(item, key)) return std::nullopt;
        }
        const std::string rel = item.value("relation_name", "");
        if (!rel.empty() && !table.Names(rel)) return std::nullopt;
        for (const auto& f : def->schema->fields()) plan.columns.push_back(f->name());
      } else if (cls == "COLUMN_REF") {
        auto name = ColumnRefName(item, table);
        if (!name) return std::nullopt;
        auto column = column_named(*name);
        if (!column) return std::nullopt;
        plan.columns.push_back(*column);
      } else {
        auto expression = ComputedOf(item, column_of);
        if (!expression) return std::nullopt;
        computed.resize(plan.columns.size());
        computed.push_back(std::move(*expression));
        plan.columns.emplace_back();
      }
    }
    if (plan.columns.empty()) return std::nullopt;
    if (!computed.empty()) {
      computed.resize(plan.columns.size());
      plan.computed = std::move(computed);
    }
    const auto& where = node.at("where_clause");
    if (!where.is_null()) {
      __int128 lo = 0;
      __int128 hi = UINT64_MAX;
      auto binary_column = [&](const nlohmann::json& x) -> std::optional<std::string> {
        auto name = ColumnRefName(x, table);
        if (!name) return std::nullopt;
        auto column = column_named(*name);
        if (!column) return std::nullopt;
        if (def->schema->GetFieldByName(*column)->type()->id() != arrow::Type::FIXED_SIZE_BINARY) {
          return std::nullopt;
        }
        return column;
      };
      // AND of terms: block_num ranges and equality clauses.
      std::vector<const nlohmann::json*> terms;
      if (where.value("class", "") == "CONJUNCTION" &&
          where.value("type", "") == "CONJUNCTION_AND") {
        for (const auto& child : where.at("children")) terms.push_back(&child);
      } else {
        terms.push_back(&where);
      }
      for (const auto* term : terms) {
        if (BlockRangeOf(*term, table, &lo, &hi)) continue;
        if (auto range = RangeOf(*term, column_of)) {
          plan.ranges.push_back(std::move(*range));
          continue;
        }
        std::vector<ScanEquality> clause;
        if (!EqualityClauseOf(*term, binary_column, &clause)) return std::nullopt;
        plan.match.push_back(std::move(clause));
      }
      if (lo > hi || hi < 0 || lo > static_cast<__int128>(UINT64_MAX)) {
        plan.lo = 1;
        plan.hi = 0;  // no rows
      } else {
        plan.lo = static_cast<uint64_t>(std::max<__int128>(lo, 0));
        plan.hi = static_cast<uint64_t>(std::min<__int128>(hi, UINT64_MAX));
      }
    }
    return plan;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a tree of another shape: DuckDB answers
  }
}


}  // namespace sluice::sql
