#include <map>
#include <set>

#include "anvil_fixture.h"
#include "arrow/api.h"
#include "common/hex.h"
#include "gtest/gtest.h"
#include "ingest/evm_decode.h"
#include "ingest/evm_schema.h"

namespace sluice::ingest {

using nlohmann::json;
using sluice::testing::Anvil;
using sluice::testing::JsonRpc;

namespace {

std::string HexOf(const arrow::FixedSizeBinaryArray& a, int64_t i) {
  return common::ToHex(a.GetValue(i), a.byte_width());
}
std::string HexOf(const arrow::BinaryArray& a, int64_t i) {
  return common::ToHex(a.GetView(i));
}
std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(c));
  return s;
}
// Decimal string of a quantity the node wrote, for values below 2^64.
std::string Dec(const json& q) { return std::to_string(JsonRpc::Hex(q)); }

template <typename T>
std::shared_ptr<T> Col(const std::shared_ptr<arrow::Table>& t, const std::string& name) {
  auto col = t->GetColumnByName(name);
  EXPECT_TRUE(col) << name;
  auto combined = arrow::Concatenate(col->chunks()).ValueOrDie();
  return std::static_pointer_cast<T>(combined);
}

class DecodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string err;
    anvil_ = Anvil::Start({"--no-mining"}, &err).release();
    ASSERT_TRUE(anvil_) << err;
    const JsonRpc& node = anvil_->rpc();
    sluice::testing::MineActivity(node, 12);
    // A transfer above 2^64 wei: 5000 ETH.
    big_tx_ = node.Send({{"from", sluice::testing::kDev2},
                         {"to", sluice::testing::kDev1},
                         {"value", "0x10f0cf064dd59200000"}});
    node.Mine();
  }
  static void TearDownTestSuite() {
    delete anvil_;
    anvil_ = nullptr;
  }
  const JsonRpc& node() { return anvil_->rpc(); }
  std::string BlockText(uint64_t n, bool full = true) {
    return node().CallText("eth_getBlockByNumber", {JsonRpc::Q(n), full});
  }
  std::string ReceiptsText(uint64_t n) {
    return node().CallText("eth_getBlockReceipts", {JsonRpc::Q(n)});
  }

  static Anvil* anvil_;
  static std::string big_tx_;
};

Anvil* DecodeTest::anvil_ = nullptr;
std::string DecodeTest::big_tx_;

}  // namespace

TEST_F(DecodeTest, RangeMatchesTheNode) {
  const uint64_t head = node().BlockNumber();
  ASSERT_EQ(head, 13u);
  auto decoder = *EvmDecoder::Make();
  for (uint64_t n = 0; n <= head; ++n) {
    auto st = decoder->Append(BlockText(n), ReceiptsText(n));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(decoder->num_blocks(), static_cast<int64_t>(head + 1));
  auto data = decoder->Finish();
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(decoder->num_blocks(), 0);

  // Schemas are exactly the EVM tables'.
  for (const auto& def : EvmTables()) {
    ASSERT_TRUE(data->tables.count(def.name)) << def.name;
    EXPECT_TRUE(data->tables[def.name]->schema()->Equals(*def.schema)) << def.name;
    EXPECT_TRUE(data->tables[def.name]->ValidateFull().ok()) << def.name;
  }

  // ---- blocks and headers ----
  auto blocks = data->tables[kBlocksTable];
  ASSERT_EQ(blocks->num_rows(), static_cast<int64_t>(head + 1));
  ASSERT_EQ(data->headers.size(), head + 1);
  auto num = Col<arrow::UInt64Array>(blocks, "block_num");
  auto hash = Col<arrow::FixedSizeBinaryArray>(blocks, "hash");
  auto parent = Col<arrow::FixedSizeBinaryArray>(blocks, "parent_hash");
  auto ts = Col<arrow::TimestampArray>(blocks, "timestamp");
  auto gas_used = Col<arrow::UInt64Array>(blocks, "gas_used");
  auto gas_limit = Col<arrow::UInt64Array>(blocks, "gas_limit");
  auto base_fee = Col<arrow::Decimal128Array>(blocks, "base_fee_per_gas");
  auto miner = Col<arrow::FixedSizeBinaryArray>(blocks, "miner");
  auto state_root = Col<arrow::FixedSizeBinaryArray>(blocks, "state_root");
  auto receipt_root = Col<arrow::FixedSizeBinaryArray>(blocks, "receipt_root");
  auto bloom = Col<arrow::BinaryArray>(blocks, "logs_bloom");
  auto extra = Col<arrow::BinaryArray>(blocks, "extra_data");
  auto nonce = Col<arrow::UInt64Array>(blocks, "nonce");
  auto difficulty = Col<arrow::Decimal128Array>(blocks, "difficulty");
  auto beacon = Col<arrow::FixedSizeBinaryArray>(blocks, "parent_beacon_root");
  size_t total_txs = 0;
  for (uint64_t n = 0; n <= head; ++n) {
    json b = node().Block(n, false);
    int64_t i = static_cast<int64_t>(n);
    EXPECT_EQ(num->Value(i), n);
    EXPECT_EQ(HexOf(*hash, i), b["hash"]);
    EXPECT_EQ(HexOf(*parent, i), b["parentHash"]);
    EXPECT_EQ(ts->Value(i), static_cast<int64_t>(JsonRpc::Hex(b["timestamp"])) * 1000000000LL);
    EXPECT_EQ(gas_used->Value(i), JsonRpc::Hex(b["gasUsed"]));
    EXPECT_EQ(gas_limit->Value(i), JsonRpc::Hex(b["gasLimit"]));
    EXPECT_EQ(base_fee->FormatValue(i), Dec(b["baseFeePerGas"]));
    EXPECT_EQ(difficulty->FormatValue(i), Dec(b["difficulty"]));
    EXPECT_EQ(HexOf(*miner, i), Lower(b["miner"]));
    EXPECT_EQ(HexOf(*state_root, i), b["stateRoot"]);
    EXPECT_EQ(HexOf(*receipt_root, i), b["receiptsRoot"]);
    EXPECT_EQ(HexOf(*bloom, i), b["logsBloom"]);
    EXPECT_EQ(HexOf(*extra, i), b["extraData"]);
    EXPECT_EQ(nonce->Value(i), JsonRpc::Hex(b["nonce"]));
    EXPECT_EQ(HexOf(*beacon, i), b["parentBeaconBlockRoot"]);
    EXPECT_EQ(storage::HashToHex(data->headers[n].hash), b["hash"]);
    EXPECT_EQ(storage::HashToHex(data->headers[n].parent_hash), b["parentHash"]);
    EXPECT_EQ(data->headers[n].number, n);
    EXPECT_EQ(data->headers[n].timestamp, static_cast<int64_t>(JsonRpc::Hex(b["timestamp"])));
    total_txs += JsonRpc::Hex(node().Call("eth_getBlockTransactionCountByNumber", {JsonRpc::Q(n)}));
  }

  // ---- transactions, each against eth_getTransactionByHash / eth_getTransactionReceipt ----
  auto txs = data->tables[kTransactionsTable];
  ASSERT_GT(total_txs, 10u);
  ASSERT_EQ(txs->num_rows(), static_cast<int64_t>(total_txs));
  auto t_hash = Col<arrow::FixedSizeBinaryArray>(txs, "tx_hash");
  auto t_block_hash = Col<arrow::FixedSizeBinaryArray>(txs, "block_hash");
  auto t_num = Col<arrow::UInt64Array>(txs, "block_num");
  auto t_ts = Col<arrow::TimestampArray>(txs, "timestamp");
  auto t_index = Col<arrow::UInt32Array>(txs, "tx_index");
  auto t_from = Col<arrow::FixedSizeBinaryArray>(txs, "from");
  auto t_to = Col<arrow::FixedSizeBinaryArray>(txs, "to");
  auto t_nonce = Col<arrow::UInt64Array>(txs, "nonce");
  auto t_gas_limit = Col<arrow::UInt64Array>(txs, "gas_limit");
  auto t_gas_used = Col<arrow::UInt64Array>(txs, "gas_used");
  auto t_status = Col<arrow::BooleanArray>(txs, "status");
  auto t_value = Col<arrow::StringArray>(txs, "value");
  auto t_input = Col<arrow::BinaryArray>(txs, "input");
  auto t_type = Col<arrow::Int32Array>(txs, "type");
  auto t_chain = Col<arrow::UInt64Array>(txs, "chain_id");
  auto t_gas_price = Col<arrow::Decimal128Array>(txs, "gas_price");
  auto t_max_fee = Col<arrow::Decimal128Array>(txs, "max_fee_per_gas");
  auto t_max_prio = Col<arrow::Decimal128Array>(txs, "max_priority_fee_per_gas");
  auto t_r = Col<arrow::FixedSizeBinaryArray>(txs, "r");
  auto t_s = Col<arrow::FixedSizeBinaryArray>(txs, "s");
  auto t_parity = Col<arrow::BooleanArray>(txs, "v_parity");
  auto t_v = Col<arrow::Decimal128Array>(txs, "v");
  auto t_cumulative = Col<arrow::UInt64Array>(txs, "cumulative_gas_used");
  auto t_post_state = Col<arrow::FixedSizeBinaryArray>(txs, "post_state_root");
  int failed = 0, creations = 0;
  bool saw_big = false;
  for (int64_t i = 0; i < txs->num_rows(); ++i) {
    std::string h = HexOf(*t_hash, i);
    json tx = node().Call("eth_getTransactionByHash", {h});
    json rc = node().Call("eth_getTransactionReceipt", {h});
    ASSERT_FALSE(tx.is_null()) << h;
    EXPECT_EQ(HexOf(*t_block_hash, i), tx["blockHash"]);
    EXPECT_EQ(t_num->Value(i), JsonRpc::Hex(tx["blockNumber"]));
    EXPECT_EQ(t_ts->Value(i), ts->Value(static_cast<int64_t>(t_num->Value(i))));
    EXPECT_EQ(t_index->Value(i), JsonRpc::Hex(tx["transactionIndex"]));
    EXPECT_EQ(HexOf(*t_from, i), Lower(tx["from"]));
    if (tx["to"].is_null()) {
      EXPECT_TRUE(t_to->IsNull(i));
      ++creations;
    } else {
      EXPECT_EQ(HexOf(*t_to, i), Lower(tx["to"]));
    }
    EXPECT_EQ(t_nonce->Value(i), JsonRpc::Hex(tx["nonce"]));
    EXPECT_EQ(t_gas_limit->Value(i), JsonRpc::Hex(tx["gas"]));
    EXPECT_EQ(t_gas_used->Value(i), JsonRpc::Hex(rc["gasUsed"]));
    EXPECT_EQ(t_status->Value(i), rc["status"] == "0x1");
    if (rc["status"] != "0x1") ++failed;
    if (h == big_tx_) {
      EXPECT_EQ(t_value->GetString(i), "5000000000000000000000");
      saw_big = true;
    } else {
      EXPECT_EQ(t_value->GetString(i), Dec(tx["value"]));
    }
    EXPECT_EQ(HexOf(*t_input, i), tx["input"]);
    EXPECT_EQ(t_type->Value(i), static_cast<int32_t>(JsonRpc::Hex(tx["type"])));
    EXPECT_EQ(t_chain->Value(i), JsonRpc::Hex(tx["chainId"]));
    EXPECT_EQ(t_gas_price->FormatValue(i), Dec(tx["gasPrice"]));
    EXPECT_EQ(t_max_fee->FormatValue(i), Dec(tx["maxFeePerGas"]));
    EXPECT_EQ(t_max_prio->FormatValue(i), Dec(tx["maxPriorityFeePerGas"]));
    // r and s are quantities: compare numerically via their 64-digit padding.
    auto pad = [](std::string q) { return "0x" + std::string(66 - q.size(), '0') + q.substr(2); };
    EXPECT_EQ(HexOf(*t_r, i), pad(tx["r"]));
    EXPECT_EQ(HexOf(*t_s, i), pad(tx["s"]));
    EXPECT_EQ(t_parity->Value(i), tx["yParity"] == "0x1");
    EXPECT_EQ(t_v->FormatValue(i), Dec(tx["v"]));
    EXPECT_EQ(t_cumulative->Value(i), JsonRpc::Hex(rc["cumulativeGasUsed"]));
    EXPECT_TRUE(t_post_state->IsNull(i)) << "post-Byzantium receipts have no root";
  }
  EXPECT_TRUE(saw_big);
  EXPECT_GT(failed, 0) << "the reverting deployments must show status false";
  EXPECT_GT(creations, 0);

  // ---- logs against eth_getLogs over the range ----
  json node_logs = node().Call(
      "eth_getLogs", {{{"fromBlock", "0x0"}, {"toBlock", JsonRpc::Q(head)}}});
  auto logs = data->tables[kLogsTable];
  ASSERT_GT(node_logs.size(), 4u);
  ASSERT_EQ(logs->num_rows(), static_cast<int64_t>(node_logs.size()));
  auto l_num = Col<arrow::UInt64Array>(logs, "block_num");
  auto l_block_hash = Col<arrow::FixedSizeBinaryArray>(logs, "block_hash");
  auto l_tx = Col<arrow::FixedSizeBinaryArray>(logs, "tx_hash");
  auto l_tx_index = Col<arrow::UInt32Array>(logs, "tx_index");
  auto l_index = Col<arrow::UInt32Array>(logs, "log_index");
  auto l_addr = Col<arrow::FixedSizeBinaryArray>(logs, "address");
  auto l_data = Col<arrow::BinaryArray>(logs, "data");
  std::shared_ptr<arrow::FixedSizeBinaryArray> topics[4];
  for (int k = 0; k < 4; ++k) {
    topics[k] = Col<arrow::FixedSizeBinaryArray>(logs, "topic" + std::to_string(k));
  }
  for (int64_t i = 0; i < logs->num_rows(); ++i) {
    const json& l = node_logs[i];
    EXPECT_EQ(l_num->Value(i), JsonRpc::Hex(l["blockNumber"]));
    EXPECT_EQ(HexOf(*l_block_hash, i), l["blockHash"]);
    EXPECT_EQ(HexOf(*l_tx, i), l["transactionHash"]);
    EXPECT_EQ(l_tx_index->Value(i), JsonRpc::Hex(l["transactionIndex"]));
    EXPECT_EQ(l_index->Value(i), JsonRpc::Hex(l["logIndex"]));
    EXPECT_EQ(HexOf(*l_addr, i), Lower(l["address"]));
    EXPECT_EQ(HexOf(*l_data, i), l["data"]);
    for (size_t k = 0; k < 4; ++k) {
      if (k < l["topics"].size()) {
        EXPECT_EQ(HexOf(*topics[k], i), l["topics"][k]);
      } else {
        EXPECT_TRUE(topics[k]->IsNull(i));
      }
    }
  }
}

TEST_F(DecodeTest, InconsistentAnswersAreInvalid) {
  auto decoder = *EvmDecoder::Make();
  // Blocks 1 and 5 hold one transaction each (MineActivity: i % 4 == 1 for the
  // blocks mined 2nd and 6th); block 2 holds two.
  ASSERT_EQ(node().Block(2)["transactions"].size(), 1u);
  ASSERT_EQ(node().Block(6)["transactions"].size(), 1u);
  ASSERT_EQ(node().Block(3)["transactions"].size(), 2u);

  // Receipts of another block with the same count: transaction hashes differ.
  auto st = decoder->Append(BlockText(2), ReceiptsText(6));
  ASSERT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_NE(st.message().find("block 2"), std::string::npos) << st.message();
  // ... with another count.
  st = decoder->Append(BlockText(3), ReceiptsText(2));
  ASSERT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_NE(st.message().find("receipts"), std::string::npos) << st.message();

  // Blocks fetched without full transactions.
  st = decoder->Append(BlockText(3, false), ReceiptsText(3));
  EXPECT_TRUE(st.IsInvalid()) << st.ToString();

  // Not contiguous; and an error discards the pending rows.
  ASSERT_TRUE(decoder->Append(BlockText(3), ReceiptsText(3)).ok());
  st = decoder->Append(BlockText(5), ReceiptsText(5));
  EXPECT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_EQ(decoder->num_blocks(), 0);
  EXPECT_TRUE(decoder->Finish().status().IsInvalid());

  // A base fee beyond Decimal128(38, 0).
  json b = node().Block(4);
  b["baseFeePerGas"] = "0x4b3b4ca85a86c47a098a224000000000";  // 10^38
  st = decoder->Append(b.dump(), ReceiptsText(4));
  ASSERT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_NE(st.message().find("baseFeePerGas"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("100000000000000000000000000000000000000"), std::string::npos);

  // A missing field is named.
  json b2 = node().Block(4);
  b2.erase("stateRoot");
  st = decoder->Append(b2.dump(), ReceiptsText(4));
  ASSERT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find("stateRoot"), std::string::npos) << st.message();

  // A block the node does not have.
  EXPECT_TRUE(decoder->Append("null", "null").IsInvalid());
  EXPECT_TRUE(DecodeBlockHeader("null").status().IsInvalid());
  auto h = DecodeBlockHeader(BlockText(4, false));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(storage::HashToHex(h->hash), node().BlockHash(4));
}

// The optional list columns, from a real block whose transaction is given the
// fields of types 1, 3 and 4 (the node's own transactions have no blobs or
// authorizations); the truth is the JSON written here.
TEST_F(DecodeTest, ListColumns) {
  json b = node().Block(2);
  ASSERT_EQ(b["transactions"].size(), 1u);
  const std::string a1 = "0x" + std::string(40, 'a'), k1 = "0x" + std::string(64, '1'),
                    k2 = "0x" + std::string(64, '2'), h1 = "0x01" + std::string(62, 'f');
  auto& tx = b["transactions"][0];
  tx["accessList"] = json::array({{{"address", a1}, {"storageKeys", {k1, k2}}},
                                  {{"address", a1}, {"storageKeys", json::array()}}});
  tx["blobVersionedHashes"] = json::array({h1});
  tx["authorizationList"] = json::array({{{"chainId", "0x7a69"}, {"address", a1},
                                          {"nonce", "0x5"}, {"yParity", "0x1"},
                                          {"r", "0x1"}, {"s", k2}}});
  auto decoder = *EvmDecoder::Make();
  ASSERT_TRUE(decoder->Append(b.dump(), ReceiptsText(2)).ok());
  // Block 3 as the node has it: no list fields -> nulls.
  ASSERT_TRUE(decoder->Append(BlockText(3), ReceiptsText(3)).ok());
  auto range = *decoder->Finish();
  auto txs = range.tables.at(kTransactionsTable);
  auto access = Col<arrow::ListArray>(txs, "access_list");
  ASSERT_EQ(access->length(), 3);
  EXPECT_TRUE(access->IsValid(0));
  // Block 3's transactions are type 2: the node writes an empty access list.
  EXPECT_TRUE(access->IsValid(1));
  EXPECT_EQ(access->value_length(1), 0);
  EXPECT_EQ(access->value_length(0), 2);
  auto entries = std::static_pointer_cast<arrow::StructArray>(access->values());
  auto addresses = std::static_pointer_cast<arrow::FixedSizeBinaryArray>(entries->field(0));
  auto keys = std::static_pointer_cast<arrow::ListArray>(entries->field(1));
  EXPECT_EQ(HexOf(*addresses, 0), a1);
  EXPECT_EQ(keys->value_length(0), 2);
  EXPECT_EQ(keys->value_length(1), 0);
  auto key_values = std::static_pointer_cast<arrow::FixedSizeBinaryArray>(keys->values());
  EXPECT_EQ(HexOf(*key_values, 1), k2);
  auto blobs = Col<arrow::ListArray>(txs, "blob_versioned_hashes");
  EXPECT_EQ(blobs->value_length(0), 1);
  EXPECT_EQ(HexOf(*std::static_pointer_cast<arrow::FixedSizeBinaryArray>(blobs->values()), 0), h1);
  EXPECT_TRUE(blobs->IsNull(1));
  auto auths = Col<arrow::ListArray>(txs, "authorization_list");
  auto auth = std::static_pointer_cast<arrow::StructArray>(auths->values());
  EXPECT_EQ(auth->field(0)->GetScalar(0).ValueOrDie()->ToString(), "31337");
  EXPECT_EQ(auth->field(2)->GetScalar(0).ValueOrDie()->ToString(), "5");
  EXPECT_EQ(auth->field(3)->GetScalar(0).ValueOrDie()->ToString(), "true");
  EXPECT_EQ(HexOf(*std::static_pointer_cast<arrow::FixedSizeBinaryArray>(auth->field(4)), 0),
            "0x" + std::string(63, '0') + "1");
  EXPECT_TRUE(auths->IsNull(2));

  // A malformed list is named.
  tx["accessList"] = json::array({{{"address", "0x12"}}});
  auto st = decoder->Append(b.dump(), ReceiptsText(2));
  ASSERT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find("accessList"), std::string::npos) << st.message();
}

TEST(IngestSchema, MatchesTheSpec) {
  auto tables = EvmTables();
  ASSERT_EQ(tables.size(), 3u);
  EXPECT_EQ(tables[0].name, "blocks");
  EXPECT_EQ(tables[1].name, "transactions");
  EXPECT_EQ(tables[2].name, "logs");
  for (const auto& t : tables) {
    auto f = t.schema->GetFieldByName("block_num");
    ASSERT_TRUE(f) << t.name;
    EXPECT_TRUE(f->type()->Equals(arrow::uint64()));
    EXPECT_FALSE(f->nullable());
  }
  auto blocks = tables[0].schema;
  EXPECT_TRUE(blocks->GetFieldByName("hash")->type()->Equals(arrow::fixed_size_binary(32)));
  EXPECT_TRUE(blocks->GetFieldByName("miner")->type()->Equals(arrow::fixed_size_binary(20)));
  EXPECT_TRUE(blocks->GetFieldByName("timestamp")
                  ->type()
                  ->Equals(arrow::timestamp(arrow::TimeUnit::NANO, "UTC")));
  EXPECT_TRUE(blocks->GetFieldByName("difficulty")->type()->Equals(arrow::decimal128(38, 0)));
  EXPECT_TRUE(blocks->GetFieldByName("total_difficulty")->nullable());
  EXPECT_FALSE(blocks->GetFieldByName("gas_used")->nullable());
  auto txs = tables[1].schema;
  EXPECT_TRUE(txs->GetFieldByName("value")->type()->Equals(arrow::utf8()));
  EXPECT_TRUE(txs->GetFieldByName("to")->nullable());
  EXPECT_TRUE(txs->GetFieldByName("tx_index")->type()->Equals(arrow::uint32()));
  EXPECT_TRUE(txs->GetFieldByName("type")->type()->Equals(arrow::int32()));
  EXPECT_TRUE(txs->GetFieldByName("status")->type()->Equals(arrow::boolean()));
  EXPECT_EQ(txs->num_fields(), 28);
  EXPECT_TRUE(txs->GetFieldByName("v")->nullable());
  EXPECT_FALSE(txs->GetFieldByName("cumulative_gas_used")->nullable());
  EXPECT_TRUE(txs->GetFieldByName("post_state_root")->nullable());
  EXPECT_TRUE(txs->GetFieldByName("access_list")->nullable());
  EXPECT_TRUE(txs->GetFieldByName("authorization_list")->type()->Equals(AuthorizationListType()));
  EXPECT_EQ(blocks->num_fields(), 23);
  EXPECT_EQ(tables[2].schema->num_fields(), 12);
}

}  // namespace sluice::ingest
