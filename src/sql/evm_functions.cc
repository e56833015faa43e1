#include "sql/evm_functions.h"

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "arrow/result.h"
#include "sql/duckdb_handles.h"
#include "sql/evm_abi.h"

namespace sluice::sql {

namespace {

using ScalarFunction = internal::Handle<duckdb_scalar_function, duckdb_destroy_scalar_function>;
using Expression = internal::Handle<duckdb_expression, duckdb_destroy_expression>;
using ClientContext = internal::Handle<duckdb_client_context, duckdb_destroy_client_context>;
using Value = internal::Handle<duckdb_value, duckdb_destroy_value>;

// ---- reading and writing vectors ---------------------------------------------------

// A BLOB or VARCHAR input column of one chunk (the C API hands scalar functions
// flat vectors).
class StringColumn {
 public:
  StringColumn(duckdb_data_chunk chunk, idx_t col) {
    duckdb_vector v = duckdb_data_chunk_get_vector(chunk, col);
    data_ = static_cast<duckdb_string_t*>(duckdb_vector_get_data(v));
    validity_ = duckdb_vector_get_validity(v);
  }
  /// std::nullopt for NULL.
  std::optional<std::string_view> Get(idx_t row) const {
    if (validity_ != nullptr && !duckdb_validity_row_is_valid(validity_, row)) return std::nullopt;
    return std::string_view(duckdb_string_t_data(&data_[row]), duckdb_string_t_length(data_[row]));
  }
  std::optional<ByteSpan> GetBytes(idx_t row) const {
    auto s = Get(row);
    if (!s) return std::nullopt;
    return ByteSpan(reinterpret_cast<const uint8_t*>(s->data()), s->size());
  }

 private:
  duckdb_string_t* data_;
  uint64_t* validity_;
};

void SetNull(duckdb_vector out, idx_t row) {
  duckdb_vector_ensure_validity_writable(out);
  duckdb_validity_set_row_invalid(duckdb_vector_get_validity(out), row);
}

void SetString(duckdb_vector out, idx_t row, std::string_view s) {
  duckdb_vector_assign_string_element_len(out, row, s.data(), s.size());
}

// ---- bind helpers ------------------------------------------------------------------

// The value of argument `index` when it is a constant (folded at bind):
// std::nullopt for NULL; Invalid when the argument is not constant.
arrow::Result<std::optional<std::string>> ConstantString(duckdb_bind_info info, idx_t index) {
  Expression expr;
  try {
    *expr.out() = duckdb_scalar_function_bind_get_argument(info, index);
  } catch (const std::exception&) {
    // DuckDB 1.4 cannot copy some bound expressions (a scalar subquery) to hand
    // them out: such an argument is not a constant either.
    return arrow::Status::Invalid("argument ", index + 1, " is not constant (a subquery?)");
  }
  if (!expr) return arrow::Status::Invalid("cannot read argument ", index + 1);
  if (!duckdb_expression_is_foldable(expr.get())) {
    return arrow::Status::Invalid("argument ", index + 1, " is not constant");
  }
  ClientContext context;
  duckdb_scalar_function_get_client_context(info, context.out());
  Value value;
  ErrorData error;
  *error.out() = duckdb_expression_fold(context.get(), expr.get(), value.out());
  ARROW_RETURN_NOT_OK(ErrorDataStatus(error.get()));
  if (!value || duckdb_is_null_value(value.get())) return std::nullopt;
  char* text = duckdb_get_varchar(value.get());
  if (text == nullptr) return arrow::Status::Invalid("argument ", index + 1, " is not a string");
  std::string out(text);
  duckdb_free(text);
  return out;
}

// Owns bind data of type T for DuckDB (delete and copy callbacks).
template <typename T>
void SetBindData(duckdb_bind_info info, T data) {
  duckdb_scalar_function_set_bind_data(info, new T(std::move(data)),
                                       [](void* p) { delete static_cast<T*>(p); });
  duckdb_scalar_function_set_bind_data_copy(
      info, [](void* p) -> void* { return new T(*static_cast<const T*>(p)); });
}

// Runs `body`; an exception becomes an error of the bind or of the function (the
// C API must not see C++ exceptions).
template <typename Info, typename Body>
void Guarded(Info info, Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::string msg = std::string("internal error: ") + e.what();
    if constexpr (std::is_same_v<Info, duckdb_bind_info>) {
      duckdb_scalar_function_bind_set_error(info, msg.c_str());
    } else {
      duckdb_scalar_function_set_error(info, msg.c_str());
    }
  }
}

// ---- evm_topic ---------------------------------------------------------------------

struct TopicBindData {
  std::optional<Hash32> constant;  // set when the signature is a non-NULL constant
};

void TopicBind(duckdb_bind_info info) {
  Guarded(info, [&] {
    TopicBindData data;
    auto constant = ConstantString(info, 0);
    if (constant.ok() && constant->has_value()) {
      auto sig = ParseEventSignature(**constant);
      if (!sig.ok()) {
        std::string msg = "evm_topic: " + sig.status().message();
        duckdb_scalar_function_bind_set_error(info, msg.c_str());
        return;
      }
      data.constant = sig->Topic0();
    }
    SetBindData(info, std::move(data));
  });
}

void TopicExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  Guarded(info, [&] {
    const auto* bind =
        static_cast<const TopicBindData*>(duckdb_scalar_function_get_bind_data(info));
    StringColumn signatures(input, 0);
    idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t row = 0; row < n; ++row) {
      auto text = signatures.Get(row);
      if (!text) {
        SetNull(output, row);
        continue;
      }
      Hash32 topic;
      if (bind != nullptr && bind->constant) {
        topic = *bind->constant;
      } else {
        auto sig = ParseEventSignature(*text);
        if (!sig.ok()) {
          std::string msg = "evm_topic: " + sig.status().message();
          duckdb_scalar_function_set_error(info, msg.c_str());
          return;
        }
        topic = sig->Topic0();
      }
      SetString(output, row, std::string_view(reinterpret_cast<const char*>(topic.data()), 32));
    }
  });
}

// ---- evm_decode_log ----------------------------------------------------------------

struct DecodeBindData {
  std::shared_ptr<const EventSignature> signature;
  std::shared_ptr<const std::vector<std::string>> keys;  // '"name":' per parameter
};

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendJsonHex(std::string* out, const AbiBytes& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out += "\"0x";
  for (uint8_t b : bytes) {
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 0xf]);
  }
  out->push_back('"');
}

// The JSON object of one decoded log, into *out (cleared first).
void WriteJson(const std::vector<std::string>& keys, const std::vector<AbiValue>& values,
               std::string* out) {
  out->clear();
  out->push_back('{');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out->push_back(',');
    *out += keys[i];
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::monostate>) {
            *out += "null";
          } else if constexpr (std::is_same_v<V, bool>) {
            *out += v ? "true" : "false";
          } else if constexpr (std::is_same_v<V, uint64_t> || std::is_same_v<V, int64_t>) {
            out->push_back('"');
            *out += std::to_string(v);
            out->push_back('"');
          } else if constexpr (std::is_same_v<V, AbiDecimal>) {
            out->push_back('"');
            *out += v.digits;
            out->push_back('"');
          } else if constexpr (std::is_same_v<V, AbiBytes>) {
            AppendJsonHex(out, v);
          } else {
            AppendJsonString(out, v);
          }
        },
        values[i]);
  }
  out->push_back('}');
}

constexpr const char* kSignatureExample =
    "'Transfer(address indexed from, address indexed to, uint256 value)'";

void DecodeBind(duckdb_bind_info info) {
  Guarded(info, [&] {
    auto fail = [&](const std::string& msg) {
      std::string full = "evm_decode_log: " + msg;
      duckdb_scalar_function_bind_set_error(info, full.c_str());
    };
    auto constant = ConstantString(info, 4);
    if (!constant.ok()) {
      fail(std::string("the signature (5th argument) must be a constant string such as ") +
           kSignatureExample + ", not a column or a parameter (" +
           constant.status().message() + ")");
      return;
    }
    if (!constant->has_value()) {
      fail("the signature (5th argument) must not be NULL");
      return;
    }
    auto sig = ParseEventSignature(**constant);
    if (!sig.ok()) {
      fail(sig.status().message());
      return;
    }
    auto keys = std::make_shared<std::vector<std::string>>();
    for (const auto& p : sig->params) {
      std::string key;
      AppendJsonString(&key, p.name);
      keys->push_back(key + ":");
    }
    SetBindData(info, DecodeBindData{std::make_shared<const EventSignature>(std::move(*sig)),
                                     std::move(keys)});
  });
}

void DecodeExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  Guarded(info, [&] {
    const auto* bind =
        static_cast<const DecodeBindData*>(duckdb_scalar_function_get_bind_data(info));
    if (bind == nullptr) {
      duckdb_scalar_function_set_error(info, "evm_decode_log: the signature was not bound");
      return;
    }
    StringColumn t1(input, 0), t2(input, 1), t3(input, 2), data(input, 3);
    idx_t n = duckdb_data_chunk_get_size(input);
    std::string json;
    for (idx_t row = 0; row < n; ++row) {
      std::array<std::optional<ByteSpan>, 3> topics = {t1.GetBytes(row), t2.GetBytes(row),
                                                       t3.GetBytes(row)};
      auto values =
          DecodeEventLog(*bind->signature, topics, data.GetBytes(row).value_or(ByteSpan{}));
      if (!values) {
        SetNull(output, row);
        continue;
      }
      WriteJson(*bind->keys, *values, &json);
      SetString(output, row, json);
    }
  });
}

// ---- registration ------------------------------------------------------------------

arrow::Status Register(duckdb_connection conn, const char* name,
                       std::initializer_list<duckdb_type> params, duckdb_type result,
                       duckdb_scalar_function_bind_t bind, duckdb_scalar_function_t function,
                       bool special_null_handling) {
  ScalarFunction f;
  *f.out() = duckdb_create_scalar_function();
  duckdb_scalar_function_set_name(f.get(), name);
  for (duckdb_type t : params) {
    LogicalType type;
    *type.out() = duckdb_create_logical_type(t);
    duckdb_scalar_function_add_parameter(f.get(), type.get());
  }
  LogicalType ret;
  *ret.out() = duckdb_create_logical_type(result);
  duckdb_scalar_function_set_return_type(f.get(), ret.get());
  duckdb_scalar_function_set_bind(f.get(), bind);
  duckdb_scalar_function_set_function(f.get(), function);
  if (special_null_handling) duckdb_scalar_function_set_special_handling(f.get());
  if (duckdb_register_scalar_function(conn, f.get()) != DuckDBSuccess) {
    return arrow::Status::Invalid("cannot register SQL function ", name,
                                  " (already registered in this database?)");
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status RegisterEvmFunctions(duckdb_connection conn) {
  ARROW_RETURN_NOT_OK(Register(conn, "evm_topic", {DUCKDB_TYPE_VARCHAR}, DUCKDB_TYPE_BLOB,
                               TopicBind, TopicExec, /*special_null_handling=*/false));
  // Special NULL handling: NULL topics are how a log says it has fewer of them.
  ARROW_RETURN_NOT_OK(Register(
      conn, "evm_decode_log",
      {DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_VARCHAR},
      DUCKDB_TYPE_VARCHAR, DecodeBind, DecodeExec, /*special_null_handling=*/true));
  return arrow::Status::OK();
}

}  // namespace sluice::sql
