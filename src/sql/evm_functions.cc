#include "sql/evm_functions.h"

#include <optional>
#include <string>

#include "common/hex.h"
#include "sql/evm_abi_codec.h"
#include "sql/evm_udf.h"
#include "sql/evm_vectors.h"

namespace sluice::sql {

namespace {

LogicalType Type(duckdb_type id) {
  LogicalType t;
  *t.out() = duckdb_create_logical_type(id);
  return t;
}

std::string_view AsText(const AbiBytes& b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// ---- evm_topic ---------------------------------------------------------------------

struct TopicBindData {
  std::optional<Hash32> constant;  // set when the signature is a non-NULL constant
};

void TopicBind(duckdb_bind_info info) {
  udf::Guarded(info, [&] {
    TopicBindData data;
    auto constant = udf::ConstantString(info, 0);
    if (constant.ok() && constant->has_value()) {
      auto sig = ParseEventSignature(**constant);
      if (!sig.ok()) return udf::BindError(info, "evm_topic", sig.status().message());
      data.constant = sig->Topic0();
    }
    udf::SetBindData(info, std::move(data));
  });
}

void TopicExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  udf::Guarded(info, [&] {
    const auto* bind = udf::BindData<TopicBindData>(info);
    udf::StringColumn signatures(input, 0);
    idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t row = 0; row < n; ++row) {
      auto text = signatures.Get(row);
      if (!text) {
        udf::SetNull(output, row);
        continue;
      }
      Hash32 topic;
      if (bind != nullptr && bind->constant) {
        topic = *bind->constant;
      } else {
        auto sig = ParseEventSignature(*text);
        if (!sig.ok()) return udf::ExecError(info, "evm_topic", sig.status().message());
        topic = sig->Topic0();
      }
      udf::SetString(output, row,
                     std::string_view(reinterpret_cast<const char*>(topic.data()), topic.size()));
    }
  });
}

// ---- evm_encode_hex / evm_decode_hex ---------------------------------------------------

void EncodeHexExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  udf::Guarded(info, [&] {
    udf::StringColumn texts(input, 0);
    idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t row = 0; row < n; ++row) {
      auto text = texts.Get(row);
      if (!text) {
        udf::SetNull(output, row);
        continue;
      }
      std::string_view digits = *text;
      if (digits.starts_with("0x") || digits.starts_with("0X")) digits.remove_prefix(2);
      auto bytes = common::FromHex(digits);
      if ((digits.size() != 40 && digits.size() != 64) || !bytes.ok()) {
        return udf::ExecError(info, "evm_encode_hex",
                              "expected 40 or 64 hex digits (an address or a hash, 0x "
                              "optional), got '" +
                                  std::string(text->substr(0, 80)) + "'");
      }
      udf::SetString(output, row, AsText(*bytes));
    }
  });
}

void DecodeHexExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  udf::Guarded(info, [&] {
    udf::StringColumn blobs(input, 0);
    idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t row = 0; row < n; ++row) {
      auto bytes = blobs.GetBytes(row);
      if (!bytes) {
        udf::SetNull(output, row);
        continue;
      }
      udf::SetString(output, row, common::ToHex(bytes->data(), bytes->size()));
    }
  });
}

// ---- shift_units ----------------------------------------------------------------------

void ShiftExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  udf::Guarded(info, [&] {
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0);
    duckdb_vector places = duckdb_data_chunk_get_vector(input, 1);
    LogicalType type;
    *type.out() = duckdb_vector_get_column_type(values);
    const auto* shift = static_cast<const int64_t*>(duckdb_vector_get_data(places));
    idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t row = 0; row < n; ++row) {
      if (duckdb_get_type_id(type.get()) == DUCKDB_TYPE_SQLNULL || IsNullRow(values, row) ||
          IsNullRow(places, row)) {
        udf::SetNull(output, row);
        continue;
      }
      auto text = ReadNumberText(values, type.get(), row);
      if (!text.ok()) return udf::ExecError(info, "shift_units", text.status().message());
      auto shifted = ShiftDecimal(*text, shift[row]);
      if (!shifted.ok()) return udf::ExecError(info, "shift_units", shifted.status().message());
      udf::SetString(output, row, *shifted);
    }
  });
}

// ---- evm_encode_type / evm_encode_params -------------------------------------------------

struct EncodeBindData {
  std::shared_ptr<const AbiType> type;            // evm_encode_type
  std::shared_ptr<const AbiSignature> signature;  // evm_encode_params
};

void EncodeTypeBind(duckdb_bind_info info) {
  udf::Guarded(info, [&] {
    auto text = udf::ConstantString(info, 1);
    if (!text.ok() || !text->has_value()) {
      return udf::BindError(info, "evm_encode_type",
                            "the type (argument 2) must be a constant string such as 'uint256'");
    }
    auto type = ParseAbiType(**text);
    if (!type.ok()) return udf::BindError(info, "evm_encode_type", type.status().message());
    udf::SetBindData(info, EncodeBindData{std::make_shared<const AbiType>(std::move(*type)), {}});
  });
}

void EncodeTypeExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  udf::Guarded(info, [&] {
    const auto* bind = udf::BindData<EncodeBindData>(info);
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0);
    LogicalType type;
    *type.out() = duckdb_vector_get_column_type(values);
    idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t row = 0; row < n; ++row) {
      if (duckdb_get_type_id(type.get()) == DUCKDB_TYPE_SQLNULL || IsNullRow(values, row)) {
        udf::SetNull(output, row);
        continue;
      }
      auto value = ReadAbiValue(values, type.get(), row, *bind->type);
      if (!value.ok()) return udf::ExecError(info, "evm_encode_type", value.status().message());
      auto bytes = EncodeAbiValue(*bind->type, *value);
      if (!bytes.ok()) return udf::ExecError(info, "evm_encode_type", bytes.status().message());
      udf::SetString(output, row, AsText(*bytes));
    }
  });
}

void EncodeParamsBind(duckdb_bind_info info) {
  udf::Guarded(info, [&] {
    const char* name = "evm_encode_params";
    idx_t args = duckdb_scalar_function_bind_get_argument_count(info);
    if (args == 0) return udf::BindError(info, name, "the function signature (last) is missing");
    auto text = udf::ConstantString(info, args - 1);
    if (!text.ok() || !text->has_value()) {
      return udf::BindError(info, name,
                            "the last argument must be a constant function signature such as "
                            "'transfer(address to, uint256 amount)'");
    }
    auto sig = ParseFunctionSignature(**text);
    if (!sig.ok()) return udf::BindError(info, name, sig.status().message());
    if (sig->params.size() != args - 1) {
      return udf::BindError(info, name,
                            sig->Canonical() + " takes " + std::to_string(sig->params.size()) +
                                " value(s) before the signature, got " + std::to_string(args - 1));
    }
    udf::SetBindData(info,
                     EncodeBindData{{}, std::make_shared<const AbiSignature>(std::move(*sig))});
  });
}

void EncodeParamsExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  udf::Guarded(info, [&] {
    const auto* bind = udf::BindData<EncodeBindData>(info);
    const AbiSignature& sig = *bind->signature;
    const size_t k = sig.params.size();
    std::vector<duckdb_vector> columns(k);
    std::vector<LogicalType> types(k);
    for (size_t i = 0; i < k; ++i) {
      columns[i] = duckdb_data_chunk_get_vector(input, i);
      *types[i].out() = duckdb_vector_get_column_type(columns[i]);
    }
    idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t row = 0; row < n; ++row) {
      AbiList args;
      bool null = false;
      for (size_t i = 0; i < k && !null; ++i) {
        if (duckdb_get_type_id(types[i].get()) == DUCKDB_TYPE_SQLNULL ||
            IsNullRow(columns[i], row)) {
          null = true;
          break;
        }
        auto value = ReadAbiValue(columns[i], types[i].get(), row, sig.params[i].type);
        if (!value.ok()) {
          return udf::ExecError(info, "evm_encode_params",
                                sig.params[i].name + ": " + value.status().message());
        }
        args.push_back(std::move(*value));
      }
      if (null) {
        udf::SetNull(output, row);
        continue;
      }
      auto bytes = EncodeFunctionCall(sig, args);
      if (!bytes.ok()) return udf::ExecError(info, "evm_encode_params", bytes.status().message());
      udf::SetString(output, row, AsText(*bytes));
    }
  });
}

arrow::Status RegisterFixed(duckdb_connection conn) {
  LogicalType blob = Type(DUCKDB_TYPE_BLOB), text = Type(DUCKDB_TYPE_VARCHAR);
  udf::FunctionSpec spec;

  spec = {};
  spec.name = "evm_topic";
  spec.params = {DUCKDB_TYPE_VARCHAR};
  spec.result = blob.get();
  spec.bind = TopicBind;
  spec.function = TopicExec;
  ARROW_RETURN_NOT_OK(udf::Register(conn, spec));

  spec = {};
  spec.name = "evm_encode_hex";
  spec.params = {DUCKDB_TYPE_VARCHAR};
  spec.result = blob.get();
  spec.function = EncodeHexExec;
  ARROW_RETURN_NOT_OK(udf::Register(conn, spec));

  spec = {};
  spec.name = "evm_decode_hex";
  spec.params = {DUCKDB_TYPE_BLOB};
  spec.result = text.get();
  spec.function = DecodeHexExec;
  ARROW_RETURN_NOT_OK(udf::Register(conn, spec));

  spec = {};
  spec.name = "shift_units";
  spec.params = {DUCKDB_TYPE_ANY, DUCKDB_TYPE_BIGINT};
  spec.result = text.get();
  spec.function = ShiftExec;
  spec.special_null_handling = true;  // a NULL of type ANY must still give NULL
  ARROW_RETURN_NOT_OK(udf::Register(conn, spec));

  spec = {};
  spec.name = "evm_encode_type";
  spec.params = {DUCKDB_TYPE_ANY, DUCKDB_TYPE_VARCHAR};
  spec.result = blob.get();
  spec.bind = EncodeTypeBind;
  spec.function = EncodeTypeExec;
  spec.special_null_handling = true;
  ARROW_RETURN_NOT_OK(udf::Register(conn, spec));

  spec = {};
  spec.name = "evm_encode_params";
  spec.varargs = DUCKDB_TYPE_ANY;
  spec.result = blob.get();
  spec.bind = EncodeParamsBind;
  spec.function = EncodeParamsExec;
  spec.special_null_handling = true;
  return udf::Register(conn, spec);
}

}  // namespace

arrow::Result<std::shared_ptr<EvmFunctions>> EvmFunctions::Register(duckdb_connection conn,
                                                                    EthCallOptions eth_call) {
  std::shared_ptr<EvmFunctions> fns(new EvmFunctions());
  fns->eth_calls_ = std::make_shared<EthCalls>(eth_call);
  ARROW_RETURN_NOT_OK(RegisterFixed(conn));
  ARROW_RETURN_NOT_OK(RegisterDecodeFunctions(conn));
  ARROW_RETURN_NOT_OK(RegisterEthCall(conn, fns->eth_calls_));
  return fns;
}

arrow::Result<std::string> EvmFunctions::TypedDecoder(duckdb_connection conn, DecodeKind kind,
                                                      const AbiType& result) {
  std::string text = DuckTypeText(result);
  Hash32 h = Keccak256(std::string(DecodeKindName(kind)) + ":" + text);
  std::string name = std::string("__sluice_") + DecodeKindName(kind) + "_" +
                     common::ToHex(h.data(), 8).substr(2);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = typed_.find(name);
  if (it != typed_.end()) {
    if (it->second != text) {
      return arrow::Status::UnknownError("two result types share the function name ", name);
    }
    return name;
  }
  if (typed_.size() >= kMaxTypedDecoders) {
    return arrow::Status::CapacityError(
        "this server has decoded ", kMaxTypedDecoders,
        " distinct signatures (each one needs a function of its own result type) and takes no "
        "more until it restarts");
  }
  ARROW_RETURN_NOT_OK(RegisterTypedDecoder(conn, name, kind, result));
  typed_.emplace(name, std::move(text));
  return name;
}

}  // namespace sluice::sql
