#include "verify/evm_encoding.h"

#include <cstring>

#include "arrow/util/decimal.h"
#include "verify/keccak.h"
#include "verify/rlp.h"

namespace sluice::verify {

using arrow::Status;

namespace {

constexpr int64_t kNanosPerSecond = 1000000000LL;

void Fixed(RlpWriter* w, const FixedArray* a, int64_t i) {
  w->Bytes(a->GetValue(i), static_cast<size_t>(a->byte_width()));
}

// A fixed-size word (r, s) as an integer.
void Word(RlpWriter* w, const FixedArray* a, int64_t i) {
  w->UintBigEndian(a->GetValue(i), static_cast<size_t>(a->byte_width()));
}

void Binary(RlpWriter* w, const arrow::BinaryArray* a, int64_t i) { w->Bytes(a->GetView(i)); }

// A Decimal128(38, 0) as an integer.
Status Decimal(RlpWriter* w, const DecimalArray* a, int64_t i, const char* name) {
  arrow::Decimal128 d(a->GetValue(i));
  if (d.Sign() < 0) return Status::Invalid(name, " is negative");
  uint8_t be[16];
  const uint64_t hi = static_cast<uint64_t>(d.high_bits());
  const uint64_t lo = d.low_bits();
  for (int k = 0; k < 8; ++k) {
    be[k] = static_cast<uint8_t>(hi >> (56 - 8 * k));
    be[8 + k] = static_cast<uint8_t>(lo >> (56 - 8 * k));
  }
  w->UintBigEndian(be, 16);
  return Status::OK();
}

Status ReqDecimal(RlpWriter* w, const DecimalArray* a, int64_t i, const char* name) {
  if (a->IsNull(i)) return Status::Invalid(name, " is null");
  return Decimal(w, a, i, name);
}

Status ReqU64(RlpWriter* w, const arrow::UInt64Array* a, int64_t i, const char* name) {
  if (a->IsNull(i)) return Status::Invalid(name, " is null");
  w->Uint(a->Value(i));
  return Status::OK();
}

// [[address, [storage_key, …]], …]; a null list is the empty one.
void AccessList(RlpWriter* w, const ListArray* list, int64_t i) {
  w->BeginList();
  if (!list->IsNull(i)) {
    const auto& items = static_cast<const arrow::StructArray&>(*list->values());
    const auto* address = static_cast<const FixedArray*>(items.field(0).get());
    const auto* keys = static_cast<const ListArray*>(items.field(1).get());
    const auto* key_values = static_cast<const FixedArray*>(keys->values().get());
    for (int64_t k = list->value_offset(i); k < list->value_offset(i + 1); ++k) {
      w->BeginList();
      Fixed(w, address, k);
      w->BeginList();
      for (int64_t j = keys->value_offset(k); j < keys->value_offset(k + 1); ++j) {
        Fixed(w, key_values, j);
      }
      w->EndList();
      w->EndList();
    }
  }
  w->EndList();
}

Status BlobHashes(RlpWriter* w, const ListArray* list, int64_t i) {
  if (list->IsNull(i)) return Status::Invalid("blob_versioned_hashes is null");
  const auto* hashes = static_cast<const FixedArray*>(list->values().get());
  w->BeginList();
  for (int64_t k = list->value_offset(i); k < list->value_offset(i + 1); ++k) Fixed(w, hashes, k);
  w->EndList();
  return Status::OK();
}

Status AuthorizationList(RlpWriter* w, const ListArray* list, int64_t i) {
  if (list->IsNull(i)) return Status::Invalid("authorization_list is null");
  const auto& items = static_cast<const arrow::StructArray&>(*list->values());
  const auto* chain_id = static_cast<const DecimalArray*>(items.field(0).get());
  const auto* address = static_cast<const FixedArray*>(items.field(1).get());
  const auto* nonce = static_cast<const arrow::UInt64Array*>(items.field(2).get());
  const auto* y_parity = static_cast<const arrow::BooleanArray*>(items.field(3).get());
  const auto* r = static_cast<const FixedArray*>(items.field(4).get());
  const auto* s = static_cast<const FixedArray*>(items.field(5).get());
  w->BeginList();
  for (int64_t k = list->value_offset(i); k < list->value_offset(i + 1); ++k) {
    w->BeginList();
    ARROW_RETURN_NOT_OK(Decimal(w, chain_id, k, "authorization chain_id"));
    Fixed(w, address, k);
    w->Uint(nonce->Value(k));
    w->Uint(y_parity->Value(k) ? 1 : 0);
    Word(w, r, k);
    Word(w, s, k);
    w->EndList();
  }
  w->EndList();
  return Status::OK();
}

// `to`: 20 bytes, or the empty string for a contract creation.
void To(RlpWriter* w, const TxColumns& t, int64_t i) {
  if (t.to->IsNull(i)) {
    w->Bytes(std::string_view());
  } else {
    Fixed(w, t.to, i);
  }
}

Status Value(RlpWriter* w, const TxColumns& t, int64_t i) {
  uint8_t word[32];
  Status st = DecimalStringToWord(t.value->GetView(i), word);
  if (!st.ok()) return Status::Invalid("value: ", st.message());
  w->UintBigEndian(word, 32);
  return Status::OK();
}

// r and s, which a node leaves out of system or deposit transactions.
Status RS(RlpWriter* w, const TxColumns& t, int64_t i) {
  if (t.r->IsNull(i) || t.s->IsNull(i)) return Status::Invalid("the signature's r or s is null");
  Word(w, t.r, i);
  Word(w, t.s, i);
  return Status::OK();
}

Status Signature(RlpWriter* w, const TxColumns& t, int64_t i) {
  if (t.v_parity->IsNull(i)) return Status::Invalid("v_parity is null");
  w->Uint(t.v_parity->Value(i) ? 1 : 0);
  return RS(w, t, i);
}

// The fields of types 2-4 up to and including access_list.
Status DynamicFeeFields(RlpWriter* w, const TxColumns& t, int64_t i) {
  ARROW_RETURN_NOT_OK(ReqU64(w, t.chain_id, i, "chain_id"));
  w->Uint(t.nonce->Value(i));
  ARROW_RETURN_NOT_OK(ReqDecimal(w, t.max_priority_fee_per_gas, i, "max_priority_fee_per_gas"));
  ARROW_RETURN_NOT_OK(ReqDecimal(w, t.max_fee_per_gas, i, "max_fee_per_gas"));
  w->Uint(t.gas_limit->Value(i));
  To(w, t, i);
  ARROW_RETURN_NOT_OK(Value(w, t, i));
  Binary(w, t.input, i);
  AccessList(w, t.access_list, i);
  return Status::OK();
}

}  // namespace

void AddToBloom(Bloom* bloom, const uint8_t* data, size_t size) {
  const Hash32 h = Keccak256(data, size);
  for (int k = 0; k < 6; k += 2) {
    const unsigned bit = ((static_cast<unsigned>(h[k]) << 8) | h[k + 1]) & 2047u;
    (*bloom)[255 - bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
  }
}

Status DecimalStringToWord(std::string_view decimal, uint8_t out[32]) {
  if (decimal.empty()) return Status::Invalid("empty number");
  // Four 64-bit limbs, most significant first.
  uint64_t limb[4] = {0, 0, 0, 0};
  for (char c : decimal) {
    if (c < '0' || c > '9') return Status::Invalid("not a decimal number: ", decimal);
    unsigned __int128 carry = static_cast<unsigned>(c - '0');
    for (int k = 3; k >= 0; --k) {
      unsigned __int128 x = static_cast<unsigned __int128>(limb[k]) * 10 + carry;
      limb[k] = static_cast<uint64_t>(x);
      carry = x >> 64;
    }
    if (carry != 0) return Status::Invalid("above 2^256 - 1: ", decimal);
  }
  for (int k = 0; k < 4; ++k) {
    for (int b = 0; b < 8; ++b) out[8 * k + b] = static_cast<uint8_t>(limb[k] >> (56 - 8 * b));
  }
  return Status::OK();
}

arrow::Result<std::string> EncodeHeader(const BlockColumns& b, int64_t i) {
  RlpWriter w;
  w.BeginList();
  Fixed(&w, b.parent_hash, i);
  Fixed(&w, b.ommers_hash, i);
  Fixed(&w, b.miner, i);
  Fixed(&w, b.state_root, i);
  Fixed(&w, b.transactions_root, i);
  Fixed(&w, b.receipt_root, i);
  Binary(&w, b.logs_bloom, i);
  ARROW_RETURN_NOT_OK(ReqDecimal(&w, b.difficulty, i, "difficulty"));
  w.Uint(b.block_num->Value(i));
  w.Uint(b.gas_limit->Value(i));
  w.Uint(b.gas_used->Value(i));
  w.Uint(static_cast<uint64_t>(b.timestamp->Value(i) / kNanosPerSecond));
  Binary(&w, b.extra_data, i);
  Fixed(&w, b.mix_hash, i);
  {
    uint8_t nonce[8];  // a fixed 8-byte string, not an integer
    const uint64_t n = b.nonce->Value(i);
    for (int k = 0; k < 8; ++k) nonce[k] = static_cast<uint8_t>(n >> (56 - 8 * k));
    w.Bytes(nonce, 8);
  }
  // The later forks' fields, in order; each one only with all before it.
  const arrow::Array* later[] = {b.base_fee_per_gas, b.withdrawals_root, b.blob_gas_used,
                                 b.excess_blob_gas,  b.parent_beacon_root, b.requests_hash};
  const char* names[] = {"base_fee_per_gas",  "withdrawals_root",   "blob_gas_used",
                         "excess_blob_gas",   "parent_beacon_root", "requests_hash"};
  int present = 0;
  for (int k = 0; k < 6; ++k) {
    if (!later[k]->IsNull(i)) present = k + 1;
  }
  for (int k = 0; k < present; ++k) {
    if (later[k]->IsNull(i)) {
      return Status::Invalid("header field ", names[k], " is null but ", names[present - 1],
                             " is stored");
    }
  }
  if (present > 0) ARROW_RETURN_NOT_OK(Decimal(&w, b.base_fee_per_gas, i, "base_fee_per_gas"));
  if (present > 1) Fixed(&w, b.withdrawals_root, i);
  if (present > 2) w.Uint(b.blob_gas_used->Value(i));
  if (present > 3) w.Uint(b.excess_blob_gas->Value(i));
  if (present > 4) Fixed(&w, b.parent_beacon_root, i);
  if (present > 5) Fixed(&w, b.requests_hash, i);
  w.EndList();
  return w.Take();
}

arrow::Result<std::string> EncodeTransaction(const TxColumns& t, int64_t i) {
  RlpWriter w;
  const int32_t type = t.TypeOf(i);
  w.BeginList();
  switch (type) {
    case 0:
      w.Uint(t.nonce->Value(i));
      ARROW_RETURN_NOT_OK(ReqDecimal(&w, t.gas_price, i, "gas_price"));
      w.Uint(t.gas_limit->Value(i));
      To(&w, t, i);
      ARROW_RETURN_NOT_OK(Value(&w, t, i));
      Binary(&w, t.input, i);
      ARROW_RETURN_NOT_OK(ReqDecimal(&w, t.v, i, "v"));
      ARROW_RETURN_NOT_OK(RS(&w, t, i));
      break;
    case 1:
      ARROW_RETURN_NOT_OK(ReqU64(&w, t.chain_id, i, "chain_id"));
      w.Uint(t.nonce->Value(i));
      ARROW_RETURN_NOT_OK(ReqDecimal(&w, t.gas_price, i, "gas_price"));
      w.Uint(t.gas_limit->Value(i));
      To(&w, t, i);
      ARROW_RETURN_NOT_OK(Value(&w, t, i));
      Binary(&w, t.input, i);
      AccessList(&w, t.access_list, i);
      ARROW_RETURN_NOT_OK(Signature(&w, t, i));
      break;
    case 2:
      ARROW_RETURN_NOT_OK(DynamicFeeFields(&w, t, i));
      ARROW_RETURN_NOT_OK(Signature(&w, t, i));
      break;
    case 3:
      ARROW_RETURN_NOT_OK(DynamicFeeFields(&w, t, i));
      ARROW_RETURN_NOT_OK(ReqDecimal(&w, t.max_fee_per_blob_gas, i, "max_fee_per_blob_gas"));
      ARROW_RETURN_NOT_OK(BlobHashes(&w, t.blob_versioned_hashes, i));
      ARROW_RETURN_NOT_OK(Signature(&w, t, i));
      break;
    case 4:
      ARROW_RETURN_NOT_OK(DynamicFeeFields(&w, t, i));
      ARROW_RETURN_NOT_OK(AuthorizationList(&w, t.authorization_list, i));
      ARROW_RETURN_NOT_OK(Signature(&w, t, i));
      break;
    default:
      return Status::Invalid("type ", type,
                             " is not one sluice can encode (0 legacy, 1 EIP-2930, 2 EIP-1559, "
                             "3 EIP-4844, 4 EIP-7702)");
  }
  w.EndList();
  if (type == 0) return w.Take();
  std::string out(1, static_cast<char>(type));
  out += w.encoded();
  return out;
}

arrow::Result<std::string> EncodeReceipt(const TxColumns& t, int64_t i, const LogColumns& l,
                                         int64_t log_begin, int64_t log_end,
                                         Bloom* block_bloom) {
  Bloom bloom{};
  RlpWriter logs;
  logs.BeginList();
  for (int64_t k = log_begin; k < log_end; ++k) {
    logs.BeginList();
    Fixed(&logs, l.address, k);
    AddToBloom(&bloom, l.address->GetValue(k), 20);
    logs.BeginList();
    bool ended = false;
    for (int j = 0; j < 4; ++j) {
      if (l.topic[j]->IsNull(k)) {
        ended = true;
        continue;
      }
      if (ended) {
        return Status::Invalid("log ", l.log_index->Value(k), ": topic", j, " is stored but topic",
                               j - 1, " is null");
      }
      Fixed(&logs, l.topic[j], k);
      AddToBloom(&bloom, l.topic[j]->GetValue(k), 32);
    }
    logs.EndList();
    Binary(&logs, l.data, k);
    logs.EndList();
  }
  logs.EndList();

  RlpWriter w;
  w.BeginList();
  if (!t.post_state_root->IsNull(i)) {
    Fixed(&w, t.post_state_root, i);
  } else if (t.status->IsNull(i)) {
    return Status::Invalid("status and post_state_root are null");
  } else {
    w.Uint(t.status->Value(i) ? 1 : 0);
  }
  w.Uint(t.cumulative_gas_used->Value(i));
  w.Bytes(bloom.data(), bloom.size());
  w.Raw(logs.encoded());
  w.EndList();
  for (size_t k = 0; k < bloom.size(); ++k) (*block_bloom)[k] |= bloom[k];
  const int32_t type = t.TypeOf(i);
  if (type == 0) return w.Take();
  if (type < 0 || type > 0x7f) return Status::Invalid("type ", type, " has no receipt encoding");
  std::string out(1, static_cast<char>(type));
  out += w.encoded();
  return out;
}

}  // namespace sluice::verify
