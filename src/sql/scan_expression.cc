// Expressions a direct scan evaluates itself (sql/scan_expression.h).
#include "sql/scan_expression.h"

#include <limits>
#include <map>
#include <set>

#include "arrow/array/util.h"
#include "arrow/compute/api.h"
#include "arrow/compute/exec.h"
#include "arrow/scalar.h"
#include "sql/scan_memory.h"

namespace sluice::sql {

namespace {

namespace cp = arrow::compute;

// An expression as it is being built: a DOUBLE value over the table's columns, a
// constant (the double DuckDB converts it to), or a column usable only under CAST
// (an integer or a string).
struct Typed {
  enum class Kind { kDouble, kConstant, kCastable };
  Kind kind;
  cp::Expression expression;
};

// A function call of the parse tree with nothing but children (no FILTER,
// DISTINCT, ORDER BY or schema).
bool IsPlainOperator(const nlohmann::json& e) {
  if (e.value("class", "") != "FUNCTION" || !e.value("schema", "").empty()) return false;
  if (!e.value("is_operator", false) || e.value("distinct", false) ||
      e.value("export_state", false)) {
    return false;
  }
  auto filter = e.find("filter");
  if (filter != e.end() && !filter->is_null()) return false;
  auto order_bys = e.find("order_bys");
  if (order_bys != e.end() && !order_bys->at("orders").empty()) return false;
  return true;
}

// A numeric constant as the double DuckDB makes of it when the other operand is
// DOUBLE: a DOUBLE as it is, an integer converted (rounded to nearest), a DECIMAL
// as unscaled / 10^scale, both exact (|unscaled| < 2^53, scale <= 22).
std::optional<double> DoubleConstant(const nlohmann::json& e) {
  if (e.value("class", "") != "CONSTANT") return std::nullopt;
  const auto& v = e.at("value");
  if (v.value("is_null", true)) return std::nullopt;
  const std::string id = v.at("type").value("id", "");
  const auto& n = v.at("value");
  if (id == "DOUBLE") {
    if (!n.is_number()) return std::nullopt;
    return n.get<double>();
  }
  if (auto i = IntegerConstantOf(e)) return static_cast<double>(*i);
  if (id == "DECIMAL") {
    const auto& info = v.at("type").at("type_info");
    const int width = info.value("width", 0);
    const int scale = info.value("scale", -1);
    if (width > 18 || scale < 0 || scale > 22 || !n.is_number_integer()) return std::nullopt;
    const int64_t unscaled = n.get<int64_t>();
    if (unscaled > (int64_t{1} << 53) || unscaled < -(int64_t{1} << 53)) return std::nullopt;
    double p = 1;
    for (int k = 0; k < scale; ++k) p *= 10;  // exact up to 10^22
    return static_cast<double>(unscaled) / p;
  }
  return std::nullopt;
}

std::optional<Typed> Build(const nlohmann::json& e, const ScanColumnOf& column_of) {
  const std::string cls = e.value("class", "");
  if (cls == "COLUMN_REF") {
    auto column = column_of(e);
    if (!column) return std::nullopt;
    const auto& [name, type] = *column;
    if (type->id() == arrow::Type::DOUBLE) {
      return Typed{Typed::Kind::kDouble, cp::field_ref(name)};
    }
    if (arrow::is_integer(type->id()) || type->id() == arrow::Type::STRING) {
      return Typed{Typed::Kind::kCastable, cp::field_ref(name)};
    }
    return std::nullopt;
  }
  if (cls == "CONSTANT") {
    auto c = DoubleConstant(e);
    if (!c) return std::nullopt;
    return Typed{Typed::Kind::kConstant, cp::literal(*c)};
  }
  if (cls == "CAST") {
    if (e.value("try_cast", false)) return std::nullopt;
    const auto& to = e.at("cast_type");
    if (to.value("id", "") != "DOUBLE" || !to.at("type_info").is_null()) return std::nullopt;
    auto child = Build(e.at("child"), column_of);
    if (!child) return std::nullopt;
    if (child->kind != Typed::Kind::kCastable) return child;  // already a DOUBLE
    // Integers convert rounded to nearest, as DuckDB's cast (not an error above
    // 2^53); strings are parsed (an unparsable one fails the query, as in DuckDB).
    auto options = cp::CastOptions::Safe(arrow::float64());
    options.allow_float_truncate = true;
    return Typed{Typed::Kind::kDouble, cp::call("cast", {child->expression}, options)};
  }
  if (IsPlainOperator(e)) {
    static const std::map<std::string, std::string> kBinary = {
        {"+", "add"}, {"-", "subtract"}, {"*", "multiply"}, {"/", "divide"}};
    const std::string fn = e.value("function_name", "");
    const auto& children = e.at("children");
    std::vector<Typed> args;
    for (const auto& c : children) {
      auto a = Build(c, column_of);
      if (!a || a->kind == Typed::Kind::kCastable) return std::nullopt;
      args.push_back(std::move(*a));
    }
    bool any_double = false;
    for (const auto& a : args) any_double |= a.kind == Typed::Kind::kDouble;
    if (!any_double) return std::nullopt;  // constants only: DuckDB folds them
    if (fn == "-" && args.size() == 1) {
      return Typed{Typed::Kind::kDouble, cp::call("negate", {args[0].expression})};
    }
    auto it = kBinary.find(fn);
    if (it == kBinary.end() || args.size() != 2) return std::nullopt;
    return Typed{Typed::Kind::kDouble,
                 cp::call(it->second, {args[0].expression, args[1].expression})};
  }
  return std::nullopt;
}

}  // namespace

std::optional<__int128> IntegerConstantOf(const nlohmann::json& e) {
  if (e.value("class", "") != "CONSTANT") return std::nullopt;
  const auto& v = e.at("value");
  if (v.value("is_null", true)) return std::nullopt;
  static const std::set<std::string> kIntegers = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT",
                                                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"};
  if (!kIntegers.count(v.at("type").value("id", ""))) return std::nullopt;
  const auto& n = v.at("value");
  if (n.is_number_unsigned()) return static_cast<__int128>(n.get<uint64_t>());
  if (n.is_number_integer()) return static_cast<__int128>(n.get<int64_t>());
  return std::nullopt;
}

bool NarrowByComparison(const std::string& type, __int128 c, bool flipped, __int128* lo,
                        __int128* hi) {
  static const std::map<std::string, std::string> kFlip = {
      {"COMPARE_EQUAL", "COMPARE_EQUAL"},
      {"COMPARE_LESSTHAN", "COMPARE_GREATERTHAN"},
      {"COMPARE_GREATERTHAN", "COMPARE_LESSTHAN"},
      {"COMPARE_LESSTHANOREQUALTO", "COMPARE_GREATERTHANOREQUALTO"},
      {"COMPARE_GREATERTHANOREQUALTO", "COMPARE_LESSTHANOREQUALTO"}};
  auto it = kFlip.find(type);
  if (it == kFlip.end()) return false;
  const std::string& op = flipped ? it->second : it->first;
  if (op == "COMPARE_EQUAL") {
    *lo = std::max(*lo, c);
    *hi = std::min(*hi, c);
  } else if (op == "COMPARE_LESSTHAN") {
    *hi = std::min(*hi, c - 1);
  } else if (op == "COMPARE_LESSTHANOREQUALTO") {
    *hi = std::min(*hi, c);
  } else if (op == "COMPARE_GREATERTHAN") {
    *lo = std::max(*lo, c + 1);
  } else {
    *lo = std::max(*lo, c);
  }
  return true;
}

std::optional<arrow::compute::Expression> ComputedOf(const nlohmann::json& item,
                                                     const ScanColumnOf& column_of) {
  try {
    auto typed = Build(item, column_of);
    if (!typed || typed->kind != Typed::Kind::kDouble) return std::nullopt;
    return typed->expression;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::optional<ScanRange> RangeOf(const nlohmann::json& term, const ScanColumnOf& column_of) {
  try {
    auto integer_column = [&](const nlohmann::json& x) -> std::optional<std::string> {
      if (x.value("class", "") != "COLUMN_REF") return std::nullopt;
      auto column = column_of(x);
      if (!column || !arrow::is_integer(column->second->id())) return std::nullopt;
      return column->first;
    };
    ScanRange range;
    __int128 lo = range.lo;
    __int128 hi = range.hi;
    const std::string cls = term.value("class", "");
    if (cls == "COMPARISON") {
      for (const auto& [col, val, flipped] :
           {std::tuple{"left", "right", false}, std::tuple{"right", "left", true}}) {
        auto name = integer_column(term.at(col));
        if (!name) continue;
        auto c = IntegerConstantOf(term.at(val));
        if (!c || !NarrowByComparison(term.value("type", ""), *c, flipped, &lo, &hi)) {
          return std::nullopt;
        }
        range.column = *name;
        break;
      }
    } else if (cls == "BETWEEN" && term.value("type", "") == "COMPARE_BETWEEN") {
      auto name = integer_column(term.at("input"));
      auto a = IntegerConstantOf(term.at("lower"));
      auto b = IntegerConstantOf(term.at("upper"));
      if (!name || !a || !b) return std::nullopt;
      range.column = *name;
      lo = std::max(lo, *a);
      hi = std::min(hi, *b);
    }
    if (range.column.empty()) return std::nullopt;
    range.lo = lo;
    range.hi = hi;
    return range;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

arrow::Result<std::shared_ptr<arrow::Array>> RangeMask(const std::shared_ptr<arrow::Array>& column,
                                                       __int128 lo, __int128 hi) {
  const auto& type = column->type();
  if (!arrow::is_integer(type->id())) {
    return arrow::Status::Invalid("direct scan: range over ", type->ToString());
  }
  // The type's own bounds: a bound beyond them restricts nothing, and a range
  // outside them holds no value.
  __int128 type_min = 0;
  __int128 type_max = 0;
  if (arrow::is_unsigned_integer(type->id())) {
    type_max = static_cast<__int128>(
        std::numeric_limits<uint64_t>::max() >> (64 - 8 * type->byte_width()));
  } else {
    type_max = static_cast<__int128>(
        std::numeric_limits<int64_t>::max() >> (64 - 8 * type->byte_width()));
    type_min = -type_max - 1;
  }
  cp::ExecContext context(ScanMemoryPool());
  auto scalar = [&](__int128 v) -> arrow::Result<std::shared_ptr<arrow::Scalar>> {
    // v lies within the type's bounds: exact in int64 or uint64, then cast.
    std::shared_ptr<arrow::Scalar> wide =
        v < 0 ? std::static_pointer_cast<arrow::Scalar>(
                    std::make_shared<arrow::Int64Scalar>(static_cast<int64_t>(v)))
              : std::static_pointer_cast<arrow::Scalar>(
                    std::make_shared<arrow::UInt64Scalar>(static_cast<uint64_t>(v)));
    return wide->CastTo(type);
  };
  if (lo > hi || lo > type_max || hi < type_min) {
    // No value qualifies.
    return arrow::MakeArrayFromScalar(arrow::BooleanScalar(false), column->length(),
                                      ScanMemoryPool());
  }
  std::optional<arrow::Datum> mask;
  if (lo > type_min) {
    ARROW_ASSIGN_OR_RAISE(auto s, scalar(lo));
    ARROW_ASSIGN_OR_RAISE(mask, cp::CallFunction("greater_equal", {column, s}, &context));
  }
  if (hi < type_max) {
    ARROW_ASSIGN_OR_RAISE(auto s, scalar(hi));
    ARROW_ASSIGN_OR_RAISE(auto le, cp::CallFunction("less_equal", {column, s}, &context));
    if (mask) {
      ARROW_ASSIGN_OR_RAISE(mask, cp::CallFunction("and", {*mask, le}, &context));
    } else {
      mask = std::move(le);
    }
  }
  if (!mask) {
    // Every value qualifies: true where valid, null where null.
    ARROW_ASSIGN_OR_RAISE(auto ge, scalar(type_min));
    ARROW_ASSIGN_OR_RAISE(mask, cp::CallFunction("greater_equal", {column, ge}, &context));
  }
  return mask->make_array();
}

arrow::Result<std::shared_ptr<arrow::Array>> EvaluateComputed(const cp::Expression& bound,
                                                              const arrow::RecordBatch& batch) {
  cp::ExecContext context(ScanMemoryPool());
  ARROW_ASSIGN_OR_RAISE(auto datum,
                        cp::ExecuteScalarExpression(bound, cp::ExecBatch(batch), &context));
  if (datum.is_array()) return datum.make_array();
  if (datum.is_scalar()) {
    return arrow::MakeArrayFromScalar(*datum.scalar(), batch.num_rows(), ScanMemoryPool());
  }
  return arrow::Status::Invalid("direct scan: an expression gave ", datum.ToString());
}

}  // namespace sluice::sql
