#include "sql/evm_decode_functions.h"

#include <memory>

#include "sql/evm_abi_codec.h"
#include "sql/evm_udf.h"
#include "sql/evm_vectors.h"

namespace sluice::sql {

namespace {

// A signature parsed for one kind of decoding, and the type of its results.
struct Parsed {
  AbiSignature signature;  // kLog, kParams
  AbiType result;          // kType: the type itself
};

arrow::Result<Parsed> Parse(DecodeKind kind, std::string_view text) {
  Parsed p;
  switch (kind) {
    case DecodeKind::kLog: {
      ARROW_ASSIGN_OR_RAISE(p.signature, ParseEventSignature(text));
      p.result = p.signature.AsTuple();
      for (size_t i = 0; i < p.signature.params.size(); ++i) {
        if (p.signature.params[i].indexed && IsHashedInTopic(p.signature.params[i].type)) {
          AbiType topic;
          topic.kind = AbiKind::kFixedBytes;
          topic.size = 32;
          p.result.children[i] = topic;
        }
      }
      break;
    }
    case DecodeKind::kParams: {
      ARROW_ASSIGN_OR_RAISE(p.signature, ParseFunctionSignature(text));
      p.result = p.signature.AsTuple();
      if (p.result.children.empty()) {
        return arrow::Status::Invalid("function signature '", text,
                                      "': a function without parameters has nothing to decode");
      }
      break;
    }
    case DecodeKind::kType: {
      ARROW_ASSIGN_OR_RAISE(p.result, ParseAbiType(text));
      break;
    }
  }
  return p;
}

idx_t SignatureArgument(DecodeKind kind) { return kind == DecodeKind::kLog ? 4 : 1; }

const char* Example(DecodeKind kind) {
  switch (kind) {
    case DecodeKind::kLog:
      return "'Transfer(address indexed from, address indexed to, uint256 value)'";
    case DecodeKind::kParams:
      return "'transfer(address to, uint256 amount)'";
    case DecodeKind::kType:
      return "'uint256' or '(uint112,uint112,uint32)'";
  }
  return "";
}

// ---- the names users write, for signatures that are not literals -------------------

template <DecodeKind kKind>
void StubBind(duckdb_bind_info info) {
  udf::Guarded(info, [&] {
    std::string msg = std::string("the ") + (kKind == DecodeKind::kType ? "type" : "signature") +
                      " (argument " + std::to_string(SignatureArgument(kKind) + 1) +
                      ") must be a string literal such as " + Example(kKind) +
                      ", not a column, parameter or expression: the result's type follows "
                      "from it";
    udf::BindError(info, DecodeKindName(kKind), msg);
  });
}

void StubExec(duckdb_function_info info, duckdb_data_chunk, duckdb_vector) {
  duckdb_scalar_function_set_error(info, "EVM decoding function called without its signature");
}

// ---- typed decoders -------------------------------------------------------------------

struct TypedInfo {
  DecodeKind kind;
  std::string type_text;  // DuckTypeText of the result
};

struct DecodeBindData {
  DecodeKind kind;
  std::shared_ptr<const Parsed> parsed;
};

void TypedBind(duckdb_bind_info info) {
  udf::Guarded(info, [&] {
    const auto* typed =
        static_cast<const TypedInfo*>(duckdb_scalar_function_bind_get_extra_info(info));
    const char* name = DecodeKindName(typed->kind);
    auto text = udf::ConstantString(info, SignatureArgument(typed->kind));
    if (!text.ok() || !text->has_value()) {
      return udf::BindError(info, name, "the signature must be a string literal");
    }
    auto parsed = Parse(typed->kind, **text);
    if (!parsed.ok()) return udf::BindError(info, name, parsed.status().message());
    if (DuckTypeText(parsed->result) != typed->type_text) {
      return udf::BindError(info, name, "the signature '" + **text +
                                            "' does not give this function's result type " +
                                            typed->type_text);
    }
    udf::SetBindData(info, DecodeBindData{typed->kind,
                                          std::make_shared<const Parsed>(std::move(*parsed))});
  });
}

void TypedExec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  udf::Guarded(info, [&] {
    const auto* bind = udf::BindData<DecodeBindData>(info);
    if (bind == nullptr) return udf::ExecError(info, DecodeKindName(DecodeKind::kLog), "not bound");
    const Parsed& p = *bind->parsed;
    const idx_t n = duckdb_data_chunk_get_size(input);
    switch (bind->kind) {
      case DecodeKind::kLog: {
        udf::StringColumn t1(input, 0), t2(input, 1), t3(input, 2), data(input, 3);
        for (idx_t row = 0; row < n; ++row) {
          std::array<std::optional<ByteSpan>, 3> topics = {t1.GetBytes(row), t2.GetBytes(row),
                                                           t3.GetBytes(row)};
          auto values = DecodeEventLog(p.signature, topics, data.GetBytes(row).value_or(ByteSpan{}));
          if (!values) {
            WriteAbiNull(output, p.result, row);
            continue;
          }
          WriteAbiValue(output, p.result, row, AbiValue{std::move(*values)});
        }
        return;
      }
      case DecodeKind::kParams: {
        udf::StringColumn calldata(input, 0);
        for (idx_t row = 0; row < n; ++row) {
          auto bytes = calldata.GetBytes(row);
          if (!bytes) {
            WriteAbiNull(output, p.result, row);
            continue;
          }
          auto values = DecodeFunctionInput(p.signature, *bytes);
          if (values) {
            WriteAbiValue(output, p.result, row, AbiValue{std::move(*values)});
            continue;
          }
          for (size_t i = 0; i < p.result.children.size(); ++i) {  // a struct of NULLs
            WriteAbiNull(duckdb_struct_vector_get_child(output, i), p.result.children[i], row);
          }
        }
        return;
      }
      case DecodeKind::kType: {
        udf::StringColumn data(input, 0);
        for (idx_t row = 0; row < n; ++row) {
          auto bytes = data.GetBytes(row);
          auto value = bytes ? DecodeAbiValue(p.result, *bytes) : std::nullopt;
          if (value) {
            WriteAbiValue(output, p.result, row, *value);
          } else {
            WriteAbiNull(output, p.result, row);
          }
        }
        return;
      }
    }
  });
}

std::vector<duckdb_type> Params(DecodeKind kind) {
  if (kind == DecodeKind::kLog) {
    return {DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB,
            DUCKDB_TYPE_VARCHAR};
  }
  return {DUCKDB_TYPE_BLOB, DUCKDB_TYPE_VARCHAR};
}

}  // namespace

const char* DecodeKindName(DecodeKind kind) {
  switch (kind) {
    case DecodeKind::kLog:
      return "evm_decode_log";
    case DecodeKind::kParams:
      return "evm_decode_params";
    case DecodeKind::kType:
      return "evm_decode_type";
  }
  return "?";
}

arrow::Result<AbiType> DecodeResultType(DecodeKind kind, std::string_view signature) {
  ARROW_ASSIGN_OR_RAISE(auto parsed, Parse(kind, signature));
  return std::move(parsed.result);
}

arrow::Status RegisterDecodeFunctions(duckdb_connection conn) {
  LogicalType text;
  *text.out() = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  udf::FunctionSpec spec;
  spec.result = text.get();
  spec.function = StubExec;
  for (const char* name : {"evm_decode_log", "evm_decode"}) {
    spec.name = name;
    spec.params = Params(DecodeKind::kLog);
    spec.bind = StubBind<DecodeKind::kLog>;
    spec.special_null_handling = true;
    ARROW_RETURN_NOT_OK(udf::Register(conn, spec));
  }
  spec.name = "evm_decode_params";
  spec.params = Params(DecodeKind::kParams);
  spec.bind = StubBind<DecodeKind::kParams>;
  ARROW_RETURN_NOT_OK(udf::Register(conn, spec));
  spec.name = "evm_decode_type";
  spec.bind = StubBind<DecodeKind::kType>;
  return udf::Register(conn, spec);
}

arrow::Status RegisterTypedDecoder(duckdb_connection conn, const std::string& name,
                                   DecodeKind kind, const AbiType& result) {
  LogicalType type = DuckTypeOf(result);
  udf::FunctionSpec spec;
  spec.name = name.c_str();
  spec.params = Params(kind);
  spec.result = type.get();
  spec.bind = TypedBind;
  spec.function = TypedExec;
  // NULL topics are how a log says it has fewer of them.
  spec.special_null_handling = kind == DecodeKind::kLog;
  spec.extra_info = new TypedInfo{kind, DuckTypeText(result)};
  spec.delete_extra_info = [](void* p) { delete static_cast<TypedInfo*>(p); };
  return udf::Register(conn, spec);
}

}  // namespace sluice::sql
