#include "ingest/evm_decode.h"

#include <cstring>
#include <limits>
#include <optional>

#include "arrow/builder.h"
#include "arrow/table.h"
#include "arrow/table_builder.h"
#include "ingest/evm_json.h"
#include "ingest/evm_schema.h"
#include "ingest/hex_quantity.h"
#include "ingest/simdjson_binding.h"
#include "simdjson.h"

namespace sluice::ingest {

using arrow::Status;
namespace dom = simdjson::dom;
using namespace evm_json;  // NOLINT(build/namespaces): the decoder is built from these helpers

namespace {

constexpr int64_t kNanosPerSecond = 1000000000LL;

template <typename B>
Status Bind(arrow::RecordBatchBuilder* rb, const char* name, B** out) {
  int i = rb->schema()->GetFieldIndex(name);
  if (i < 0) return Status::Invalid("schema has no column ", name);
  *out = dynamic_cast<B*>(rb->GetField(i));
  if (!*out) return Status::Invalid("column ", name, " has an unexpected builder type");
  return Status::OK();
}

}  // namespace

// ---- EvmDecoder ---------------------------------------------------------------------

struct EvmDecoder::Impl {
  dom::parser block_parser;
  dom::parser receipts_parser;
  std::unique_ptr<arrow::RecordBatchBuilder> blocks, txs, logs;
  std::vector<storage::BlockHeader> headers;
  std::string scratch;

  struct {
    U64* block_num;
    Ts* timestamp;
    Fixed *hash, *parent_hash, *ommers_hash, *miner, *state_root, *transactions_root,
        *receipt_root;
    Bin* logs_bloom;
    Dec *difficulty, *total_difficulty;
    U64 *gas_limit, *gas_used;
    Bin* extra_data;
    Fixed* mix_hash;
    U64* nonce;
    Dec* base_fee_per_gas;
    Fixed* withdrawals_root;
    U64 *blob_gas_used, *excess_blob_gas;
    Fixed *parent_beacon_root, *requests_hash;
  } b;
  struct {
    Fixed* block_hash;
    U64* block_num;
    Ts* timestamp;
    U32* tx_index;
    Fixed *tx_hash, *to;
    U64* nonce;
    Dec* gas_price;
    U64* gas_limit;
    Str* value;
    Bin* input;
    Fixed *r, *s;
    Bool* v_parity;
    Dec* v;
    U64 *chain_id, *gas_used, *cumulative_gas_used;
    I32* type;
    Dec *max_fee_per_gas, *max_priority_fee_per_gas, *max_fee_per_blob_gas;
    Fixed* from;
    Bool* status;
    Fixed* post_state_root;
    List* access_list;
    List* blob_versioned_hashes;
    List* authorization_list;
  } t;
  struct {
    Fixed* block_hash;
    U64* block_num;
    Ts* timestamp;
    Fixed* tx_hash;
    U32 *tx_index, *log_index;
    Fixed* address;
    Fixed* topic[4];
    Bin* data;
  } l;

  Status Init(arrow::MemoryPool* pool);
  Status AppendBlock(const std::string& block_json, const std::string& receipts_json);
  Status AppendTransaction(dom::object tx, dom::object receipt, uint32_t index,
                           const storage::BlockHeader& h, int64_t ts_ns);
  Status AppendLogs(dom::object receipt, uint32_t tx_index, const uint8_t* tx_hash,
                    const storage::BlockHeader& h, int64_t ts_ns);
  void Reset() {
    for (auto* rb : {blocks.get(), txs.get(), logs.get()}) {
      for (int i = 0; i < rb->num_fields(); ++i) rb->GetField(i)->Reset();
    }
    headers.clear();
  }
};

Status EvmDecoder::Impl::Init(arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(blocks, arrow::RecordBatchBuilder::Make(BlocksSchema(), pool));
  ARROW_ASSIGN_OR_RAISE(txs, arrow::RecordBatchBuilder::Make(TransactionsSchema(), pool));
  ARROW_ASSIGN_OR_RAISE(logs, arrow::RecordBatchBuilder::Make(LogsSchema(), pool));
  auto* B = blocks.get();
  ARROW_RETURN_NOT_OK(Bind(B, "block_num", &b.block_num));
  ARROW_RETURN_NOT_OK(Bind(B, "timestamp", &b.timestamp));
  ARROW_RETURN_NOT_OK(Bind(B, "hash", &b.hash));
  ARROW_RETURN_NOT_OK(Bind(B, "parent_hash", &b.parent_hash));
  ARROW_RETURN_NOT_OK(Bind(B, "ommers_hash", &b.ommers_hash));
  ARROW_RETURN_NOT_OK(Bind(B, "miner", &b.miner));
  ARROW_RETURN_NOT_OK(Bind(B, "state_root", &b.state_root));
  ARROW_RETURN_NOT_OK(Bind(B, "transactions_root", &b.transactions_root));
  ARROW_RETURN_NOT_OK(Bind(B, "receipt_root", &b.receipt_root));
  ARROW_RETURN_NOT_OK(Bind(B, "logs_bloom", &b.logs_bloom));
  ARROW_RETURN_NOT_OK(Bind(B, "difficulty", &b.difficulty));
  ARROW_RETURN_NOT_OK(Bind(B, "total_difficulty", &b.total_difficulty));
  ARROW_RETURN_NOT_OK(Bind(B, "gas_limit", &b.gas_limit));
  ARROW_RETURN_NOT_OK(Bind(B, "gas_used", &b.gas_used));
  ARROW_RETURN_NOT_OK(Bind(B, "extra_data", &b.extra_data));
  ARROW_RETURN_NOT_OK(Bind(B, "mix_hash", &b.mix_hash));
  ARROW_RETURN_NOT_OK(Bind(B, "nonce", &b.nonce));
  ARROW_RETURN_NOT_OK(Bind(B, "base_fee_per_gas", &b.base_fee_per_gas));
  ARROW_RETURN_NOT_OK(Bind(B, "withdrawals_root", &b.withdrawals_root));
  ARROW_RETURN_NOT_OK(Bind(B, "blob_gas_used", &b.blob_gas_used));
  ARROW_RETURN_NOT_OK(Bind(B, "excess_blob_gas", &b.excess_blob_gas));
  ARROW_RETURN_NOT_OK(Bind(B, "parent_beacon_root", &b.parent_beacon_root));
  ARROW_RETURN_NOT_OK(Bind(B, "requests_hash", &b.requests_hash));
  auto* T = txs.get();
  ARROW_RETURN_NOT_OK(Bind(T, "block_hash", &t.block_hash));
  ARROW_RETURN_NOT_OK(Bind(T, "block_num", &t.block_num));
  ARROW_RETURN_NOT_OK(Bind(T, "timestamp", &t.timestamp));
  ARROW_RETURN_NOT_OK(Bind(T, "tx_index", &t.tx_index));
  ARROW_RETURN_NOT_OK(Bind(T, "tx_hash", &t.tx_hash));
  ARROW_RETURN_NOT_OK(Bind(T, "to", &t.to));
  ARROW_RETURN_NOT_OK(Bind(T, "nonce", &t.nonce));
  ARROW_RETURN_NOT_OK(Bind(T, "gas_price", &t.gas_price));
  ARROW_RETURN_NOT_OK(Bind(T, "gas_limit", &t.gas_limit));
  ARROW_RETURN_NOT_OK(Bind(T, "value", &t.value));
  ARROW_RETURN_NOT_OK(Bind(T, "input", &t.input));
  ARROW_RETURN_NOT_OK(Bind(T, "r", &t.r));
  ARROW_RETURN_NOT_OK(Bind(T, "s", &t.s));
  ARROW_RETURN_NOT_OK(Bind(T, "v_parity", &t.v_parity));
  ARROW_RETURN_NOT_OK(Bind(T, "v", &t.v));
  ARROW_RETURN_NOT_OK(Bind(T, "chain_id", &t.chain_id));
  ARROW_RETURN_NOT_OK(Bind(T, "gas_used", &t.gas_used));
  ARROW_RETURN_NOT_OK(Bind(T, "cumulative_gas_used", &t.cumulative_gas_used));
  ARROW_RETURN_NOT_OK(Bind(T, "type", &t.type));
  ARROW_RETURN_NOT_OK(Bind(T, "max_fee_per_gas", &t.max_fee_per_gas));
  ARROW_RETURN_NOT_OK(Bind(T, "max_priority_fee_per_gas", &t.max_priority_fee_per_gas));
  ARROW_RETURN_NOT_OK(Bind(T, "max_fee_per_blob_gas", &t.max_fee_per_blob_gas));
  ARROW_RETURN_NOT_OK(Bind(T, "from", &t.from));
  ARROW_RETURN_NOT_OK(Bind(T, "status", &t.status));
  ARROW_RETURN_NOT_OK(Bind(T, "post_state_root", &t.post_state_root));
  ARROW_RETURN_NOT_OK(Bind(T, "access_list", &t.access_list));
  ARROW_RETURN_NOT_OK(Bind(T, "blob_versioned_hashes", &t.blob_versioned_hashes));
  ARROW_RETURN_NOT_OK(Bind(T, "authorization_list", &t.authorization_list));
  auto* L = logs.get();
  ARROW_RETURN_NOT_OK(Bind(L, "block_hash", &l.block_hash));
  ARROW_RETURN_NOT_OK(Bind(L, "block_num", &l.block_num));
  ARROW_RETURN_NOT_OK(Bind(L, "timestamp", &l.timestamp));
  ARROW_RETURN_NOT_OK(Bind(L, "tx_hash", &l.tx_hash));
  ARROW_RETURN_NOT_OK(Bind(L, "tx_index", &l.tx_index));
  ARROW_RETURN_NOT_OK(Bind(L, "log_index", &l.log_index));
  ARROW_RETURN_NOT_OK(Bind(L, "address", &l.address));
  ARROW_RETURN_NOT_OK(Bind(L, "topic0", &l.topic[0]));
  ARROW_RETURN_NOT_OK(Bind(L, "topic1", &l.topic[1]));
  ARROW_RETURN_NOT_OK(Bind(L, "topic2", &l.topic[2]));
  ARROW_RETURN_NOT_OK(Bind(L, "topic3", &l.topic[3]));
  ARROW_RETURN_NOT_OK(Bind(L, "data", &l.data));
  return Status::OK();
}

namespace {

arrow::Result<storage::BlockHeader> HeaderFields(dom::object o, storage::BlockHeader h) {
  ARROW_ASSIGN_OR_RAISE(auto hash, ReqString(o, "hash"));
  ARROW_RETURN_NOT_OK(Field("hash", ParseFixedData(hash, h.hash.data(), 32)));
  ARROW_ASSIGN_OR_RAISE(auto parent, ReqString(o, "parentHash"));
  ARROW_RETURN_NOT_OK(Field("parentHash", ParseFixedData(parent, h.parent_hash.data(), 32)));
  ARROW_ASSIGN_OR_RAISE(uint64_t ts, ReqQuantity(o, "timestamp"));
  if (ts > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / kNanosPerSecond)) {
    return Status::Invalid("field 'timestamp': ", ts, " seconds does not fit Timestamp(ns)");
  }
  h.timestamp = static_cast<int64_t>(ts);
  return h;
}

// The header of a block object; errors after its number name the block.
arrow::Result<storage::BlockHeader> HeaderOf(dom::object o) {
  storage::BlockHeader h;
  ARROW_ASSIGN_OR_RAISE(h.number, ReqQuantity(o, "number"));
  auto header = HeaderFields(o, h);
  if (!header.ok()) {
    return header.status().WithMessage("block ", h.number, ": ", header.status().message());
  }
  return header;
}

Status Parse(dom::parser* parser, const std::string& json, const char* what,
             dom::element* out) {
  if (auto e = parser->parse(json).get(*out)) {
    return Status::Invalid(what, ": malformed JSON (", simdjson::error_message(e), ")");
  }
  return Status::OK();
}

}  // namespace

Status EvmDecoder::Impl::AppendBlock(const std::string& block_json,
                                     const std::string& receipts_json) {
  dom::element block_doc, receipts_doc;
  ARROW_RETURN_NOT_OK(Parse(&block_parser, block_json, "block", &block_doc));
  if (block_doc.is_null()) return Status::Invalid("block is null (the node does not have it)");
  dom::object o;
  if (block_doc.get_object().get(o)) return Status::Invalid("block is not a JSON object");
  ARROW_ASSIGN_OR_RAISE(storage::BlockHeader h, HeaderOf(o));
  auto where = [&](const Status& st) {
    if (st.ok()) return st;
    return st.WithMessage("block ", h.number, ": ", st.message());
  };
  if (!headers.empty()) {
    const auto& prev = headers.back();
    if (h.number != prev.number + 1) {
      return Status::Invalid("block ", h.number, " does not follow block ", prev.number);
    }
    if (h.parent_hash != prev.hash) {
      return Status::Invalid("block ", h.number, " (parent ", storage::HashToHex(h.parent_hash),
                             ") does not extend block ", prev.number, " (",
                             storage::HashToHex(prev.hash),
                             "): the node's chain changed between calls");
    }
  }
  ARROW_RETURN_NOT_OK(where(Parse(&receipts_parser, receipts_json, "receipts", &receipts_doc)));
  if (receipts_doc.is_null()) {
    return where(Status::Invalid("receipts are null (the node does not have the block)"));
  }
  dom::array receipts;
  if (receipts_doc.get_array().get(receipts)) {
    return where(Status::Invalid("receipts are not a JSON array"));
  }
  dom::array transactions;
  if (o.at_key("transactions").get_array().get(transactions)) {
    return where(Status::Invalid("missing field 'transactions'"));
  }
  if (receipts.size() != transactions.size()) {
    return where(Status::Invalid("eth_getBlockReceipts returned ", receipts.size(),
                                 " receipts for ", transactions.size(),
                                 " transactions: the node's chain changed between calls?"));
  }
  const int64_t ts_ns = h.timestamp * kNanosPerSecond;

  // blocks
  Status st = [&]() -> Status {
    ARROW_RETURN_NOT_OK(b.block_num->Append(h.number));
    ARROW_RETURN_NOT_OK(b.timestamp->Append(ts_ns));
    ARROW_RETURN_NOT_OK(b.hash->Append(h.hash.data()));
    ARROW_RETURN_NOT_OK(b.parent_hash->Append(h.parent_hash.data()));
    ARROW_RETURN_NOT_OK(AppendFixed(b.ommers_hash, o, "sha3Uncles"));
    ARROW_RETURN_NOT_OK(AppendFixed(b.miner, o, "miner"));
    ARROW_RETURN_NOT_OK(AppendFixed(b.state_root, o, "stateRoot"));
    ARROW_RETURN_NOT_OK(AppendFixed(b.transactions_root, o, "transactionsRoot"));
    ARROW_RETURN_NOT_OK(AppendFixed(b.receipt_root, o, "receiptsRoot"));
    ARROW_RETURN_NOT_OK(AppendData(b.logs_bloom, o, "logsBloom", &scratch));
    ARROW_RETURN_NOT_OK(AppendDecimal(b.difficulty, o, "difficulty"));
    ARROW_RETURN_NOT_OK(AppendOptDecimal(b.total_difficulty, o, "totalDifficulty"));
    ARROW_RETURN_NOT_OK(AppendU64(b.gas_limit, o, "gasLimit"));
    ARROW_RETURN_NOT_OK(AppendU64(b.gas_used, o, "gasUsed"));
    ARROW_RETURN_NOT_OK(AppendData(b.extra_data, o, "extraData", &scratch));
    ARROW_RETURN_NOT_OK(AppendFixed(b.mix_hash, o, "mixHash"));
    ARROW_RETURN_NOT_OK(AppendU64(b.nonce, o, "nonce"));
    ARROW_RETURN_NOT_OK(AppendOptDecimal(b.base_fee_per_gas, o, "baseFeePerGas"));
    ARROW_RETURN_NOT_OK(AppendOptFixed(b.withdrawals_root, o, "withdrawalsRoot"));
    ARROW_RETURN_NOT_OK(AppendOptU64(b.blob_gas_used, o, "blobGasUsed"));
    ARROW_RETURN_NOT_OK(AppendOptU64(b.excess_blob_gas, o, "excessBlobGas"));
    ARROW_RETURN_NOT_OK(AppendOptFixed(b.parent_beacon_root, o, "parentBeaconBlockRoot"));
    ARROW_RETURN_NOT_OK(AppendOptFixed(b.requests_hash, o, "requestsHash"));
    return Status::OK();
  }();
  ARROW_RETURN_NOT_OK(where(st));

  // transactions and logs
  auto receipt_it = receipts.begin();
  size_t i = 0;
  for (dom::element tx_elem : transactions) {
    dom::element receipt_elem = *receipt_it;
    ++receipt_it;
    dom::object tx, receipt;
    if (tx_elem.get_object().get(tx)) {
      return where(Status::Invalid(
          "transaction ", i, " is not an object (fetch blocks with full transactions)"));
    }
    if (receipt_elem.get_object().get(receipt)) {
      return where(Status::Invalid("receipt ", i, " is not an object"));
    }
    st = AppendTransaction(tx, receipt, static_cast<uint32_t>(i), h, ts_ns);
    if (!st.ok()) {
      return where(st.WithMessage("transaction ", i, ": ", st.message()));
    }
    ++i;
  }
  headers.push_back(h);
  return Status::OK();
}

Status EvmDecoder::Impl::AppendTransaction(dom::object tx, dom::object receipt, uint32_t index,
                                           const storage::BlockHeader& h, int64_t ts_ns) {
  uint8_t tx_hash[32], other[32];
  ARROW_ASSIGN_OR_RAISE(auto hash_hex, ReqString(tx, "hash"));
  ARROW_RETURN_NOT_OK(Field("hash", ParseFixedData(hash_hex, tx_hash, 32)));
  ARROW_ASSIGN_OR_RAISE(auto receipt_hash_hex, ReqString(receipt, "transactionHash"));
  ARROW_RETURN_NOT_OK(
      Field("transactionHash", ParseFixedData(receipt_hash_hex, other, 32)));
  if (std::memcmp(tx_hash, other, 32) != 0) {
    return Status::Invalid("receipt is for transaction ", receipt_hash_hex, ", not ", hash_hex,
                           ": the node's chain changed between calls?");
  }
  ARROW_ASSIGN_OR_RAISE(auto receipt_block, OptString(receipt, "blockHash"));
  if (receipt_block) {
    ARROW_RETURN_NOT_OK(Field("blockHash", ParseFixedData(*receipt_block, other, 32)));
    if (std::memcmp(h.hash.data(), other, 32) != 0) {
      return Status::Invalid("receipt belongs to block ", *receipt_block,
                             ": the node's chain changed between calls?");
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto index_hex, OptString(tx, "transactionIndex"));
  if (index_hex) {
    auto v = ParseQuantity(*index_hex);
    if (!v.ok()) return Field("transactionIndex", v.status());
    if (*v != index) {
      return Status::Invalid("field 'transactionIndex' is ", *v, " at position ", index);
    }
  }

  ARROW_RETURN_NOT_OK(t.block_hash->Append(h.hash.data()));
  ARROW_RETURN_NOT_OK(t.block_num->Append(h.number));
  ARROW_RETURN_NOT_OK(t.timestamp->Append(ts_ns));
  ARROW_RETURN_NOT_OK(t.tx_index->Append(index));
  ARROW_RETURN_NOT_OK(t.tx_hash->Append(tx_hash));
  ARROW_RETURN_NOT_OK(AppendOptFixed(t.to, tx, "to"));
  ARROW_RETURN_NOT_OK(AppendU64(t.nonce, tx, "nonce"));
  ARROW_RETURN_NOT_OK(AppendOptDecimal(t.gas_price, tx, "gasPrice"));
  ARROW_RETURN_NOT_OK(AppendU64(t.gas_limit, tx, "gas"));
  {
    ARROW_ASSIGN_OR_RAISE(auto v, ReqString(tx, "value"));
    auto dec = QuantityToDecimal(v);
    if (!dec.ok()) return Field("value", dec.status());
    ARROW_RETURN_NOT_OK(t.value->Append(*dec));
  }
  ARROW_RETURN_NOT_OK(AppendData(t.input, tx, "input", &scratch));
  ARROW_RETURN_NOT_OK(AppendOptWord(t.r, tx, "r"));
  ARROW_RETURN_NOT_OK(AppendOptWord(t.s, tx, "s"));
  ARROW_ASSIGN_OR_RAISE(auto parity, Parity(tx));
  ARROW_RETURN_NOT_OK(parity ? t.v_parity->Append(*parity) : t.v_parity->AppendNull());
  ARROW_RETURN_NOT_OK(AppendOptDecimal(t.v, tx, "v"));
  ARROW_RETURN_NOT_OK(AppendOptU64(t.chain_id, tx, "chainId"));
  ARROW_RETURN_NOT_OK(AppendU64(t.gas_used, receipt, "gasUsed"));
  ARROW_RETURN_NOT_OK(AppendU64(t.cumulative_gas_used, receipt, "cumulativeGasUsed"));
  {
    ARROW_ASSIGN_OR_RAISE(auto type_hex, OptString(tx, "type"));
    if (type_hex) {
      auto v = ParseQuantity(*type_hex);
      if (!v.ok()) return Field("type", v.status());
      if (*v > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        return Status::Invalid("field 'type': ", *type_hex, " does not fit Int32");
      }
      ARROW_RETURN_NOT_OK(t.type->Append(static_cast<int32_t>(*v)));
    } else {
      ARROW_RETURN_NOT_OK(t.type->AppendNull());  // not invented: a node that omits it
    }
  }
  ARROW_RETURN_NOT_OK(AppendOptDecimal(t.max_fee_per_gas, tx, "maxFeePerGas"));
  ARROW_RETURN_NOT_OK(AppendOptDecimal(t.max_priority_fee_per_gas, tx, "maxPriorityFeePerGas"));
  ARROW_RETURN_NOT_OK(AppendOptDecimal(t.max_fee_per_blob_gas, tx, "maxFeePerBlobGas"));
  ARROW_RETURN_NOT_OK(AppendFixed(t.from, tx, "from"));
  {
    ARROW_ASSIGN_OR_RAISE(auto status_hex, OptString(receipt, "status"));
    if (status_hex) {
      auto v = ParseQuantity(*status_hex);
      if (!v.ok()) return Field("status", v.status());
      if (*v > 1) return Status::Invalid("receipt field 'status' is not 0 or 1: ", *status_hex);
      ARROW_RETURN_NOT_OK(t.status->Append(*v == 1));
    } else {
      ARROW_RETURN_NOT_OK(t.status->AppendNull());  // pre-Byzantium: a state root instead
    }
  }
  {
    // Pre-Byzantium receipts carry the state root after the transaction
    // instead of a status; "0x" (some nodes) is no root.
    ARROW_ASSIGN_OR_RAISE(auto root, OptString(receipt, "root"));
    if (root && *root != "0x") {
      ARROW_RETURN_NOT_OK(AppendFixedValue(t.post_state_root, "root", *root));
    } else {
      ARROW_RETURN_NOT_OK(t.post_state_root->AppendNull());
    }
  }
  ARROW_RETURN_NOT_OK(Field("accessList", AppendAccessList(t.access_list, tx)));
  ARROW_RETURN_NOT_OK(Field("blobVersionedHashes",
                            AppendHashList(t.blob_versioned_hashes, tx, "blobVersionedHashes")));
  ARROW_RETURN_NOT_OK(Field("authorizationList",
                            AppendAuthorizationList(t.authorization_list, tx)));
  return AppendLogs(receipt, index, tx_hash, h, ts_ns);
}

Status EvmDecoder::Impl::AppendLogs(dom::object receipt, uint32_t tx_index,
                                    const uint8_t* tx_hash, const storage::BlockHeader& h,
                                    int64_t ts_ns) {
  dom::array entries;
  if (receipt.at_key("logs").get_array().get(entries)) {
    return Status::Invalid("receipt has no 'logs' array");
  }
  size_t k = 0;
  for (dom::element e : entries) {
    dom::object log;
    if (e.get_object().get(log)) return Status::Invalid("log ", k, " is not an object");
    Status st = [&]() -> Status {
      ARROW_ASSIGN_OR_RAISE(uint64_t log_index, ReqQuantity(log, "logIndex"));
      if (log_index > std::numeric_limits<uint32_t>::max()) {
        return Status::Invalid("field 'logIndex' does not fit UInt32: ", log_index);
      }
      dom::array topics;
      if (log.at_key("topics").get_array().get(topics)) {
        return Status::Invalid("missing field 'topics'");
      }
      if (topics.size() > 4) {
        return Status::Invalid("a log has at most 4 topics, got ", topics.size());
      }
      ARROW_RETURN_NOT_OK(l.block_hash->Append(h.hash.data()));
      ARROW_RETURN_NOT_OK(l.block_num->Append(h.number));
      ARROW_RETURN_NOT_OK(l.timestamp->Append(ts_ns));
      ARROW_RETURN_NOT_OK(l.tx_hash->Append(tx_hash));
      ARROW_RETURN_NOT_OK(l.tx_index->Append(tx_index));
      ARROW_RETURN_NOT_OK(l.log_index->Append(static_cast<uint32_t>(log_index)));
      ARROW_RETURN_NOT_OK(AppendFixed(l.address, log, "address"));
      size_t j = 0;
      for (dom::element topic : topics) {
        std::string_view s;
        if (topic.get_string().get(s)) return Status::Invalid("topic ", j, " is not a string");
        ARROW_RETURN_NOT_OK(AppendFixedValue(l.topic[j], "topics", s));
        ++j;
      }
      for (; j < 4; ++j) ARROW_RETURN_NOT_OK(l.topic[j]->AppendNull());
      return AppendData(l.data, log, "data", &scratch);
    }();
    if (!st.ok()) return st.WithMessage("log ", k, ": ", st.message());
    ++k;
  }
  return Status::OK();
}

EvmDecoder::EvmDecoder() : impl_(std::make_unique<Impl>()) {}
EvmDecoder::~EvmDecoder() = default;

arrow::Result<std::unique_ptr<EvmDecoder>> EvmDecoder::Make(arrow::MemoryPool* pool) {
  ARROW_RETURN_NOT_OK(internal::CheckSimdjsonBinding());
  std::unique_ptr<EvmDecoder> decoder(new EvmDecoder());
  ARROW_RETURN_NOT_OK(decoder->impl_->Init(pool));
  return decoder;
}

Status EvmDecoder::Append(const std::string& block_json, const std::string& receipts_json) {
  Status st = impl_->AppendBlock(block_json, receipts_json);
  if (!st.ok()) impl_->Reset();
  return st;
}

arrow::Result<storage::BlockRangeData> EvmDecoder::Finish() {
  if (impl_->headers.empty()) return Status::Invalid("EvmDecoder::Finish: no block appended");
  storage::BlockRangeData data;
  auto finish = [&](arrow::RecordBatchBuilder* rb, const char* name) -> Status {
    ARROW_ASSIGN_OR_RAISE(auto batch, rb->Flush(/*reset_builders=*/true));
    ARROW_ASSIGN_OR_RAISE(data.tables[name], arrow::Table::FromRecordBatches({batch}));
    return Status::OK();
  };
  Status st = finish(impl_->blocks.get(), kBlocksTable);
  if (st.ok()) st = finish(impl_->txs.get(), kTransactionsTable);
  if (st.ok()) st = finish(impl_->logs.get(), kLogsTable);
  if (!st.ok()) {
    impl_->Reset();
    return st;
  }
  data.headers = std::move(impl_->headers);
  impl_->headers.clear();
  return data;
}

void EvmDecoder::Reset() { impl_->Reset(); }

int64_t EvmDecoder::num_blocks() const { return static_cast<int64_t>(impl_->headers.size()); }

arrow::Result<storage::BlockHeader> DecodeBlockHeader(const std::string& block_json) {
  ARROW_RETURN_NOT_OK(internal::CheckSimdjsonBinding());
  dom::parser parser;
  dom::element doc;
  ARROW_RETURN_NOT_OK(Parse(&parser, block_json, "block", &doc));
  if (doc.is_null()) return Status::Invalid("block is null (the node does not have it)");
  dom::object o;
  if (doc.get_object().get(o)) return Status::Invalid("block is not a JSON object");
  return HeaderOf(o);
}

}  // namespace sluice::ingest
