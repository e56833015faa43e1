#include "verify/evm_rows.h"

#include <string>

namespace sluice::verify {

using arrow::Status;

namespace {

// Binds columns of one batch by name, checking each one's type.
class Binder {
 public:
  Binder(const char* table, std::shared_ptr<arrow::RecordBatch> batch)
      : table_(table), batch_(std::move(batch)) {}

  template <typename A>
  Status Get(const char* name, const A** out) {
    auto column = batch_->GetColumnByName(name);
    if (!column) return Status::Invalid("table ", table_, " has no column ", name);
    *out = dynamic_cast<const A*>(column.get());
    if (*out == nullptr) {
      return Status::Invalid("column ", table_, ".", name, " has type ",
                             column->type()->ToString(), ", not the one sluice writes");
    }
    return Status::OK();
  }

  // A fixed-size binary column of `width` bytes.
  Status Fixed(const char* name, int32_t width, const FixedArray** out) {
    ARROW_RETURN_NOT_OK(Get(name, out));
    if ((*out)->byte_width() != width) {
      return Status::Invalid("column ", table_, ".", name, " has ", (*out)->byte_width(),
                             "-byte values, not ", width);
    }
    return Status::OK();
  }

 private:
  const char* table_;
  std::shared_ptr<arrow::RecordBatch> batch_;
};

arrow::Result<std::shared_ptr<arrow::RecordBatch>> OneBatch(
    const std::shared_ptr<arrow::Table>& table) {
  if (!table) return Status::Invalid("verify: a table is missing");
  return table->CombineChunksToBatch();
}

}  // namespace

arrow::Result<BlockColumns> BlockColumns::Bind(const std::shared_ptr<arrow::Table>& table) {
  BlockColumns c;
  ARROW_ASSIGN_OR_RAISE(c.batch, OneBatch(table));
  c.rows = c.batch->num_rows();
  Binder b("blocks", c.batch);
  ARROW_RETURN_NOT_OK(b.Get("block_num", &c.block_num));
  ARROW_RETURN_NOT_OK(b.Get("timestamp", &c.timestamp));
  ARROW_RETURN_NOT_OK(b.Fixed("hash", 32, &c.hash));
  ARROW_RETURN_NOT_OK(b.Fixed("parent_hash", 32, &c.parent_hash));
  ARROW_RETURN_NOT_OK(b.Fixed("ommers_hash", 32, &c.ommers_hash));
  ARROW_RETURN_NOT_OK(b.Fixed("miner", 20, &c.miner));
  ARROW_RETURN_NOT_OK(b.Fixed("state_root", 32, &c.state_root));
  ARROW_RETURN_NOT_OK(b.Fixed("transactions_root", 32, &c.transactions_root));
  ARROW_RETURN_NOT_OK(b.Fixed("receipt_root", 32, &c.receipt_root));
  ARROW_RETURN_NOT_OK(b.Fixed("mix_hash", 32, &c.mix_hash));
  ARROW_RETURN_NOT_OK(b.Get("logs_bloom", &c.logs_bloom));
  ARROW_RETURN_NOT_OK(b.Get("extra_data", &c.extra_data));
  ARROW_RETURN_NOT_OK(b.Get("difficulty", &c.difficulty));
  ARROW_RETURN_NOT_OK(b.Get("gas_limit", &c.gas_limit));
  ARROW_RETURN_NOT_OK(b.Get("gas_used", &c.gas_used));
  ARROW_RETURN_NOT_OK(b.Get("nonce", &c.nonce));
  ARROW_RETURN_NOT_OK(b.Get("base_fee_per_gas", &c.base_fee_per_gas));
  ARROW_RETURN_NOT_OK(b.Fixed("withdrawals_root", 32, &c.withdrawals_root));
  ARROW_RETURN_NOT_OK(b.Get("blob_gas_used", &c.blob_gas_used));
  ARROW_RETURN_NOT_OK(b.Get("excess_blob_gas", &c.excess_blob_gas));
  ARROW_RETURN_NOT_OK(b.Fixed("parent_beacon_root", 32, &c.parent_beacon_root));
  ARROW_RETURN_NOT_OK(b.Fixed("requests_hash", 32, &c.requests_hash));
  return c;
}

arrow::Result<TxColumns> TxColumns::Bind(const std::shared_ptr<arrow::Table>& table) {
  TxColumns c;
  ARROW_ASSIGN_OR_RAISE(c.batch, OneBatch(table));
  c.rows = c.batch->num_rows();
  Binder b("transactions", c.batch);
  ARROW_RETURN_NOT_OK(b.Get("block_num", &c.block_num));
  ARROW_RETURN_NOT_OK(b.Fixed("block_hash", 32, &c.block_hash));
  ARROW_RETURN_NOT_OK(b.Get("timestamp", &c.timestamp));
  ARROW_RETURN_NOT_OK(b.Get("tx_index", &c.tx_index));
  ARROW_RETURN_NOT_OK(b.Fixed("tx_hash", 32, &c.tx_hash));
  ARROW_RETURN_NOT_OK(b.Fixed("to", 20, &c.to));
  ARROW_RETURN_NOT_OK(b.Fixed("r", 32, &c.r));
  ARROW_RETURN_NOT_OK(b.Fixed("s", 32, &c.s));
  ARROW_RETURN_NOT_OK(b.Get("nonce", &c.nonce));
  ARROW_RETURN_NOT_OK(b.Get("gas_limit", &c.gas_limit));
  ARROW_RETURN_NOT_OK(b.Get("chain_id", &c.chain_id));
  ARROW_RETURN_NOT_OK(b.Get("gas_used", &c.gas_used));
  ARROW_RETURN_NOT_OK(b.Get("cumulative_gas_used", &c.cumulative_gas_used));
  ARROW_RETURN_NOT_OK(b.Get("gas_price", &c.gas_price));
  ARROW_RETURN_NOT_OK(b.Get("v", &c.v));
  ARROW_RETURN_NOT_OK(b.Get("max_fee_per_gas", &c.max_fee_per_gas));
  ARROW_RETURN_NOT_OK(b.Get("max_priority_fee_per_gas", &c.max_priority_fee_per_gas));
  ARROW_RETURN_NOT_OK(b.Get("max_fee_per_blob_gas", &c.max_fee_per_blob_gas));
  ARROW_RETURN_NOT_OK(b.Get("value", &c.value));
  ARROW_RETURN_NOT_OK(b.Get("input", &c.input));
  ARROW_RETURN_NOT_OK(b.Get("v_parity", &c.v_parity));
  ARROW_RETURN_NOT_OK(b.Get("status", &c.status));
  ARROW_RETURN_NOT_OK(b.Get("type", &c.type));
  ARROW_RETURN_NOT_OK(b.Fixed("post_state_root", 32, &c.post_state_root));
  ARROW_RETURN_NOT_OK(b.Get("access_list", &c.access_list));
  ARROW_RETURN_NOT_OK(b.Get("blob_versioned_hashes", &c.blob_versioned_hashes));
  ARROW_RETURN_NOT_OK(b.Get("authorization_list", &c.authorization_list));
  return c;
}

arrow::Result<LogColumns> LogColumns::Bind(const std::shared_ptr<arrow::Table>& table) {
  LogColumns c;
  ARROW_ASSIGN_OR_RAISE(c.batch, OneBatch(table));
  c.rows = c.batch->num_rows();
  Binder b("logs", c.batch);
  ARROW_RETURN_NOT_OK(b.Get("block_num", &c.block_num));
  ARROW_RETURN_NOT_OK(b.Fixed("block_hash", 32, &c.block_hash));
  ARROW_RETURN_NOT_OK(b.Fixed("tx_hash", 32, &c.tx_hash));
  ARROW_RETURN_NOT_OK(b.Fixed("address", 20, &c.address));
  ARROW_RETURN_NOT_OK(b.Get("timestamp", &c.timestamp));
  ARROW_RETURN_NOT_OK(b.Get("tx_index", &c.tx_index));
  ARROW_RETURN_NOT_OK(b.Get("log_index", &c.log_index));
  const char* topics[4] = {"topic0", "topic1", "topic2", "topic3"};
  for (int i = 0; i < 4; ++i) ARROW_RETURN_NOT_OK(b.Fixed(topics[i], 32, &c.topic[i]));
  ARROW_RETURN_NOT_OK(b.Get("data", &c.data));
  return c;
}

}  // namespace sluice::verify
