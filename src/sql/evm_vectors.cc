#include "sql/evm_vectors.h"

#include <charconv>
#include <cmath>
#include <memory>
#include <vector>

#include "common/hex.h"

namespace sluice::sql {

namespace {

// How an integer type's values are held (see the table in the header).
enum class Repr { kU8, kU16, kU32, kU64, kI8, kI16, kI32, kI64, kHuge, kText };

Repr IntRepr(const AbiType& t) {
  if (t.kind == AbiKind::kUint) {
    if (t.bits <= 8) return Repr::kU8;
    if (t.bits <= 16) return Repr::kU16;
    if (t.bits <= 32) return Repr::kU32;
    if (t.bits <= 64) return Repr::kU64;
    if (t.bits <= 120) return Repr::kHuge;  // uint128 exceeds HUGEINT's 2^127 - 1
    return Repr::kText;
  }
  if (t.bits <= 8) return Repr::kI8;
  if (t.bits <= 16) return Repr::kI16;
  if (t.bits <= 32) return Repr::kI32;
  if (t.bits <= 64) return Repr::kI64;
  if (t.bits <= 128) return Repr::kHuge;
  return Repr::kText;
}

duckdb_type IntDuckType(Repr r) {
  switch (r) {
    case Repr::kU8:
      return DUCKDB_TYPE_UTINYINT;
    case Repr::kU16:
      return DUCKDB_TYPE_USMALLINT;
    case Repr::kU32:
      return DUCKDB_TYPE_UINTEGER;
    case Repr::kU64:
      return DUCKDB_TYPE_UBIGINT;
    case Repr::kI8:
      return DUCKDB_TYPE_TINYINT;
    case Repr::kI16:
      return DUCKDB_TYPE_SMALLINT;
    case Repr::kI32:
      return DUCKDB_TYPE_INTEGER;
    case Repr::kI64:
      return DUCKDB_TYPE_BIGINT;
    case Repr::kHuge:
      return DUCKDB_TYPE_HUGEINT;
    case Repr::kText:
      return DUCKDB_TYPE_VARCHAR;
  }
  return DUCKDB_TYPE_VARCHAR;
}

void SetInvalid(duckdb_vector v, idx_t row) {
  duckdb_vector_ensure_validity_writable(v);
  duckdb_validity_set_row_invalid(duckdb_vector_get_validity(v), row);
}

template <typename T>
void Put(duckdb_vector v, idx_t row, T value) {
  static_cast<T*>(duckdb_vector_get_data(v))[row] = value;
}

void PutBytes(duckdb_vector v, idx_t row, const void* p, size_t n) {
  duckdb_vector_assign_string_element_len(v, row, static_cast<const char*>(p), n);
}

std::string QuoteName(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// ---- reading ------------------------------------------------------------------------

std::string_view StringAt(duckdb_vector in, idx_t row) {
  auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(in));
  return std::string_view(duckdb_string_t_data(&data[row]), duckdb_string_t_length(data[row]));
}

template <typename T>
T ValueAt(duckdb_vector in, idx_t row) {
  return static_cast<const T*>(duckdb_vector_get_data(in))[row];
}

arrow::Status CannotEncode(duckdb_type id, const AbiType& t, std::string_view why = "") {
  return arrow::Status::Invalid("cannot encode a ", DuckTypeName(id), " as ", t.Canonical(),
                                why.empty() ? "" : ": ", why);
}

// An integer of any numeric SQL type, exactly; Invalid when it is not one.
arrow::Result<BigInteger> ReadInteger(duckdb_vector in, duckdb_logical_type type, idx_t row,
                                      const AbiType& t) {
  duckdb_type id = duckdb_get_type_id(type);
  auto signed_word = [](const Word256& w) { return WordToInteger(w, true); };
  switch (id) {
    case DUCKDB_TYPE_TINYINT:
      return signed_word(WordFromInt64(ValueAt<int8_t>(in, row)));
    case DUCKDB_TYPE_SMALLINT:
      return signed_word(WordFromInt64(ValueAt<int16_t>(in, row)));
    case DUCKDB_TYPE_INTEGER:
      return signed_word(WordFromInt64(ValueAt<int32_t>(in, row)));
    case DUCKDB_TYPE_BIGINT:
      return signed_word(WordFromInt64(ValueAt<int64_t>(in, row)));
    case DUCKDB_TYPE_UTINYINT:
      return WordToInteger(WordFromUint64(ValueAt<uint8_t>(in, row)), false);
    case DUCKDB_TYPE_USMALLINT:
      return WordToInteger(WordFromUint64(ValueAt<uint16_t>(in, row)), false);
    case DUCKDB_TYPE_UINTEGER:
      return WordToInteger(WordFromUint64(ValueAt<uint32_t>(in, row)), false);
    case DUCKDB_TYPE_UBIGINT:
      return WordToInteger(WordFromUint64(ValueAt<uint64_t>(in, row)), false);
    case DUCKDB_TYPE_HUGEINT: {
      auto h = ValueAt<duckdb_hugeint>(in, row);
      return signed_word(WordFromInt128(h.lower, h.upper));
    }
    case DUCKDB_TYPE_UHUGEINT: {
      auto h = ValueAt<duckdb_uhugeint>(in, row);
      return WordToInteger(WordFromUint128(h.lower, h.upper), false);
    }
    case DUCKDB_TYPE_DECIMAL: {
      __int128 raw = 0;
      switch (duckdb_decimal_internal_type(type)) {
        case DUCKDB_TYPE_SMALLINT:
          raw = ValueAt<int16_t>(in, row);
          break;
        case DUCKDB_TYPE_INTEGER:
          raw = ValueAt<int32_t>(in, row);
          break;
        case DUCKDB_TYPE_BIGINT:
          raw = ValueAt<int64_t>(in, row);
          break;
        default: {
          auto h = ValueAt<duckdb_hugeint>(in, row);
          raw = static_cast<__int128>(static_cast<unsigned __int128>(h.upper) << 64 | h.lower);
        }
      }
      __int128 scale = 1;
      for (int i = 0; i < duckdb_decimal_scale(type); ++i) scale *= 10;
      if (raw % scale != 0) return CannotEncode(id, t, "the value has a fraction");
      __int128 v = raw / scale;
      return signed_word(WordFromInt128(static_cast<uint64_t>(v), static_cast<int64_t>(v >> 64)));
    }
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE: {
      double d = id == DUCKDB_TYPE_FLOAT ? ValueAt<float>(in, row) : ValueAt<double>(in, row);
      constexpr double kExact = 9007199254740992.0;  // 2^53
      if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > kExact) {
        return CannotEncode(id, t,
                            "only integers up to 2^53 are exact in a DOUBLE; pass larger "
                            "values as text ('115792…') or HUGEINT");
      }
      return signed_word(WordFromInt64(static_cast<int64_t>(d)));
    }
    case DUCKDB_TYPE_VARCHAR: {
      auto n = ParseInteger(StringAt(in, row));
      if (!n.ok()) return CannotEncode(id, t, n.status().message());
      return *n;
    }
    default:
      return CannotEncode(id, t);
  }
}

arrow::Result<AbiBytes> ReadBytes(duckdb_vector in, duckdb_logical_type type, idx_t row,
                                  const AbiType& t) {
  duckdb_type id = duckdb_get_type_id(type);
  std::string_view s = StringAt(in, row);
  if (id == DUCKDB_TYPE_BLOB) return AbiBytes(s.begin(), s.end());
  if (id == DUCKDB_TYPE_VARCHAR) {
    auto bytes = common::FromHex(s);
    if (!bytes.ok()) return CannotEncode(id, t, "expected hex text (0x…)");
    return std::move(*bytes);
  }
  return CannotEncode(id, t);
}

}  // namespace

const char* DuckTypeName(duckdb_type id) {
  switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_DECIMAL:
      return "DECIMAL";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_LIST:
      return "LIST";
    case DUCKDB_TYPE_ARRAY:
      return "ARRAY";
    case DUCKDB_TYPE_STRUCT:
      return "STRUCT";
    case DUCKDB_TYPE_MAP:
      return "MAP";
    case DUCKDB_TYPE_BIGNUM:
      return "BIGNUM";
    case DUCKDB_TYPE_SQLNULL:
      return "NULL";
    default:
      return "value of this type";
  }
}

LogicalType DuckTypeOf(const AbiType& t) {
  LogicalType out;
  switch (t.kind) {
    case AbiKind::kAddress:
    case AbiKind::kFixedBytes:
    case AbiKind::kBytes:
      *out.out() = duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
      break;
    case AbiKind::kBool:
      *out.out() = duckdb_create_logical_type(DUCKDB_TYPE_BOOLEAN);
      break;
    case AbiKind::kUint:
    case AbiKind::kInt:
      *out.out() = duckdb_create_logical_type(IntDuckType(IntRepr(t)));
      break;
    case AbiKind::kString:
      *out.out() = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
      break;
    case AbiKind::kArray:
    case AbiKind::kFixedArray: {
      LogicalType child = DuckTypeOf(t.children[0]);
      *out.out() = duckdb_create_list_type(child.get());
      break;
    }
    case AbiKind::kTuple: {
      std::vector<LogicalType> children;
      std::vector<duckdb_logical_type> raw;
      std::vector<const char*> names;
      for (size_t i = 0; i < t.children.size(); ++i) {
        children.push_back(DuckTypeOf(t.children[i]));
        raw.push_back(children.back().get());
        names.push_back(t.names[i].c_str());
      }
      *out.out() = duckdb_create_struct_type(raw.data(), names.data(), raw.size());
      break;
    }
  }
  return out;
}

std::string DuckTypeText(const AbiType& t) {
  switch (t.kind) {
    case AbiKind::kAddress:
    case AbiKind::kFixedBytes:
    case AbiKind::kBytes:
      return "BLOB";
    case AbiKind::kBool:
      return "BOOLEAN";
    case AbiKind::kUint:
    case AbiKind::kInt:
      return DuckTypeName(IntDuckType(IntRepr(t)));
    case AbiKind::kString:
      return "VARCHAR";
    case AbiKind::kArray:
    case AbiKind::kFixedArray:
      return DuckTypeText(t.children[0]) + "[]";
    case AbiKind::kTuple: {
      std::string out = "STRUCT(";
      for (size_t i = 0; i < t.children.size(); ++i) {
        if (i) out += ", ";
        out += QuoteName(t.names[i]) + " " + DuckTypeText(t.children[i]);
      }
      return out + ")";
    }
  }
  return "?";
}

void WriteAbiValue(duckdb_vector out, const AbiType& t, idx_t row, const AbiValue& v) {
  if (std::holds_alternative<std::monostate>(v.v)) {
    WriteAbiNull(out, t, row);
    return;
  }
  switch (t.kind) {
    case AbiKind::kAddress:
    case AbiKind::kFixedBytes:
    case AbiKind::kBytes: {
      const auto& b = std::get<AbiBytes>(v.v);
      PutBytes(out, row, b.data(), b.size());
      return;
    }
    case AbiKind::kBool:
      Put<bool>(out, row, std::get<bool>(v.v));
      return;
    case AbiKind::kString: {
      const auto& s = std::get<std::string>(v.v);
      PutBytes(out, row, s.data(), s.size());
      return;
    }
    case AbiKind::kUint:
    case AbiKind::kInt: {
      const auto& w = std::get<Word256>(v.v);
      uint64_t low = WordLow64(w);
      switch (IntRepr(t)) {
        case Repr::kU8:
          return Put<uint8_t>(out, row, static_cast<uint8_t>(low));
        case Repr::kU16:
          return Put<uint16_t>(out, row, static_cast<uint16_t>(low));
        case Repr::kU32:
          return Put<uint32_t>(out, row, static_cast<uint32_t>(low));
        case Repr::kU64:
          return Put<uint64_t>(out, row, low);
        case Repr::kI8:
          return Put<int8_t>(out, row, static_cast<int8_t>(low));
        case Repr::kI16:
          return Put<int16_t>(out, row, static_cast<int16_t>(low));
        case Repr::kI32:
          return Put<int32_t>(out, row, static_cast<int32_t>(low));
        case Repr::kI64:
          return Put<int64_t>(out, row, static_cast<int64_t>(low));
        case Repr::kHuge: {
          duckdb_hugeint h;
          WordLow128(w, &h.lower, &h.upper);
          return Put<duckdb_hugeint>(out, row, h);
        }
        case Repr::kText: {
          std::string text = WordToDecimal(w, t.kind == AbiKind::kInt);
          return PutBytes(out, row, text.data(), text.size());
        }
      }
      return;
    }
    case AbiKind::kArray:
    case AbiKind::kFixedArray: {
      const auto& list = std::get<AbiList>(v.v);
      idx_t offset = duckdb_list_vector_get_size(out);
      duckdb_list_vector_reserve(out, offset + list.size());
      duckdb_list_vector_set_size(out, offset + list.size());
      static_cast<duckdb_list_entry*>(duckdb_vector_get_data(out))[row] = {offset, list.size()};
      duckdb_vector child = duckdb_list_vector_get_child(out);
      for (size_t i = 0; i < list.size(); ++i) {
        WriteAbiValue(child, t.children[0], offset + i, list[i]);
      }
      return;
    }
    case AbiKind::kTuple: {
      const auto& list = std::get<AbiList>(v.v);
      for (size_t i = 0; i < t.children.size(); ++i) {
        WriteAbiValue(duckdb_struct_vector_get_child(out, i), t.children[i], row, list[i]);
      }
      return;
    }
  }
}

void WriteAbiNull(duckdb_vector out, const AbiType& t, idx_t row) {
  SetInvalid(out, row);
  if (t.kind == AbiKind::kTuple) {
    for (size_t i = 0; i < t.children.size(); ++i) {
      WriteAbiNull(duckdb_struct_vector_get_child(out, i), t.children[i], row);
    }
  } else if (t.kind == AbiKind::kArray || t.kind == AbiKind::kFixedArray) {
    static_cast<duckdb_list_entry*>(duckdb_vector_get_data(out))[row] = {
        duckdb_list_vector_get_size(out), 0};
  }
}

arrow::Result<std::string> ReadNumberText(duckdb_vector in, duckdb_logical_type type, idx_t row) {
  duckdb_type id = duckdb_get_type_id(type);
  switch (id) {
    case DUCKDB_TYPE_VARCHAR:
      return std::string(StringAt(in, row));
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE: {
      double d = id == DUCKDB_TYPE_FLOAT ? ValueAt<float>(in, row) : ValueAt<double>(in, row);
      if (!std::isfinite(d)) return arrow::Status::Invalid("cannot shift a non-finite number");
      char buf[64];
      auto res = id == DUCKDB_TYPE_FLOAT
                     ? std::to_chars(buf, buf + sizeof(buf), static_cast<float>(d))
                     : std::to_chars(buf, buf + sizeof(buf), d);
      return std::string(buf, res.ptr);
    }
    case DUCKDB_TYPE_DECIMAL: {
      // The unscaled integer, then the point moved left by the scale.
      LogicalType unscaled;
      *unscaled.out() = duckdb_create_logical_type(duckdb_decimal_internal_type(type));
      AbiType i256;
      i256.kind = AbiKind::kInt;
      i256.bits = 256;
      ARROW_ASSIGN_OR_RAISE(auto n, ReadInteger(in, unscaled.get(), row, i256));
      std::string text = (n.negative ? "-" : "") + WordToDecimal(n.magnitude, false);
      return text + "e-" + std::to_string(duckdb_decimal_scale(type));
    }
    default: {
      AbiType i256;
      i256.kind = AbiKind::kInt;
      i256.bits = 256;
      auto n = ReadInteger(in, type, row, i256);
      if (!n.ok()) return arrow::Status::Invalid("expected a number, got a ", DuckTypeName(id));
      return (n->negative ? "-" : "") + WordToDecimal(n->magnitude, false);
    }
  }
}

bool IsNullRow(duckdb_vector in, idx_t row) {
  uint64_t* validity = duckdb_vector_get_validity(in);
  return validity != nullptr && !duckdb_validity_row_is_valid(validity, row);
}

arrow::Result<AbiValue> ReadAbiValue(duckdb_vector in, duckdb_logical_type type, idx_t row,
                                     const AbiType& t) {
  duckdb_type id = duckdb_get_type_id(type);
  if (id == DUCKDB_TYPE_SQLNULL || IsNullRow(in, row)) {
    return arrow::Status::Invalid("cannot encode a NULL inside a value as ", t.Canonical());
  }
  AbiValue v;
  switch (t.kind) {
    case AbiKind::kUint:
    case AbiKind::kInt: {
      ARROW_ASSIGN_OR_RAISE(auto n, ReadInteger(in, type, row, t));
      ARROW_ASSIGN_OR_RAISE(auto w, FitInteger(n, t.kind == AbiKind::kInt, t.bits));
      v.v = w;
      return v;
    }
    case AbiKind::kAddress:
    case AbiKind::kFixedBytes:
    case AbiKind::kBytes: {
      ARROW_ASSIGN_OR_RAISE(auto b, ReadBytes(in, type, row, t));
      size_t want = t.kind == AbiKind::kAddress ? 20 : t.size;
      if (t.kind != AbiKind::kBytes && b.size() != want) {
        return CannotEncode(id, t,
                            std::to_string(b.size()) + " bytes, expected " + std::to_string(want));
      }
      v.v = std::move(b);
      return v;
    }
    case AbiKind::kBool:
      if (id != DUCKDB_TYPE_BOOLEAN) return CannotEncode(id, t);
      v.v = ValueAt<bool>(in, row);
      return v;
    case AbiKind::kString:
      if (id != DUCKDB_TYPE_VARCHAR) return CannotEncode(id, t);
      v.v = std::string(StringAt(in, row));
      return v;
    case AbiKind::kArray:
    case AbiKind::kFixedArray: {
      duckdb_vector child;
      LogicalType child_type;
      uint64_t offset = 0, length = 0;
      if (id == DUCKDB_TYPE_LIST) {
        auto entry = ValueAt<duckdb_list_entry>(in, row);
        offset = entry.offset;
        length = entry.length;
        child = duckdb_list_vector_get_child(in);
        *child_type.out() = duckdb_list_type_child_type(type);
      } else if (id == DUCKDB_TYPE_ARRAY) {
        length = duckdb_array_type_array_size(type);
        offset = row * length;
        child = duckdb_array_vector_get_child(in);
        *child_type.out() = duckdb_array_type_child_type(type);
      } else {
        return CannotEncode(id, t);
      }
      if (t.kind == AbiKind::kFixedArray && length != t.size) {
        return CannotEncode(id, t, "a list of " + std::to_string(length) + " elements");
      }
      AbiList list;
      list.reserve(length);
      for (uint64_t i = 0; i < length; ++i) {
        ARROW_ASSIGN_OR_RAISE(auto e, ReadAbiValue(child, child_type.get(), offset + i,
                                                   t.children[0]));
        list.push_back(std::move(e));
      }
      v.v = std::move(list);
      return v;
    }
    case AbiKind::kTuple: {
      if (id != DUCKDB_TYPE_STRUCT) return CannotEncode(id, t);
      idx_t n = duckdb_struct_type_child_count(type);
      if (n != t.children.size()) {
        return CannotEncode(id, t, "a STRUCT of " + std::to_string(n) + " fields");
      }
      AbiList list;
      for (idx_t i = 0; i < n; ++i) {
        LogicalType child_type;
        *child_type.out() = duckdb_struct_type_child_type(type, i);
        ARROW_ASSIGN_OR_RAISE(auto e, ReadAbiValue(duckdb_struct_vector_get_child(in, i),
                                                   child_type.get(), row, t.children[i]));
        list.push_back(std::move(e));
      }
      v.v = std::move(list);
      return v;
    }
  }
  return CannotEncode(id, t);
}

}  // namespace sluice::sql
