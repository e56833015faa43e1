#include "http/json_lines.h"

#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "arrow/array.h"
#include "arrow/extension_type.h"
#include "arrow/scalar.h"
#include "arrow/type.h"
#include "arrow/util/float16.h"

namespace sluice::http {

namespace {

template <typename T>
void AppendInteger(T v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out->append(buf, end);
  }
}

void AppendHex(std::string_view bytes, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out->reserve(out->size() + 4 + 2 * bytes.size());
  out->append("\"0x");
  for (unsigned char c : bytes) {
    out->push_back(kDigits[c >> 4]);
    out->push_back(kDigits[c & 0xf]);
  }
  out->push_back('"');
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Days since 1970-01-01 -> proleptic Gregorian year, month, day (H. Hinnant's
// civil_from_days).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

void AppendDate(int64_t days, std::string* out) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[32];
  int n = std::snprintf(buf, sizeof(buf), "%04" PRId64 "-%02u-%02u", y, m, d);
  out->append(buf, static_cast<size_t>(n));
}

// Seconds of the day and a fraction of `digits` digits (omitted when 0).
void AppendTimeOfDay(int64_t seconds, int64_t fraction, int digits, std::string* out) {
  char buf[32];
  int n = std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d", static_cast<int>(seconds / 3600),
                        static_cast<int>(seconds / 60 % 60), static_cast<int>(seconds % 60));
  out->append(buf, static_cast<size_t>(n));
  if (digits > 0 && fraction != 0) {
    n = std::snprintf(buf, sizeof(buf), ".%0*" PRId64, digits, fraction);
    out->append(buf, static_cast<size_t>(n));
  }
}

// Units per second and fraction digits of a time unit.
std::pair<int64_t, int> UnitScale(arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      return {1, 0};
    case arrow::TimeUnit::MILLI:
      return {1000, 3};
    case arrow::TimeUnit::MICRO:
      return {1000000, 6};
    case arrow::TimeUnit::NANO:
      return {1000000000, 9};
  }
  return {1, 0};
}

void AppendTimestamp(int64_t value, arrow::TimeUnit::type unit, std::string* out) {
  auto [per_second, digits] = UnitScale(unit);
  const int64_t seconds = FloorDiv(value, per_second);
  const int64_t fraction = value - seconds * per_second;
  const int64_t days = FloorDiv(seconds, 86400);
  out->push_back('"');
  AppendDate(days, out);
  out->push_back('T');
  AppendTimeOfDay(seconds - days * 86400, fraction, digits, out);
  out->append("Z\"");
}

void AppendTime(int64_t value, arrow::TimeUnit::type unit, std::string* out) {
  auto [per_second, digits] = UnitScale(unit);
  const int64_t seconds = FloorDiv(value, per_second);
  out->push_back('"');
  AppendTimeOfDay(seconds, value - seconds * per_second, digits, out);
  out->push_back('"');
}

template <typename ListArrayType>
void AppendList(const ListArrayType& a, int64_t i, std::string* out) {
  const auto& values = *a.values();
  const int64_t begin = a.value_offset(i);
  const int64_t end = begin + a.value_length(i);
  out->push_back('[');
  for (int64_t k = begin; k < end; ++k) {
    if (k > begin) out->push_back(',');
    AppendJsonValue(values, k, out);
  }
  out->push_back(']');
}

void AppendMap(const arrow::MapArray& a, int64_t i, std::string* out) {
  const auto& keys = *a.keys();
  const auto& items = *a.items();
  const int64_t begin = a.value_offset(i);
  const int64_t end = begin + a.value_length(i);
  out->push_back('{');
  std::string key;
  for (int64_t k = begin; k < end; ++k) {
    if (k > begin) out->push_back(',');
    key.clear();
    AppendJsonValue(keys, k, &key);
    if (!key.empty() && key.front() == '"') {
      out->append(key);
    } else {
      AppendJsonString(key, out);
    }
    out->push_back(':');
    AppendJsonValue(items, k, out);
  }
  out->push_back('}');
}

void AppendStruct(const arrow::StructArray& a, int64_t i, std::string* out) {
  out->push_back('{');
  const auto& type = *a.struct_type();
  for (int f = 0; f < type.num_fields(); ++f) {
    if (f > 0) out->push_back(',');
    AppendJsonString(type.field(f)->name(), out);
    out->push_back(':');
    AppendJsonValue(*a.field(f), i, out);
  }
  out->push_back('}');
}

void AppendFallback(const arrow::Array& a, int64_t i, std::string* out) {
  auto scalar = a.GetScalar(i);
  if (!scalar.ok()) {
    out->append("null");
    return;
  }
  AppendJsonString((*scalar)->ToString(), out);
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of characters that need no escape
  for (size_t k = 0; k < s.size(); ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, k - run);
    run = k + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        out->append("\\u00");
        out->push_back(kDigits[c >> 4]);
        out->push_back(kDigits[c & 0xf]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendJsonValue(const arrow::Array& a, int64_t i, std::string* out) {
  if (a.IsNull(i)) {
    out->append("null");
    return;
  }
  using T = arrow::Type;
  switch (a.type_id()) {
    case T::NA:
      out->append("null");
      return;
    case T::BOOL:
      out->append(static_cast<const arrow::BooleanArray&>(a).Value(i) ? "true" : "false");
      return;
    case T::INT8:
      return AppendInteger(static_cast<const arrow::Int8Array&>(a).Value(i), out);
    case T::INT16:
      return AppendInteger(static_cast<const arrow::Int16Array&>(a).Value(i), out);
    case T::INT32:
      return AppendInteger(static_cast<const arrow::Int32Array&>(a).Value(i), out);
    case T::INT64:
      return AppendInteger(static_cast<const arrow::Int64Array&>(a).Value(i), out);
    case T::UINT8:
      return AppendInteger(static_cast<const arrow::UInt8Array&>(a).Value(i), out);
    case T::UINT16:
      return AppendInteger(static_cast<const arrow::UInt16Array&>(a).Value(i), out);
    case T::UINT32:
      return AppendInteger(static_cast<const arrow::UInt32Array&>(a).Value(i), out);
    case T::UINT64:
      return AppendInteger(static_cast<const arrow::UInt64Array&>(a).Value(i), out);
    case T::HALF_FLOAT:
      return AppendDouble(
          arrow::util::Float16::FromBits(static_cast<const arrow::HalfFloatArray&>(a).Value(i))
              .ToDouble(),
          out);
    case T::FLOAT:
      // Via float's own shortest form, so 0.1f reads "0.1", not 0.10000000149011612.
      {
        char buf[32];
        float v = static_cast<const arrow::FloatArray&>(a).Value(i);
        if (!std::isfinite(v)) return AppendDouble(v, out);
        auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
        out->append(buf, end);
        return;
      }
    case T::DOUBLE:
      return AppendDouble(static_cast<const arrow::DoubleArray&>(a).Value(i), out);
    case T::DECIMAL32:
      out->append(static_cast<const arrow::Decimal32Array&>(a).FormatValue(i));
      return;
    case T::DECIMAL64:
      out->append(static_cast<const arrow::Decimal64Array&>(a).FormatValue(i));
      return;
    case T::DECIMAL128:
      out->append(static_cast<const arrow::Decimal128Array&>(a).FormatValue(i));
      return;
    case T::DECIMAL256:
      out->append(static_cast<const arrow::Decimal256Array&>(a).FormatValue(i));
      return;
    case T::STRING:
      return AppendJsonString(static_cast<const arrow::StringArray&>(a).GetView(i), out);
    case T::LARGE_STRING:
      return AppendJsonString(static_cast<const arrow::LargeStringArray&>(a).GetView(i), out);
    case T::STRING_VIEW:
      return AppendJsonString(static_cast<const arrow::StringViewArray&>(a).GetView(i), out);
    case T::BINARY:
      return AppendHex(static_cast<const arrow::BinaryArray&>(a).GetView(i), out);
    case T::LARGE_BINARY:
      return AppendHex(static_cast<const arrow::LargeBinaryArray&>(a).GetView(i), out);
    case T::BINARY_VIEW:
      return AppendHex(static_cast<const arrow::BinaryViewArray&>(a).GetView(i), out);
    case T::FIXED_SIZE_BINARY:
      return AppendHex(static_cast<const arrow::FixedSizeBinaryArray&>(a).GetView(i), out);
    case T::DATE32:
      out->push_back('"');
      AppendDate(static_cast<const arrow::Date32Array&>(a).Value(i), out);
      out->push_back('"');
      return;
    case T::DATE64:
      out->push_back('"');
      AppendDate(FloorDiv(static_cast<const arrow::Date64Array&>(a).Value(i), 86400000), out);
      out->push_back('"');
      return;
    case T::TIMESTAMP: {
      const auto& type = static_cast<const arrow::TimestampType&>(*a.type());
      return AppendTimestamp(static_cast<const arrow::TimestampArray&>(a).Value(i), type.unit(),
                             out);
    }
    case T::TIME32: {
      const auto& type = static_cast<const arrow::Time32Type&>(*a.type());
      return AppendTime(static_cast<const arrow::Time32Array&>(a).Value(i), type.unit(), out);
    }
    case T::TIME64: {
      const auto& type = static_cast<const arrow::Time64Type&>(*a.type());
      return AppendTime(static_cast<const arrow::Time64Array&>(a).Value(i), type.unit(), out);
    }
    case T::DURATION:
      return AppendInteger(static_cast<const arrow::DurationArray&>(a).Value(i), out);
    case T::INTERVAL_MONTHS:
      out->append("{\"months\":");
      AppendInteger(static_cast<const arrow::MonthIntervalArray&>(a).Value(i), out);
      out->push_back('}');
      return;
    case T::INTERVAL_DAY_TIME: {
      auto v = static_cast<const arrow::DayTimeIntervalArray&>(a).GetValue(i);
      out->append("{\"days\":");
      AppendInteger(v.days, out);
      out->append(",\"milliseconds\":");
      AppendInteger(v.milliseconds, out);
      out->push_back('}');
      return;
    }
    case T::INTERVAL_MONTH_DAY_NANO: {
      auto v = static_cast<const arrow::MonthDayNanoIntervalArray&>(a).GetValue(i);
      out->append("{\"months\":");
      AppendInteger(v.months, out);
      out->append(",\"days\":");
      AppendInteger(v.days, out);
      out->append(",\"nanoseconds\":");
      AppendInteger(v.nanoseconds, out);
      out->push_back('}');
      return;
    }
    case T::LIST:
      return AppendList(static_cast<const arrow::ListArray&>(a), i, out);
    case T::LARGE_LIST:
      return AppendList(static_cast<const arrow::LargeListArray&>(a), i, out);
    case T::LIST_VIEW:
      return AppendList(static_cast<const arrow::ListViewArray&>(a), i, out);
    case T::LARGE_LIST_VIEW:
      return AppendList(static_cast<const arrow::LargeListViewArray&>(a), i, out);
    case T::FIXED_SIZE_LIST:
      return AppendList(static_cast<const arrow::FixedSizeListArray&>(a), i, out);
    case T::MAP:
      return AppendMap(static_cast<const arrow::MapArray&>(a), i, out);
    case T::STRUCT:
      return AppendStruct(static_cast<const arrow::StructArray&>(a), i, out);
    case T::SPARSE_UNION: {
      const auto& u = static_cast<const arrow::SparseUnionArray&>(a);
      return AppendJsonValue(*u.field(u.child_id(i)), i, out);
    }
    case T::DENSE_UNION: {
      const auto& u = static_cast<const arrow::DenseUnionArray&>(a);
      return AppendJsonValue(*u.field(u.child_id(i)), u.value_offset(i), out);
    }
    case T::DICTIONARY: {
      const auto& d = static_cast<const arrow::DictionaryArray&>(a);
      return AppendJsonValue(*d.dictionary(), d.GetValueIndex(i), out);
    }
    case T::EXTENSION:
      return AppendJsonValue(*static_cast<const arrow::ExtensionArray&>(a).storage(), i, out);
    default:
      return AppendFallback(a, i, out);
  }
}

JsonLinesEncoder::JsonLinesEncoder(const arrow::Schema& schema) {
  for (int c = 0; c < schema.num_fields(); ++c) {
    std::string key = c == 0 ? "{" : ",";
    AppendJsonString(schema.field(c)->name(), &key);
    key.push_back(':');
    keys_.push_back(std::move(key));
  }
}

void JsonLinesEncoder::Append(const arrow::RecordBatch& batch, int64_t begin, int64_t end,
                              std::string* out) const {
  const int n = batch.num_columns();
  std::vector<const arrow::Array*> columns(n);
  for (int c = 0; c < n; ++c) columns[c] = batch.column(c).get();  // owned by the batch
  for (int64_t row = begin; row < end; ++row) {
    if (n == 0) out->push_back('{');
    for (int c = 0; c < n; ++c) {
      out->append(keys_[c]);
      AppendJsonValue(*columns[c], row, out);
    }
    out->append("}\n");
  }
}

}  // namespace sluice::http
