// The extractor against a real anvil node: every check compares the store's
// contents with the node's own JSON-RPC answers.
#include <algorithm>
#include <functional>
#include <set>

#include "anvil_fixture.h"
#include "arrow/api.h"
#include "arrow/io/file.h"
#include "common/hex.h"
#include "gtest/gtest.h"
#include "ingest/evm_schema.h"
#include "ingest/extractor.h"
#include "parquet/arrow/reader.h"
#include "test_util.h"

namespace sluice::ingest {

using nlohmann::json;
using sluice::testing::Anvil;
using sluice::testing::JsonRpc;
using sluice::testing::TempDir;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::unique_ptr<storage::BlockStore> OpenStore(const TempDir& dir, bool fsync = false) {
  storage::StoreOptions o;
  o.data_dir = dir.path();
  o.dataset = "eth_rpc";
  o.network = "anvil";
  o.tables = EvmTables();
  o.fsync = fsync;
  auto store = storage::BlockStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

ExtractorOptions Options(const std::string& url) {
  ExtractorOptions o;
  o.node.urls = {url};
  o.batch_blocks = 16;
  o.max_in_flight = 3;
  o.poll_interval = milliseconds(20);
  o.commit_interval = milliseconds(100);
  o.head_recheck_interval = milliseconds(200);
  o.backoff_initial = milliseconds(20);
  o.backoff_max = milliseconds(200);
  return o;
}

std::unique_ptr<Extractor> StartExtractor(ExtractorOptions o, storage::BlockStore* store) {
  auto ex = Extractor::Make(std::move(o), store);
  EXPECT_TRUE(ex.ok()) << ex.status().ToString();
  if (!ex.ok()) return nullptr;
  auto st = (*ex)->Start();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return std::move(*ex);
}

bool WaitUntil(const std::function<bool()>& pred, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return pred();
}

bool CaughtUp(const storage::BlockStore& store, const JsonRpc& node) {
  auto head = store.head();
  if (!head) return false;
  uint64_t n = node.BlockNumber();
  return head->number == n && storage::HashToHex(head->hash) == node.BlockHash(n);
}

/// Every row of `table` in the store's current snapshot, in block order.
std::shared_ptr<arrow::Table> ReadStored(const storage::BlockStore& store,
                                         const std::string& table) {
  auto snap = store.snapshot();
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& path : snap->FilesFor(table)) {
    auto in = *arrow::io::ReadableFile::Open(path.string());
    auto reader = *parquet::arrow::OpenFile(in, arrow::default_memory_pool());
    auto t = reader->ReadTable();
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    parts.push_back(*t);
  }
  return *arrow::ConcatenateTables(parts);
}

template <typename T>
std::shared_ptr<T> Col(const std::shared_ptr<arrow::Table>& t, const std::string& name) {
  return std::static_pointer_cast<T>(*arrow::Concatenate(t->GetColumnByName(name)->chunks()));
}

/// The store holds exactly blocks [first, node head] of the node's chain: one
/// row per block with the node's hashes, and as many transactions and logs as
/// the node reports for that range.
void ExpectStoreMatchesNode(const storage::BlockStore& store, const JsonRpc& node,
                            uint64_t first = 0) {
  auto snap = store.snapshot();
  ASSERT_TRUE(snap->range.has_value());
  const uint64_t head = node.BlockNumber();
  EXPECT_EQ(snap->range->start, first);
  ASSERT_EQ(snap->range->end, head);

  auto blocks = ReadStored(store, kBlocksTable);
  ASSERT_EQ(blocks->num_rows(), static_cast<int64_t>(head - first + 1));
  auto num = Col<arrow::UInt64Array>(blocks, "block_num");
  auto hash = Col<arrow::FixedSizeBinaryArray>(blocks, "hash");
  size_t node_txs = 0;
  for (uint64_t n = first; n <= head; ++n) {
    int64_t i = static_cast<int64_t>(n - first);
    ASSERT_EQ(num->Value(i), n) << "gap or duplicate at row " << i;
    std::string node_hash = node.BlockHash(n);
    EXPECT_EQ(common::ToHex(hash->GetValue(i), 32), node_hash) << "block " << n;
    ASSERT_TRUE(snap->Header(n)) << n;
    EXPECT_EQ(storage::HashToHex(snap->Header(n)->hash), node_hash) << "header " << n;
    node_txs +=
        JsonRpc::Hex(node.Call("eth_getBlockTransactionCountByNumber", {JsonRpc::Q(n)}));
  }

  auto txs = ReadStored(store, kTransactionsTable);
  EXPECT_EQ(txs->num_rows(), static_cast<int64_t>(node_txs));
  auto tx_hash = Col<arrow::FixedSizeBinaryArray>(txs, "tx_hash");
  auto tx_block = Col<arrow::UInt64Array>(txs, "block_num");
  std::set<std::string> unique;
  for (int64_t i = 0; i < txs->num_rows(); ++i) {
    std::string h = common::ToHex(tx_hash->GetValue(i), 32);
    unique.insert(h);
    if (i % 7 == 0) {  // spot-check against the node
      json tx = node.Call("eth_getTransactionByHash", {h});
      ASSERT_FALSE(tx.is_null()) << h;
      EXPECT_EQ(JsonRpc::Hex(tx["blockNumber"]), tx_block->Value(i));
    }
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(txs->num_rows())) << "duplicate transactions";

  json logs = node.Call("eth_getLogs",
                        {{{"fromBlock", JsonRpc::Q(first)}, {"toBlock", JsonRpc::Q(head)}}});
  EXPECT_EQ(ReadStored(store, kLogsTable)->num_rows(), static_cast<int64_t>(logs.size()));
}

std::unique_ptr<Anvil> StartAnvil(std::vector<std::string> args = {"--no-mining"}) {
  std::string err;
  auto anvil = Anvil::Start(std::move(args), &err);
  EXPECT_TRUE(anvil) << err;
  return anvil;
}

json ReorgTx() {
  return json::array({json::array(
      {{{"from", sluice::testing::kDev0}, {"to", sluice::testing::kDev2}, {"value", "0x7"}}, 0})});
}

}  // namespace

TEST(IngestExtractor, BackfillThenFollowHead) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  const JsonRpc& node = anvil->rpc();
  sluice::testing::MineActivity(node, 40);
  node.Mine(300);
  sluice::testing::MineActivity(node, 20);

  TempDir dir;
  auto store = OpenStore(dir);
  auto ex = StartExtractor(Options(anvil->url()), store.get());
  ASSERT_TRUE(ex);
  ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, node); }, milliseconds(60000)))
      << "stored head " << (store->head() ? store->head()->number : 0) << ", node "
      << node.BlockNumber() << ", last error: " << ex->last_error();
  ExpectStoreMatchesNode(*store, node);
  EXPECT_EQ(ex->node_head(), node.BlockNumber());
  EXPECT_EQ(ex->stored_head(), node.BlockNumber());
  EXPECT_EQ(ex->reorgs(), 0u);
  EXPECT_EQ(ex->rpc_errors(), 0u) << ex->last_error();
  EXPECT_TRUE(store->identity().has_value());
  EXPECT_EQ(store->identity()->chain_id, JsonRpc::Hex(node.Call("eth_chainId")));
  EXPECT_EQ(storage::HashToHex(store->identity()->genesis_hash), node.BlockHash(0));

  // Head following: each new block is stored shortly after the node has it.
  std::vector<double> latencies_ms;
  for (int i = 0; i < 8; ++i) {
    node.Send({{"from", sluice::testing::kDev1}, {"data", sluice::testing::LoggingInitCode()}});
    node.Mine();
    auto t0 = Clock::now();
    const uint64_t n = node.BlockNumber();
    ASSERT_TRUE(WaitUntil([&] { return store->head() && store->head()->number == n; },
                          milliseconds(5000)))
        << ex->last_error();
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(milliseconds(30 + 17 * i));  // vary the poll phase
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  std::printf("[ingest] head latency ms: median %.1f, max %.1f (poll_interval 20 ms)\n",
              latencies_ms[latencies_ms.size() / 2], latencies_ms.back());
  EXPECT_LT(latencies_ms[latencies_ms.size() / 2], 500.0);
  ExpectStoreMatchesNode(*store, node);

  auto t0 = Clock::now();
  ex->Stop();
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  EXPECT_FALSE(ex->running());
}

TEST(IngestExtractor, ResumesWithoutGapOrDuplicate) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  const JsonRpc& node = anvil->rpc();
  sluice::testing::MineActivity(node, 30);
  TempDir dir;
  {
    auto store = OpenStore(dir);
    auto ex = StartExtractor(Options(anvil->url()), store.get());
    ASSERT_TRUE(ex);
    ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, node); }, milliseconds(30000)));
    ex->Stop();

    // More blocks while stopped; Start the same extractor again.
    sluice::testing::MineActivity(node, 25);
    ASSERT_TRUE(ex->Start().ok());
    ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, node); }, milliseconds(30000)))
        << ex->last_error();
    ExpectStoreMatchesNode(*store, node);
    ex->Stop();
  }
  // More blocks; a new process: the store re-opened, a new extractor.
  sluice::testing::MineActivity(node, 25);
  node.Mine(100);
  {
    auto store = OpenStore(dir);
    ASSERT_TRUE(store->head().has_value());
    auto o = Options(anvil->url());
    o.start_block = 5;  // ignored: the store has blocks
    auto ex = StartExtractor(o, store.get());
    ASSERT_TRUE(ex);
    ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, node); }, milliseconds(30000)))
        << ex->last_error();
    ExpectStoreMatchesNode(*store, node);
    EXPECT_EQ(ex->rpc_errors(), 0u) << ex->last_error();
  }
}

TEST(IngestExtractor, StartBlockAndStopAt) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  const JsonRpc& node = anvil->rpc();
  sluice::testing::MineActivity(node, 12);
  node.Mine(100);
  TempDir dir;
  auto store = OpenStore(dir);
  auto o = Options(anvil->url());
  o.start_block = 7;
  o.stop_at = 90;
  auto ex = StartExtractor(o, store.get());
  ASSERT_TRUE(ex);
  ASSERT_TRUE(WaitUntil([&] { return ex->finished(); }, milliseconds(30000))) << ex->last_error();
  auto snap = store->snapshot();
  ASSERT_TRUE(snap->range);
  EXPECT_EQ(snap->range->start, 7u);
  EXPECT_EQ(snap->range->end, 90u);
  for (uint64_t n = 7; n <= 90; ++n) {
    ASSERT_TRUE(snap->Header(n));
    EXPECT_EQ(storage::HashToHex(snap->Header(n)->hash), node.BlockHash(n));
  }
  // The first stored block's parent is not stored; its header still says it.
  EXPECT_EQ(storage::HashToHex(snap->Header(7)->parent_hash), node.BlockHash(6));
  EXPECT_FALSE(ex->running());
}

TEST(IngestExtractor, FollowsReorgs) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  const JsonRpc& node = anvil->rpc();
  sluice::testing::MineActivity(node, 30);
  TempDir dir;
  auto store = OpenStore(dir);
  auto ex = StartExtractor(Options(anvil->url()), store.get());
  ASSERT_TRUE(ex);
  ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, node); }, milliseconds(30000)));

  // 1. A reorg that keeps the height: noticed by the head re-check.
  std::string old_head = node.BlockHash(node.BlockNumber());
  node.Call("anvil_reorg", {3, ReorgTx()});
  ASSERT_NE(node.BlockHash(node.BlockNumber()), old_head) << "anvil_reorg changed nothing";
  ASSERT_TRUE(WaitUntil([&] { return ex->reorgs() >= 1 && CaughtUp(*store, node); },
                        milliseconds(10000)))
      << ex->last_error();
  ExpectStoreMatchesNode(*store, node);

  // 2. A reorg followed by new blocks: noticed by the parent hash of the next block.
  node.Call("anvil_reorg", {5, ReorgTx()});
  sluice::testing::MineActivity(node, 4);
  ASSERT_TRUE(WaitUntil([&] { return ex->reorgs() >= 2 && CaughtUp(*store, node); },
                        milliseconds(10000)))
      << ex->last_error();
  ExpectStoreMatchesNode(*store, node);

  // 3. A reorg while the extractor is stopped: noticed at start.
  ex->Stop();
  node.Call("anvil_reorg", {2, ReorgTx()});
  ASSERT_TRUE(ex->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return ex->reorgs() >= 3 && CaughtUp(*store, node); },
                        milliseconds(10000)))
      << ex->last_error();
  ExpectStoreMatchesNode(*store, node);
  EXPECT_FALSE(ex->failed());
  EXPECT_EQ(ex->reorgs(), 3u);
}

TEST(IngestExtractor, WaitsForANodeBehindTheStore) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  const JsonRpc& node = anvil->rpc();
  node.Mine(10);
  const std::string snapshot = node.Call("evm_snapshot");
  sluice::testing::MineActivity(node, 8);
  TempDir dir;
  auto store = OpenStore(dir);
  auto ex = StartExtractor(Options(anvil->url()), store.get());
  ASSERT_TRUE(ex);
  ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, node); }, milliseconds(30000)));
  ex->Stop();
  const auto stored = *store->head();

  // The node goes back to block 10: its chain is shorter than the store's.
  ASSERT_TRUE(node.Call("evm_revert", {snapshot}).get<bool>());
  ASSERT_EQ(node.BlockNumber(), 10u);
  ASSERT_TRUE(ex->Start().ok());
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(store->head()->number, stored.number) << "nothing may be deleted while waiting";
  EXPECT_EQ(store->head()->hash, stored.hash);
  EXPECT_EQ(ex->reorgs(), 0u);
  EXPECT_EQ(ex->node_head(), 10u);

  // The node's new chain grows past the store: the stored blocks above 10 are
  // replaced by the node's.
  for (int i = 0; i < 12; ++i) {
    node.Send({{"from", sluice::testing::kDev2}, {"to", sluice::testing::kDev1},
               {"value", JsonRpc::Q(0x99 + i)}});
    node.Mine();
  }
  ASSERT_TRUE(WaitUntil([&] { return ex->reorgs() == 1 && CaughtUp(*store, node); },
                        milliseconds(10000)))
      << ex->last_error();
  ExpectStoreMatchesNode(*store, node);
}

TEST(IngestExtractor, ReorgDeeperThanLimitStops) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  const JsonRpc& node = anvil->rpc();
  node.Mine(20);
  TempDir dir;
  auto store = OpenStore(dir);
  auto o = Options(anvil->url());
  o.max_reorg_depth = 3;
  auto ex = StartExtractor(o, store.get());
  ASSERT_TRUE(ex);
  ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, node); }, milliseconds(30000)));
  const auto head_before = store->head();

  node.Call("anvil_reorg", {6, ReorgTx()});
  node.Mine();
  ASSERT_TRUE(WaitUntil([&] { return ex->failed(); }, milliseconds(10000)));
  EXPECT_NE(ex->last_error().find("max_reorg_depth"), std::string::npos) << ex->last_error();
  EXPECT_FALSE(ex->running());
  // Nothing was deleted.
  ASSERT_TRUE(store->head());
  EXPECT_EQ(store->head()->number, head_before->number);
  EXPECT_EQ(store->head()->hash, head_before->hash);
  ex->Stop();
}

TEST(IngestExtractor, RefusesAnotherChain) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  anvil->rpc().Mine(5);
  TempDir dir;
  auto store = OpenStore(dir);
  {
    auto ex = StartExtractor(Options(anvil->url()), store.get());
    ASSERT_TRUE(ex);
    ASSERT_TRUE(WaitUntil([&] { return CaughtUp(*store, anvil->rpc()); }, milliseconds(30000)));
  }
  const storage::ChainIdentity stored = *store->identity();

  // Same chain id, another genesis.
  auto other = StartAnvil({"--no-mining", "--timestamp", "1000"});
  ASSERT_TRUE(other);
  other->rpc().Mine(10);
  ASSERT_NE(other->rpc().BlockHash(0), anvil->rpc().BlockHash(0));
  auto ex = *Extractor::Make(Options(other->url()), store.get());
  auto t0 = Clock::now();
  auto st = ex->Start();
  EXPECT_LT(Clock::now() - t0, milliseconds(3000));
  ASSERT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_NE(st.message().find(other->rpc().BlockHash(0)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(anvil->rpc().BlockHash(0)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("different data directory"), std::string::npos);
  EXPECT_FALSE(ex->running());
  EXPECT_TRUE(ex->failed());

  // Another chain id.
  auto third = StartAnvil({"--no-mining", "--chain-id", "1337"});
  ASSERT_TRUE(third);
  auto ex3 = *Extractor::Make(Options(third->url()), store.get());
  st = ex3->Start();
  ASSERT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_NE(st.message().find("chain id 1337"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("chain id " + std::to_string(stored.chain_id)), std::string::npos);

  // The store is untouched.
  EXPECT_EQ(*store->identity(), stored);
  EXPECT_EQ(store->head()->number, 5u);
}

TEST(IngestExtractor, DeadNodeCountsErrorsAndStopsPromptly) {
  TempDir dir;
  auto store = OpenStore(dir);
  // Nothing listens on this port.
  auto ex = StartExtractor(Options("http://127.0.0.1:" + std::to_string(sluice::testing::FreePort())),
                           store.get());
  ASSERT_TRUE(ex);
  EXPECT_TRUE(ex->running());
  ASSERT_TRUE(WaitUntil([&] { return ex->rpc_errors() >= 3; }, milliseconds(5000)));
  EXPECT_NE(ex->last_error().find("eth_"), std::string::npos) << ex->last_error();
  EXPECT_FALSE(ex->failed());
  EXPECT_FALSE(store->identity().has_value());
  auto t0 = Clock::now();
  ex->Stop();
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
}

TEST(IngestExtractor, StopIsPromptMidRequest) {
  // A socket that accepts connections (kernel backlog) but never answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ASSERT_EQ(::listen(fd, 16), 0);
  TempDir dir;
  auto store = OpenStore(dir);
  auto o = Options("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  o.start_timeout = milliseconds(200);
  auto ex = StartExtractor(o, store.get());  // Start does not hang on a silent node
  ASSERT_TRUE(ex);
  std::this_thread::sleep_for(milliseconds(300));
  auto t0 = Clock::now();
  ex->Stop();
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  ::close(fd);
}

TEST(IngestExtractor, StopIsPromptDuringBackfill) {
  auto anvil = StartAnvil();
  ASSERT_TRUE(anvil);
  anvil->rpc().Mine(1500);
  TempDir dir;
  auto store = OpenStore(dir);
  auto ex = StartExtractor(Options(anvil->url()), store.get());
  ASSERT_TRUE(ex);
  ASSERT_TRUE(WaitUntil([&] { return store->head().has_value(); }, milliseconds(10000)));
  auto t0 = Clock::now();
  ex->Stop();
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  // What was stored is a prefix of the node's chain.
  auto head = store->head();
  ASSERT_TRUE(head);
  EXPECT_EQ(storage::HashToHex(head->hash), anvil->rpc().BlockHash(head->number));
}

}  // namespace sluice::ingest
