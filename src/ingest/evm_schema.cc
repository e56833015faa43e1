#include "ingest/evm_schema.h"

#include "arrow/type.h"

namespace sluice::ingest {

namespace {

std::shared_ptr<arrow::DataType> Hash() { return arrow::fixed_size_binary(32); }
std::shared_ptr<arrow::DataType> Address() { return arrow::fixed_size_binary(20); }
std::shared_ptr<arrow::DataType> Wei() { return arrow::decimal128(38, 0); }
std::shared_ptr<arrow::DataType> Time() {
  return arrow::timestamp(arrow::TimeUnit::NANO, "UTC");
}
std::shared_ptr<arrow::Field> Req(const char* name, std::shared_ptr<arrow::DataType> type) {
  return arrow::field(name, std::move(type), /*nullable=*/false);
}
std::shared_ptr<arrow::Field> Opt(const char* name, std::shared_ptr<arrow::DataType> type) {
  return arrow::field(name, std::move(type), /*nullable=*/true);
}

}  // namespace

std::shared_ptr<arrow::DataType> AccessListType() {
  return arrow::list(arrow::field(
      "item",
      arrow::struct_({Req("address", Address()),
                      Req("storage_keys", arrow::list(arrow::field("item", Hash(), false)))}),
      false));
}

std::shared_ptr<arrow::DataType> AuthorizationListType() {
  return arrow::list(arrow::field(
      "item",
      arrow::struct_({Req("chain_id", Wei()), Req("address", Address()),
                      Req("nonce", arrow::uint64()), Req("y_parity", arrow::boolean()),
                      Req("r", Hash()), Req("s", Hash())}),
      false));
}

std::shared_ptr<arrow::Schema> BlocksSchema() {
  static const auto schema = arrow::schema({
      Req("block_num", arrow::uint64()),
      Req("timestamp", Time()),
      Req("hash", Hash()),
      Req("parent_hash", Hash()),
      Req("ommers_hash", Hash()),
      Req("miner", Address()),
      Req("state_root", Hash()),
      Req("transactions_root", Hash()),
      Req("receipt_root", Hash()),
      Req("logs_bloom", arrow::binary()),
      Req("difficulty", Wei()),
      Opt("total_difficulty", Wei()),
      Req("gas_limit", arrow::uint64()),
      Req("gas_used", arrow::uint64()),
      Req("extra_data", arrow::binary()),
      Req("mix_hash", Hash()),
      Req("nonce", arrow::uint64()),
      Opt("base_fee_per_gas", Wei()),
      Opt("withdrawals_root", Hash()),
      Opt("blob_gas_used", arrow::uint64()),
      Opt("excess_blob_gas", arrow::uint64()),
      Opt("parent_beacon_root", Hash()),
      Opt("requests_hash", Hash()),
  });
  return schema;
}

std::shared_ptr<arrow::Schema> TransactionsSchema() {
  static const auto schema = arrow::schema({
      Req("block_hash", Hash()),
      Req("block_num", arrow::uint64()),
      Req("timestamp", Time()),
      Req("tx_index", arrow::uint32()),
      Req("tx_hash", Hash()),
      Opt("to", Address()),
      Req("nonce", arrow::uint64()),
      Opt("gas_price", Wei()),
      Req("gas_limit", arrow::uint64()),
      Req("value", arrow::utf8()),
      Req("input", arrow::binary()),
      Opt("r", Hash()),
      Opt("s", Hash()),
      Opt("v_parity", arrow::boolean()),
      Opt("v", Wei()),
      Opt("chain_id", arrow::uint64()),
      Req("gas_used", arrow::uint64()),
      Req("cumulative_gas_used", arrow::uint64()),
      Opt("type", arrow::int32()),
      Opt("max_fee_per_gas", Wei()),
      Opt("max_priority_fee_per_gas", Wei()),
      Opt("max_fee_per_blob_gas", Wei()),
      Req("from", Address()),
      Opt("status", arrow::boolean()),
      Opt("post_state_root", Hash()),
      Opt("access_list", AccessListType()),
      Opt("blob_versioned_hashes", arrow::list(arrow::field("item", Hash(), false))),
      Opt("authorization_list", AuthorizationListType()),
  });
  return schema;
}

std::shared_ptr<arrow::Schema> LogsSchema() {
  static const auto schema = arrow::schema({
      Req("block_hash", Hash()),
      Req("block_num", arrow::uint64()),
      Req("timestamp", Time()),
      Req("tx_hash", Hash()),
      Req("tx_index", arrow::uint32()),
      Req("log_index", arrow::uint32()),
      Req("address", Address()),
      Opt("topic0", Hash()),
      Opt("topic1", Hash()),
      Opt("topic2", Hash()),
      Opt("topic3", Hash()),
      Req("data", arrow::binary()),
  });
  return schema;
}

std::vector<storage::TableDef> EvmTables() {
  // Bloom filters on the hashes and addresses that needle queries look up with
  // `=` (a transaction, an account's transactions, a contract's events).
  return {{kBlocksTable, BlocksSchema(), {"hash"}},
          {kTransactionsTable, TransactionsSchema(), {"tx_hash", "from", "to"}},
          {kLogsTable, LogsSchema(), {"tx_hash", "address", "topic0", "topic1", "topic2", "topic3"}}};
}

}  // namespace sluice::ingest
