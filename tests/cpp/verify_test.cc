// verify/: RLP and trie roots against the Ethereum tests' vectors
// (ethereum/tests RLPTests/rlptest.json, TrieTests/trietest.json and
// trieanyorder.json), and block verification against a real anvil's blocks:
// their roots as the node reports them, the node's own raw transaction
// encodings, and rows changed on purpose.
#include <filesystem>

#include "anvil_fixture.h"
#include "arrow/api.h"
#include "common/hex.h"
#include "gtest/gtest.h"
#include "ingest/evm_decode.h"
#include "ingest/evm_schema.h"
#include "storage/backends.h"
#include "storage/block_store.h"
#include "verify/block_verifier.h"
#include "verify/evm_encoding.h"
#include "verify/keccak.h"
#include "verify/rlp.h"
#include "verify/stored_verifier.h"
#include "verify/trie.h"

namespace sluice::verify {

using nlohmann::json;
using sluice::testing::Anvil;
using sluice::testing::JsonRpc;

namespace {

std::string Hex(const std::string& bytes) { return common::ToHex(bytes); }
std::string Hex(const Hash32& h) { return common::ToHex(h.data(), h.size()); }
std::string Bytes(std::string_view hex) {
  auto v = common::FromHex(hex).ValueOrDie();
  return std::string(v.begin(), v.end());
}

}  // namespace

// ---- RLP (rlptest.json) -------------------------------------------------------------

TEST(Rlp, Strings) {
  EXPECT_EQ(Hex(RlpBytes("")), "0x80");
  EXPECT_EQ(Hex(RlpBytes(std::string(1, '\0'))), "0x00");
  EXPECT_EQ(Hex(RlpBytes("\x01")), "0x01");
  EXPECT_EQ(Hex(RlpBytes("\x7f")), "0x7f");
  EXPECT_EQ(Hex(RlpBytes("dog")), "0x83646f67");
  EXPECT_EQ(Hex(RlpBytes("Lorem ipsum dolor sit amet, consectetur adipisicing eli")),
            "0xb74c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572"
            "206164697069736963696e6720656c69");
  EXPECT_EQ(Hex(RlpBytes("Lorem ipsum dolor sit amet, consectetur adipisicing elit")),
            "0xb8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e73656374657475"
            "72206164697069736963696e6720656c6974");
  // longstring2: 1024 bytes, a two-byte length.
  EXPECT_EQ(Hex(RlpBytes(std::string(1024, 'x'))).substr(0, 8), "0xb90400");
}

TEST(Rlp, Integers) {
  auto uint = [](uint64_t v) {
    RlpWriter w;
    w.Uint(v);
    return Hex(w.Take());
  };
  EXPECT_EQ(uint(0), "0x80");
  EXPECT_EQ(uint(1), "0x01");
  EXPECT_EQ(uint(16), "0x10");
  EXPECT_EQ(uint(79), "0x4f");
  EXPECT_EQ(uint(127), "0x7f");
  EXPECT_EQ(uint(128), "0x8180");
  EXPECT_EQ(uint(1000), "0x8203e8");
  EXPECT_EQ(uint(100000), "0x830186a0");
  auto big = [](std::string_view decimal) {
    uint8_t word[32];
    EXPECT_TRUE(DecimalStringToWord(decimal, word).ok()) << decimal;
    RlpWriter w;
    w.UintBigEndian(word, 32);
    return Hex(w.Take());
  };
  EXPECT_EQ(big("83729609699884896815286331701780722"), "0x8f102030405060708090a0b0c0d0e0f2");
  EXPECT_EQ(big("105315505618206987246253880190783558935785933862974822347068935681"),
            "0x9c0100020003000400050006000700080009000a000b000c000d000e01");
  // bigint: 2^256 does not fit a word; 2^256 - 1 does.
  uint8_t word[32];
  EXPECT_TRUE(DecimalStringToWord(
                  "115792089237316195423570985008687907853269984665640564039457584007913129639936",
                  word)
                  .IsInvalid());
  EXPECT_EQ(big("115792089237316195423570985008687907853269984665640564039457584007913129639935"),
            "0xa0" + std::string(64, 'f'));
  EXPECT_TRUE(DecimalStringToWord("12a", word).IsInvalid());
  EXPECT_TRUE(DecimalStringToWord("", word).IsInvalid());
}

TEST(Rlp, Lists) {
  RlpWriter w;
  w.BeginList();
  w.EndList();
  EXPECT_EQ(Hex(w.Take()), "0xc0");
  w.BeginList();
  for (const char* s : {"dog", "god", "cat"}) w.Bytes(s);
  w.EndList();
  EXPECT_EQ(Hex(w.Take()), "0xcc83646f6783676f6483636174");
  // multilist: ["zw", [4], 1]
  w.BeginList();
  w.Bytes("zw");
  w.BeginList();
  w.Uint(4);
  w.EndList();
  w.Uint(1);
  w.EndList();
  EXPECT_EQ(Hex(w.Take()), "0xc6827a77c10401");
  // listsoflists2: [[], [[]], [[], [[]]]]
  w.BeginList();
  w.BeginList();
  w.EndList();
  w.BeginList();
  w.BeginList();
  w.EndList();
  w.EndList();
  w.BeginList();
  w.BeginList();
  w.EndList();
  w.BeginList();
  w.BeginList();
  w.EndList();
  w.EndList();
  w.EndList();
  w.EndList();
  EXPECT_EQ(Hex(w.Take()), "0xc7c0c1c0c3c0c1c0");
  // shortListMax1: 55 payload bytes; longList1: 64 (a one-byte length).
  w.BeginList();
  for (int i = 0; i < 11; ++i) w.Bytes(std::array<const char*, 3>{"asdf", "qwer", "zxcv"}[i % 3]);
  w.EndList();
  EXPECT_EQ(Hex(w.Take()),
            "0xf784617364668471776572847a78637684617364668471776572847a786376846173646684717765"
            "72847a78637684617364668471776572");
  w.BeginList();
  for (int i = 0; i < 4; ++i) {
    w.BeginList();
    for (const char* s : {"asdf", "qwer", "zxcv"}) w.Bytes(s);
    w.EndList();
  }
  w.EndList();
  EXPECT_EQ(Hex(w.Take()),
            "0xf840cf84617364668471776572847a786376cf84617364668471776572847a786376cf846173646684"
            "71776572847a786376cf84617364668471776572847a786376");
  // dictTest1
  w.BeginList();
  for (int i = 1; i <= 4; ++i) {
    w.BeginList();
    w.Bytes("key" + std::to_string(i));
    w.Bytes("val" + std::to_string(i));
    w.EndList();
  }
  w.EndList();
  EXPECT_EQ(Hex(w.Take()),
            "0xecca846b6579318476616c31ca846b6579328476616c32ca846b6579338476616c33ca846b657934"
            "8476616c34");
}

// ---- the trie (trietest.json, trieanyorder.json: the final contents of each test) ----

TEST(Trie, EmptyRoot) {
  EXPECT_EQ(Hex(EmptyTrieRoot()),
            "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");
  EXPECT_EQ(Hex(OrderedTrieRoot({})), Hex(EmptyTrieRoot()));
  // branchingTests: every key inserted, then deleted (an empty value is an absent key).
  EXPECT_EQ(Hex(TrieRoot({{Bytes("0x04110d816c380812a427968ece99b1c963dfbce6"), ""}})),
            Hex(EmptyTrieRoot()));
}

TEST(Trie, EthereumTestVectors) {
  // emptyValues (and trieanyorder "puppy"): ether and shaman deleted.
  EXPECT_EQ(Hex(TrieRoot({{"do", "verb"}, {"horse", "stallion"}, {"doge", "coin"},
                          {"dog", "puppy"}, {"ether", ""}, {"shaman", ""}})),
            "0x5991bb8c6514148a29db676a14ac506cd2cd5775ace63c30a4fe457715e9ac84");
  // trieanyorder "dogs" and "foo": a key that is a prefix of others (branch values).
  EXPECT_EQ(Hex(TrieRoot({{"doe", "reindeer"}, {"dog", "puppy"}, {"dogglesworth", "cat"}})),
            "0x8aad789dff2f538bca5d8ea56e8abe10f4c7ba3a5dea95fea4cd6e7c3a1168d3");
  EXPECT_EQ(Hex(TrieRoot({{"foo", "bar"}, {"food", "bass"}})),
            "0x17beaa1648bafa633cda809c90c04af50fc8aed3cb40d16efbddee6fdf63c4c3");
  // insert-middle-leaf
  EXPECT_EQ(Hex(TrieRoot({{"key1aa", "0123456789012345678901234567890123456789xxx"},
                          {"key1", "0123456789012345678901234567890123456789Very_Long"},
                          {"key2bb", "aval3"},
                          {"key2", "short"},
                          {"key3cc", "aval3"},
                          {"key3", "1234567890123456789012345678901"}})),
            "0xcb65032e2f76c48b82b5c24b3db8f670ce73982869d38cd39a624f23d62a9e89");
  // jeff: 0x keys and values are hex; one key deleted, one overwritten.
  std::vector<std::pair<std::string, std::string>> jeff;
  auto put = [&](const char* k, const char* v) { jeff.emplace_back(Bytes(k), Bytes(v)); };
  put("0x0000000000000000000000000000000000000000000000000000000000000045",
      "0x22b224a1420a802ab51d326e29fa98e34c4f24ea");
  put("0x0000000000000000000000000000000000000000000000000000000000000046",
      "0x67706c2076330000000000000000000000000000000000000000000000000000");
  put("0x000000000000000000000000697c7b8c961b56f675d570498424ac8de1a918f6",
      "0x6f6f6f6820736f2067726561742c207265616c6c6c793f000000000000000000");
  put("0x0000000000000000000000007ef9e639e2733cb34e4dfc576d4b23f72db776b2",
      "0x4655474156000000000000000000000000000000000000000000000000000000");
  put("0x000000000000000000000000ec4f34c97e43fbb2816cfd95e388353c7181dab1",
      "0x4e616d6552656700000000000000000000000000000000000000000000000000");
  put("0x4655474156000000000000000000000000000000000000000000000000000000",
      "0x7ef9e639e2733cb34e4dfc576d4b23f72db776b2");
  put("0x4e616d6552656700000000000000000000000000000000000000000000000000",
      "0xec4f34c97e43fbb2816cfd95e388353c7181dab1");
  put("0x6f6f6f6820736f2067726561742c207265616c6c6c793f000000000000000000",
      "0x697c7b8c961b56f675d570498424ac8de1a918f6");
  EXPECT_EQ(Hex(TrieRoot(jeff)),
            "0x9f6221ebb8efe7cff60a716ecb886e67dd042014be444669f0159d8e68b42100");
}

TEST(Bloom, OneValueSetsThreeBits) {
  Bloom bloom{};
  const std::string address(20, '\x11');
  AddToBloom(&bloom, reinterpret_cast<const uint8_t*>(address.data()), address.size());
  int bits = 0;
  for (uint8_t b : bloom) bits += __builtin_popcount(b);
  EXPECT_GE(bits, 1);
  EXPECT_LE(bits, 3);
}

// ---- blocks of a real node --------------------------------------------------------

class VerifyAnvilTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string err;
    anvil_ = Anvil::Start({"--no-mining"}, &err).release();
    ASSERT_TRUE(anvil_) << err;
    const JsonRpc& node = anvil_->rpc();
    sluice::testing::MineActivity(node, 12);
    // Legacy (gasPrice) and EIP-2930 (accessList) transactions beside the
    // EIP-1559 ones of MineActivity, in one block.
    node.Send({{"from", sluice::testing::kDev0}, {"to", sluice::testing::kDev1},
               {"value", "0x10f0cf064dd59200000"}, {"gasPrice", "0x77359400"}});
    const std::string key = "0x" + std::string(63, '0') + "1";
    node.Send({{"from", sluice::testing::kDev1},
               {"to", sluice::testing::kDev2},
               {"gasPrice", "0x77359400"},
               {"accessList", json::array({{{"address", sluice::testing::kDev0},
                                            {"storageKeys", json::array({key})}}})}});
    node.Mine();
    head_ = node.BlockNumber();
    auto decoder = ingest::EvmDecoder::Make().ValueOrDie();
    for (uint64_t n = 0; n <= head_; ++n) {
      auto st = decoder->Append(node.CallText("eth_getBlockByNumber", {JsonRpc::Q(n), true}),
                                node.CallText("eth_getBlockReceipts", {JsonRpc::Q(n)}));
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    data_ = new storage::BlockRangeData(decoder->Finish().ValueOrDie());
  }
  static void TearDownTestSuite() {
    delete data_;
    delete anvil_;
  }
  static BlockRows Rows(const storage::BlockRangeData& d) {
    return {d.tables.at("blocks"), d.tables.at("transactions"), d.tables.at("logs")};
  }
  // `d` with row `row` of column `column` of `table` replaced by what `change`
  // makes of its value (a copy of the table, the others shared).
  static storage::BlockRangeData Changed(const std::string& table, const std::string& column,
                                         int64_t row,
                                         std::function<std::shared_ptr<arrow::Scalar>(
                                             const std::shared_ptr<arrow::Scalar>&)> change) {
    storage::BlockRangeData d = *data_;
    auto t = d.tables.at(table)->CombineChunks().ValueOrDie();
    int i = t->schema()->GetFieldIndex(column);
    auto array = t->column(i)->chunk(0);
    auto builder = arrow::MakeBuilder(array->type()).ValueOrDie();
    for (int64_t k = 0; k < array->length(); ++k) {
      auto v = array->GetScalar(k).ValueOrDie();
      EXPECT_TRUE(builder->AppendScalar(k == row ? *change(v) : *v).ok());
    }
    auto replaced = builder->Finish().ValueOrDie();
    d.tables[table] = t->SetColumn(i, t->field(i), std::make_shared<arrow::ChunkedArray>(replaced))
                          .ValueOrDie();
    return d;
  }
  static std::shared_ptr<arrow::Scalar> FlipFirstByte(const std::shared_ptr<arrow::Scalar>& v) {
    auto* s = static_cast<arrow::BaseBinaryScalar*>(v.get());
    std::string bytes = s->value->ToString();
    if (bytes.empty()) bytes = "x";
    bytes[0] = static_cast<char>(bytes[0] ^ 1);
    return arrow::MakeScalar(v->type, arrow::Buffer::FromString(bytes)).ValueOrDie();
  }
  // The first row of `table` whose `column` is not empty/null, and its block.
  static std::pair<int64_t, uint64_t> RowWith(const std::string& table, const std::string& column) {
    auto t = data_->tables.at(table)->CombineChunks().ValueOrDie();
    auto col = std::static_pointer_cast<arrow::BinaryArray>(
        t->GetColumnByName(column)->chunk(0));
    auto num =
        std::static_pointer_cast<arrow::UInt64Array>(t->GetColumnByName("block_num")->chunk(0));
    for (int64_t k = 0; k < col->length(); ++k) {
      if (!col->IsNull(k) && col->value_length(k) > 0) return {k, num->Value(k)};
    }
    ADD_FAILURE() << "no row of " << table << " with " << column;
    return {0, 0};
  }

  static Anvil* anvil_;
  static uint64_t head_;
  static storage::BlockRangeData* data_;
};

Anvil* VerifyAnvilTest::anvil_ = nullptr;
uint64_t VerifyAnvilTest::head_ = 0;
storage::BlockRangeData* VerifyAnvilTest::data_ = nullptr;

TEST_F(VerifyAnvilTest, TransactionsRootOfTheNodesOwnEncodings) {
  // The trie alone, fed the node's raw transactions (eth_getRawTransactionByHash).
  const JsonRpc& node = anvil_->rpc();
  int blocks_with_txs = 0;
  for (uint64_t n = 0; n <= head_; ++n) {
    json block = node.Block(n, false);
    std::vector<std::string> raw;
    for (const auto& h : block["transactions"]) {
      raw.push_back(Bytes(node.Call("eth_getRawTransactionByHash", {h}).get<std::string>()));
    }
    if (!raw.empty()) ++blocks_with_txs;
    EXPECT_EQ(Hex(OrderedTrieRoot(raw)), block["transactionsRoot"]) << "block " << n;
  }
  EXPECT_GT(blocks_with_txs, 5);
}

TEST_F(VerifyAnvilTest, EveryBlockVerifies) {
  auto report = VerifyBlocks(Rows(*data_));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  for (const auto& m : report->mismatches) ADD_FAILURE() << m.ToString();
  EXPECT_EQ(report->blocks, head_ + 1);
  EXPECT_EQ(report->transactions,
            static_cast<uint64_t>(data_->tables.at("transactions")->num_rows()));
  EXPECT_EQ(report->logs, static_cast<uint64_t>(data_->tables.at("logs")->num_rows()));
  // Types 0, 1 and 2 are among them.
  auto types = data_->tables.at("transactions")->GetColumnByName("type");
  std::set<int32_t> seen;
  for (const auto& chunk : types->chunks()) {
    auto a = std::static_pointer_cast<arrow::Int32Array>(chunk);
    for (int64_t k = 0; k < a->length(); ++k) seen.insert(a->Value(k));
  }
  EXPECT_EQ(seen, (std::set<int32_t>{0, 1, 2}));
  EXPECT_TRUE(VerifyRange(*data_).ok());
  // A range limits what is checked.
  auto part = VerifyBlocks(Rows(*data_), storage::BlockRange{3, 5});
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->blocks, 3u);
}

TEST_F(VerifyAnvilTest, AChangedLogNamesItsBlockAndTheReceiptsRoot) {
  auto [row, block] = RowWith("logs", "data");
  auto d = Changed("logs", "data", row, FlipFirstByte);
  auto report = VerifyBlocks(Rows(d)).ValueOrDie();
  ASSERT_EQ(report.mismatches.size(), 1u);
  EXPECT_EQ(report.mismatches[0].number, block);
  const std::string text = report.mismatches[0].ToString();
  EXPECT_NE(text.find("receipts root: recomputed"), std::string::npos) << text;
  EXPECT_EQ(text.find("transactions root"), std::string::npos) << text;
  auto st = VerifyRange(d);
  ASSERT_TRUE(st.IsInvalid());
  EXPECT_EQ(VerificationFailureBlock(st), block);
  EXPECT_NE(st.message().find("block " + std::to_string(block)), std::string::npos);
}

TEST_F(VerifyAnvilTest, AChangedValueNamesTheTransaction) {
  auto t = data_->tables.at("transactions");
  auto d = Changed("transactions", "value", 0, [](const std::shared_ptr<arrow::Scalar>& v) {
    auto* s = static_cast<arrow::StringScalar*>(v.get());
    return arrow::MakeScalar(s->value->ToString() + "1");
  });
  auto report = VerifyBlocks(Rows(d)).ValueOrDie();
  ASSERT_EQ(report.mismatches.size(), 1u);
  const std::string text = report.mismatches[0].ToString();
  EXPECT_NE(text.find("transaction 0 hash: recomputed"), std::string::npos) << text;
  EXPECT_NE(text.find("transactions root: recomputed"), std::string::npos) << text;
}

TEST_F(VerifyAnvilTest, AChangedHeaderFieldNamesTheBlockHash) {
  auto d = Changed("blocks", "extra_data", 4, FlipFirstByte);
  auto report = VerifyBlocks(Rows(d)).ValueOrDie();
  ASSERT_EQ(report.mismatches.size(), 1u);
  EXPECT_EQ(report.mismatches[0].number, 4u);
  EXPECT_NE(report.mismatches[0].ToString().find("block hash (of the header fields)"),
            std::string::npos);
  // The bloom is recomputed from the logs.
  auto [row, block] = RowWith("logs", "data");
  (void)row;
  auto b = Changed("blocks", "logs_bloom", static_cast<int64_t>(block), FlipFirstByte);
  auto bloom = VerifyBlocks(Rows(b)).ValueOrDie();
  ASSERT_EQ(bloom.mismatches.size(), 1u);
  EXPECT_NE(bloom.mismatches[0].ToString().find("logs bloom"), std::string::npos);
}

// A node that predates typed transactions (EIP-2718) omits `type`: stored as null
// (docs/tables.md) and encoded as legacy. A typed transaction whose type is lost
// is then encoded wrongly, and its block fails.
TEST_F(VerifyAnvilTest, ANullTypeIsLegacy) {
  auto t = data_->tables.at("transactions")->CombineChunks().ValueOrDie();
  auto types = std::static_pointer_cast<arrow::Int32Array>(t->GetColumnByName("type")->chunk(0));
  auto nums =
      std::static_pointer_cast<arrow::UInt64Array>(t->GetColumnByName("block_num")->chunk(0));
  auto row_of_type = [&](int32_t type) -> int64_t {
    for (int64_t k = 0; k < types->length(); ++k) {
      if (types->Value(k) == type) return k;
    }
    ADD_FAILURE() << "no transaction of type " << type;
    return 0;
  };
  auto null_type = [](const std::shared_ptr<arrow::Scalar>& v) {
    return arrow::MakeNullScalar(v->type);
  };
  const int64_t legacy = row_of_type(0);
  auto d = Changed("transactions", "type", legacy, null_type);
  auto report = VerifyBlocks(Rows(d));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  for (const auto& m : report->mismatches) ADD_FAILURE() << m.ToString();

  const int64_t dynamic_fee = row_of_type(2);
  auto wrong = VerifyBlocks(Rows(Changed("transactions", "type", dynamic_fee, null_type)));
  ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();
  ASSERT_EQ(wrong->mismatches.size(), 1u);
  EXPECT_EQ(wrong->mismatches[0].number, nums->Value(dynamic_fee));
  EXPECT_NE(wrong->mismatches[0].ToString().find("transactions root"), std::string::npos)
      << wrong->mismatches[0].ToString();
}

TEST_F(VerifyAnvilTest, StoredBlocksVerifyFromTheDataDirectory) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sluice_verify_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    storage::StoreOptions options;
    options.data_dir = dir;
    options.dataset = "eth_rpc";
    options.tables = ingest::EvmTables();
    options.fsync = false;
    auto store = storage::BlockStore::Open(options).ValueOrDie();
    // Two segments: blocks 0-5 and 6-head.
    storage::BlockRangeData first, second;
    auto rows_of = [&](const std::string& table, uint64_t lo, uint64_t hi) {
      auto t = data_->tables.at(table);
      auto num = std::static_pointer_cast<arrow::UInt64Array>(
          t->CombineChunks().ValueOrDie()->GetColumnByName("block_num")->chunk(0));
      int64_t a = 0;
      while (a < num->length() && num->Value(a) < lo) ++a;
      int64_t b = a;
      while (b < num->length() && num->Value(b) <= hi) ++b;
      return t->Slice(a, b - a);
    };
    for (auto* part : {&first, &second}) {
      const uint64_t lo = part == &first ? 0 : 6, hi = part == &first ? 5 : head_;
      part->headers.assign(data_->headers.begin() + lo, data_->headers.begin() + hi + 1);
      for (const char* t : {"blocks", "transactions", "logs"}) part->tables[t] = rows_of(t, lo, hi);
      ASSERT_TRUE(store->Append(*part).ok());
    }
  }
  // The dataset as `sluice verify` reads a data directory: its manifest and files.
  auto stored = [&](const std::string& dataset) {
    storage::StoreOptions store;
    store.data_dir = dir;
    store.dataset = dataset;
    store.tables = ingest::EvmTables();
    auto backends =
        storage::MakeBackends(storage::BackendOptions{}, storage::StoreRole::kSingle, &store)
            .ValueOrDie();
    StoredVerifyOptions o;
    o.metadata = backends.metadata;
    o.segments = backends.segments;
    o.tables = store.tables;
    o.name = (dir / dataset).string();
    return o;
  };
  StoredVerifyOptions options = stored("eth_rpc");
  int progress_calls = 0;
  options.on_progress = [&](const StoredProgress& p) {
    ++progress_calls;
    EXPECT_EQ(p.range.start, 0u);
    EXPECT_EQ(p.range.end, head_);
  };
  auto report = VerifyStored(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->blocks, head_ + 1);
  EXPECT_TRUE(report->all_match());
  EXPECT_EQ(progress_calls, 2);

  options.on_progress = nullptr;
  options.from = 4;
  options.to = 7;
  report = VerifyStored(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->blocks, 4u);

  options.to = head_ + 1;
  auto beyond = VerifyStored(options);
  ASSERT_TRUE(beyond.status().IsInvalid());
  EXPECT_NE(beyond.status().message().find("are not all stored"), std::string::npos);

  EXPECT_TRUE(VerifyStored(stored("nope")).status().IsIOError());
  std::filesystem::remove_all(dir);
}

// A data directory written before the verification columns existed is refused,
// naming the columns it lacks (their values come only from the node).
TEST(VerifyColumns, ADataDirectoryWithoutThemIsRefused) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sluice_verify_old_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  storage::StoreOptions options;
  options.data_dir = dir;
  options.fsync = false;
  options.tables = ingest::EvmTables();
  auto& txs = options.tables[1];
  ASSERT_EQ(txs.name, "transactions");
  for (const char* added : {"v", "cumulative_gas_used", "post_state_root"}) {
    txs.schema = txs.schema->RemoveField(txs.schema->GetFieldIndex(added)).ValueOrDie();
  }
  ASSERT_TRUE(storage::BlockStore::Open(options).ok());
  options.tables = ingest::EvmTables();
  auto reopened = storage::BlockStore::Open(options);
  ASSERT_TRUE(reopened.status().IsInvalid());
  const std::string message = reopened.status().message();
  EXPECT_NE(message.find("stored table eth_rpc.transactions"), std::string::npos) << message;
  EXPECT_NE(message.find("it lacks the columns v, cumulative_gas_used, post_state_root"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("extract into a new data_dir"), std::string::npos) << message;
  std::filesystem::remove_all(dir);
}

}  // namespace sluice::verify
