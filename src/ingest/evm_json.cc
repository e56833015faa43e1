#include "ingest/evm_json.h"

#include "ingest/hex_quantity.h"

namespace sluice::ingest::evm_json {

using arrow::Status;

namespace {

arrow::Result<dom::object> AsObject(dom::element e) {
  dom::object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) return Status::Invalid("not an object");
  return o;
}

// Append each string of `a` as a 32-byte hash to `b`.
Status AppendHashes(Fixed* b, dom::array a) {
  for (dom::element e : a) {
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) return Status::Invalid("not a hash string");
    ARROW_RETURN_NOT_OK(AppendFixedValue(b, "item", s));
  }
  return Status::OK();
}

}  // namespace

// ---- field access -------------------------------------------------------------------

// The string value of `key`, or nullopt when absent or null.
arrow::Result<std::optional<std::string_view>> OptString(dom::object o, std::string_view key) {
  dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) {
    return Status::Invalid("field '", key, "' is not a string");
  }
  return s;
}

arrow::Result<std::string_view> ReqString(dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, OptString(o, key));
  if (!s) return Status::Invalid("missing field '", key, "'");
  return *s;
}

Status Field(std::string_view key, Status st) {
  if (st.ok()) return st;
  return st.WithMessage("field '", key, "': ", st.message());
}

arrow::Result<uint64_t> ReqQuantity(dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, ReqString(o, key));
  auto v = ParseQuantity(s);
  if (!v.ok()) return Field(key, v.status());
  return *v;
}

// ---- typed appends (field -> builder) ---------------------------------------------------

Status AppendU64(U64* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto v, ReqQuantity(o, key));
  return b->Append(v);
}

Status AppendOptU64(U64* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, OptString(o, key));
  if (!s) return b->AppendNull();
  auto v = ParseQuantity(*s);
  if (!v.ok()) return Field(key, v.status());
  return b->Append(*v);
}

Status AppendFixedValue(Fixed* b, std::string_view key, std::string_view hex) {
  uint8_t buf[32];
  const size_t size = static_cast<size_t>(b->byte_width());
  ARROW_RETURN_NOT_OK(Field(key, ParseFixedData(hex, buf, size)));
  return b->Append(buf);
}

Status AppendFixed(Fixed* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, ReqString(o, key));
  return AppendFixedValue(b, key, s);
}

Status AppendOptFixed(Fixed* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, OptString(o, key));
  if (!s) return b->AppendNull();
  return AppendFixedValue(b, key, *s);
}

// A 32-byte word written as a QUANTITY (signature r, s); zeros when absent.
Status AppendWordOrZero(Fixed* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, OptString(o, key));
  uint8_t buf[32] = {};
  if (s) ARROW_RETURN_NOT_OK(Field(key, ParseQuantityBytes(*s, buf, 32)));
  return b->Append(buf);
}

// A 32-byte word written as a QUANTITY (signature r, s); null when absent.
Status AppendOptWord(Fixed* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, OptString(o, key));
  if (!s) return b->AppendNull();
  uint8_t buf[32] = {};
  ARROW_RETURN_NOT_OK(Field(key, ParseQuantityBytes(*s, buf, 32)));
  return b->Append(buf);
}

Status AppendData(Bin* b, dom::object o, std::string_view key, std::string* scratch) {
  ARROW_ASSIGN_OR_RAISE(auto s, ReqString(o, key));
  scratch->clear();
  ARROW_RETURN_NOT_OK(Field(key, ingest::AppendData(s, scratch)));
  return b->Append(*scratch);
}

Status AppendDecimalValue(Dec* b, std::string_view key, std::string_view hex) {
  auto v = ParseQuantityDecimal128(hex);
  if (!v.ok()) return Field(key, v.status());
  return b->Append(*v);
}

Status AppendDecimal(Dec* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, ReqString(o, key));
  return AppendDecimalValue(b, key, s);
}

Status AppendOptDecimal(Dec* b, dom::object o, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, OptString(o, key));
  if (!s) return b->AppendNull();
  return AppendDecimalValue(b, key, *s);
}

// Parity of a signature from yParity, else from v (see EvmDecoder's doc);
// nullopt when the transaction has neither.
arrow::Result<std::optional<bool>> Parity(dom::object tx) {
  ARROW_ASSIGN_OR_RAISE(auto y, OptString(tx, "yParity"));
  if (y) {
    auto v = ParseQuantity(*y);
    if (!v.ok()) return Field("yParity", v.status());
    if (*v > 1) return Status::Invalid("field 'yParity': not 0 or 1: ", *y);
    return *v == 1;
  }
  ARROW_ASSIGN_OR_RAISE(auto vs, OptString(tx, "v"));
  if (!vs) return std::nullopt;
  auto v = ParseQuantity128(*vs);
  if (!v.ok()) return Field("v", v.status());
  if (*v <= 1) return *v == 1;
  if (*v == 27 || *v == 28) return *v == 28;
  if (*v >= 35) return ((*v - 35) & 1) == 1;
  return Status::Invalid("field 'v': not a signature parity: ", *vs);
}

// The array at `key`, or nullopt when absent or null.
arrow::Result<std::optional<dom::array>> OptArray(dom::object o, std::string_view key) {
  dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) return Status::Invalid("not an array");
  return a;
}

Status AppendHashList(List* b, dom::object tx, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto a, OptArray(tx, key));
  if (!a) return b->AppendNull();
  ARROW_RETURN_NOT_OK(b->Append());
  return AppendHashes(static_cast<Fixed*>(b->value_builder()), *a);
}

// accessList: [{address, storageKeys: [hash, …]}, …]
Status AppendAccessList(List* b, dom::object tx) {
  ARROW_ASSIGN_OR_RAISE(auto a, OptArray(tx, "accessList"));
  if (!a) return b->AppendNull();
  ARROW_RETURN_NOT_OK(b->Append());
  auto* item = static_cast<Struct*>(b->value_builder());
  auto* address = static_cast<Fixed*>(item->field_builder(0));
  auto* keys = static_cast<List*>(item->field_builder(1));
  for (dom::element e : *a) {
    ARROW_ASSIGN_OR_RAISE(auto entry, AsObject(e));
    ARROW_RETURN_NOT_OK(item->Append());
    ARROW_RETURN_NOT_OK(AppendFixed(address, entry, "address"));
    ARROW_ASSIGN_OR_RAISE(auto storage_keys, OptArray(entry, "storageKeys"));
    ARROW_RETURN_NOT_OK(keys->Append());
    if (storage_keys) {
      ARROW_RETURN_NOT_OK(AppendHashes(static_cast<Fixed*>(keys->value_builder()), *storage_keys));
    }
  }
  return Status::OK();
}

// authorizationList: [{chainId, address, nonce, yParity, r, s}, …] (EIP-7702)
Status AppendAuthorizationList(List* b, dom::object tx) {
  ARROW_ASSIGN_OR_RAISE(auto a, OptArray(tx, "authorizationList"));
  if (!a) return b->AppendNull();
  ARROW_RETURN_NOT_OK(b->Append());
  auto* item = static_cast<Struct*>(b->value_builder());
  for (dom::element e : *a) {
    ARROW_ASSIGN_OR_RAISE(auto auth, AsObject(e));
    ARROW_RETURN_NOT_OK(item->Append());
    ARROW_RETURN_NOT_OK(AppendDecimal(static_cast<Dec*>(item->field_builder(0)), auth, "chainId"));
    ARROW_RETURN_NOT_OK(AppendFixed(static_cast<Fixed*>(item->field_builder(1)), auth, "address"));
    ARROW_RETURN_NOT_OK(AppendU64(static_cast<U64*>(item->field_builder(2)), auth, "nonce"));
    ARROW_ASSIGN_OR_RAISE(auto y, ReqQuantity(auth, "yParity"));
    if (y > 1) return Status::Invalid("field 'yParity': not 0 or 1");
    ARROW_RETURN_NOT_OK(static_cast<Bool*>(item->field_builder(3))->Append(y == 1));
    ARROW_RETURN_NOT_OK(AppendWordOrZero(static_cast<Fixed*>(item->field_builder(4)), auth, "r"));
    ARROW_RETURN_NOT_OK(AppendWordOrZero(static_cast<Fixed*>(item->field_builder(5)), auth, "s"));
  }
  return Status::OK();
}

}  // namespace sluice::ingest::evm_json
