// sluice_bench_gen: writes a deterministic synthetic EVM chain into sluice's own
// block store (the same Parquet segments, manifest and schemas the extractor
// writes), for the batch-throughput and memory benchmarks.
//
//   sluice_bench_gen --data-dir DIR --transactions N [--txs-per-block 200]
//                    [--blocks-per-segment 2048] [--row-group-rows R]
//                    [--postgres-url URL --object-store-url S3URL]   (the shared store,
//                    docs/deploy.md; keys from AMP_CONFIG_OBJECT_STORE_ACCESS_KEY/_SECRET_KEY)
//
// Blocks 0..B-1 with B = ceil(N / txs_per_block); every block but block 0 holds
// txs_per_block transactions (block 0, the genesis, holds none), so the
// transactions table has exactly N rows when N is a multiple of txs_per_block.
// Values come from a counter-based generator (splitmix64 of row and column), so
// the same arguments always give the same rows. `logs` stays empty. The store is
// written without fsync; DIR must not hold a store yet.
//
// Prints one JSON line: {"blocks":..,"transactions":..,"seconds":..}.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "arrow/builder.h"
#include "arrow/table.h"
#include "arrow/util/decimal.h"
#include "ingest/evm_schema.h"
#include "storage/backends.h"
#include "storage/block_store.h"

namespace {

using sluice::storage::BlockHeader;
using sluice::storage::BlockRangeData;
using sluice::storage::Hash32;

constexpr uint64_t kChainId = 31337;
constexpr int64_t kGenesisTime = 1700000000;

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// `n` pseudo-random bytes for (key, column).
void Fill(uint64_t key, uint64_t column, uint8_t* out, size_t n) {
  uint64_t seed = Mix(key * 0x100000001b3ULL + column);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = Mix(seed + i);
    std::memcpy(out + i, &v, std::min<size_t>(8, n - i));
  }
}

Hash32 BlockHash(uint64_t n) {
  Hash32 h;
  Fill(n, 1, h.data(), h.size());
  return h;
}

#define CHECK_OK(expr)                                              \
  do {                                                              \
    auto _st = (expr);                                              \
    if (!_st.ok()) {                                                \
      std::cerr << "sluice_bench_gen: " << _st.ToString() << "\n"; \
      std::exit(1);                                                 \
    }                                                               \
  } while (0)

template <typename T>
T Unwrap(arrow::Result<T> r) {
  CHECK_OK(r.status());
  return r.MoveValueUnsafe();
}

std::shared_ptr<arrow::Table> Finish(const std::shared_ptr<arrow::Schema>& schema,
                                     std::vector<std::unique_ptr<arrow::ArrayBuilder>>& builders) {
  arrow::ArrayVector arrays;
  for (auto& b : builders) arrays.push_back(Unwrap(b->Finish()));
  return arrow::Table::Make(schema, arrays);
}

std::vector<std::unique_ptr<arrow::ArrayBuilder>> Builders(const arrow::Schema& schema) {
  std::vector<std::unique_ptr<arrow::ArrayBuilder>> out;
  for (const auto& f : schema.fields()) out.push_back(Unwrap(arrow::MakeBuilder(f->type())));
  return out;
}

template <typename B>
B* As(std::unique_ptr<arrow::ArrayBuilder>& b) {
  return static_cast<B*>(b.get());
}

std::shared_ptr<arrow::Table> MakeBlocks(uint64_t first, uint64_t last, int txs_per_block) {
  auto schema = sluice::ingest::BlocksSchema();
  auto b = Builders(*schema);
  uint8_t buf[256];
  for (uint64_t n = first; n <= last; ++n) {
    auto hash = BlockHash(n);
    auto parent = n == 0 ? Hash32{} : BlockHash(n - 1);
    int i = 0;
    CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(n));
    CHECK_OK(As<arrow::TimestampBuilder>(b[i++])->Append((kGenesisTime + 12 * int64_t(n)) * 1000000000LL));
    CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(hash.data()));
    CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(parent.data()));
    for (int c = 0; c < 1; ++c) {  // ommers_hash
      Fill(n, 10, buf, 32);
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));
    }
    Fill(n, 11, buf, 20);
    CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));  // miner
    for (int c = 0; c < 3; ++c) {  // state_root, transactions_root, receipt_root
      Fill(n, 12 + c, buf, 32);
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));
    }
    Fill(n, 15, buf, 256);
    CHECK_OK(As<arrow::BinaryBuilder>(b[i++])->Append(buf, 256));  // logs_bloom
    CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->Append(arrow::Decimal128(0)));
    CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->AppendNull());
    CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(30000000));
    CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(21000ULL * (n == 0 ? 0 : txs_per_block)));
    CHECK_OK(As<arrow::BinaryBuilder>(b[i++])->Append(buf, 0));  // extra_data
    Fill(n, 16, buf, 32);
    CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));  // mix_hash
    CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(0));
    CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->Append(arrow::Decimal128(1000000000)));
    while (i < static_cast<int>(b.size())) CHECK_OK(b[i++]->AppendNull());
  }
  return Finish(schema, b);
}

std::shared_ptr<arrow::Table> MakeTransactions(uint64_t first, uint64_t last, int txs_per_block) {
  auto schema = sluice::ingest::TransactionsSchema();
  auto b = Builders(*schema);
  uint8_t buf[160];
  uint64_t cumulative = 0;
  for (uint64_t n = std::max<uint64_t>(first, 1); n <= last; ++n) {
    auto hash = BlockHash(n);
    for (int t = 0; t < txs_per_block; ++t) {
      uint64_t row = n * 100000 + t;
      uint64_t r = Mix(row);
      int i = 0;
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(hash.data()));
      CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(n));
      CHECK_OK(As<arrow::TimestampBuilder>(b[i++])->Append((kGenesisTime + 12 * int64_t(n)) * 1000000000LL));
      CHECK_OK(As<arrow::UInt32Builder>(b[i++])->Append(t));
      Fill(row, 20, buf, 32);
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));  // tx_hash
      Fill(r % 1000, 21, buf, 20);  // `to`: one of 1000 addresses
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));
      CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(r % 5000));  // nonce
      CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->Append(arrow::Decimal128(int64_t(1000000000 + r % 1000000))));
      CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(21000 + r % 200000));
      std::string value = std::to_string((r >> 8) % 100000000000000000ULL);
      CHECK_OK(As<arrow::StringBuilder>(b[i++])->Append(value));
      size_t input_len = (r & 1) ? 0 : 4 + 32 * ((r >> 1) % 4);  // ETH transfer or a call
      Fill(row, 22, buf, input_len);
      CHECK_OK(As<arrow::BinaryBuilder>(b[i++])->Append(buf, input_len));
      Fill(row, 23, buf, 64);
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));       // r
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf + 32));  // s
      const bool parity = ((r >> 3) & 1) != 0;
      CHECK_OK(As<arrow::BooleanBuilder>(b[i++])->Append(parity));
      const arrow::Decimal128 v(parity ? 1 : 0);  // v: a typed transaction's parity
      CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->Append(v));
      CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(kChainId));
      const uint64_t gas_used = 21000 + r % 100000;
      cumulative = t == 0 ? gas_used : cumulative + gas_used;
      CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(gas_used));
      CHECK_OK(As<arrow::UInt64Builder>(b[i++])->Append(cumulative));  // cumulative_gas_used
      CHECK_OK(As<arrow::Int32Builder>(b[i++])->Append(2));
      CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->Append(arrow::Decimal128(int64_t(2000000000 + r % 1000))));
      CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->Append(arrow::Decimal128(int64_t(r % 1000000))));
      CHECK_OK(As<arrow::Decimal128Builder>(b[i++])->AppendNull());
      Fill(r % 5000, 24, buf, 20);  // `from`: one of 5000 addresses
      CHECK_OK(As<arrow::FixedSizeBinaryBuilder>(b[i++])->Append(buf));
      CHECK_OK(As<arrow::BooleanBuilder>(b[i++])->Append((r % 50) != 0));
      CHECK_OK(b[i++]->AppendNull());  // post_state_root (post-Byzantium receipts)
      // Type-2 transactions, as a node writes them: an empty access list, no blob
      // hashes, no authorizations.
      CHECK_OK(As<arrow::ListBuilder>(b[i++])->Append());       // access_list
      CHECK_OK(As<arrow::ListBuilder>(b[i++])->AppendNull());   // blob_versioned_hashes
      CHECK_OK(As<arrow::ListBuilder>(b[i++])->AppendNull());   // authorization_list
    }
  }
  return Finish(schema, b);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write a deterministic synthetic EVM chain into a sluice block store"};
  std::string data_dir;
  int64_t transactions = 0;
  int txs_per_block = 200;
  int blocks_per_segment = 2048;
  int64_t row_group_rows = sluice::storage::StoreOptions{}.row_group_rows;
  app.add_option("--data-dir", data_dir, "Directory of the new store")->required();
  app.add_option("--transactions", transactions, "Rows of eth_rpc.transactions")->required();
  app.add_option("--txs-per-block", txs_per_block, "Transactions per block (not block 0)");
  app.add_option("--blocks-per-segment", blocks_per_segment, "Blocks per appended segment");
  app.add_option("--row-group-rows", row_group_rows, "Rows per Parquet row group (store default)");
  sluice::storage::BackendOptions backends;
  app.add_option("--postgres-url", backends.postgres_url, "Metadata in PostgreSQL");
  app.add_option("--object-store-url", backends.object_store_url, "Segments in an object store");
  CLI11_PARSE(app, argc, argv);
  if (const char* k = std::getenv("AMP_CONFIG_OBJECT_STORE_ACCESS_KEY")) {
    backends.object_store_access_key = k;
  }
  if (const char* k = std::getenv("AMP_CONFIG_OBJECT_STORE_SECRET_KEY")) {
    backends.object_store_secret_key = k;
  }
  if (txs_per_block < 1 || txs_per_block > 100000 || transactions < 1 || blocks_per_segment < 1) {
    std::cerr << "sluice_bench_gen: --transactions, --txs-per-block (<= 100000) and "
                 "--blocks-per-segment must be positive\n";
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  sluice::storage::StoreOptions options;
  options.data_dir = data_dir;
  options.tables = sluice::ingest::EvmTables();
  options.fsync = false;
  options.row_group_rows = row_group_rows;
  if (!backends.postgres_url.empty()) {
    Unwrap(sluice::storage::MakeBackends(backends, sluice::storage::StoreRole::kWriter, &options));
  }
  auto store = Unwrap(sluice::storage::BlockStore::Open(options));
  if (store->head()) {
    std::cerr << "sluice_bench_gen: " << data_dir << " already holds a store\n";
    return 2;
  }
  CHECK_OK(store->SetIdentity({kChainId, BlockHash(0)}));
  uint64_t last_block = static_cast<uint64_t>((transactions + txs_per_block - 1) / txs_per_block);
  for (uint64_t first = 0; first <= last_block; first += blocks_per_segment) {
    uint64_t last = std::min<uint64_t>(last_block, first + blocks_per_segment - 1);
    BlockRangeData data;
    for (uint64_t n = first; n <= last; ++n) {
      BlockHeader h;
      h.number = n;
      h.hash = BlockHash(n);
      h.parent_hash = n == 0 ? Hash32{} : BlockHash(n - 1);
      h.timestamp = kGenesisTime + 12 * int64_t(n);
      data.headers.push_back(h);
    }
    data.tables[sluice::ingest::kBlocksTable] = MakeBlocks(first, last, txs_per_block);
    data.tables[sluice::ingest::kTransactionsTable] = MakeTransactions(first, last, txs_per_block);
    data.tables[sluice::ingest::kLogsTable] =
        Unwrap(arrow::Table::MakeEmpty(sluice::ingest::LogsSchema()));
    CHECK_OK(store->Append(data));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  store.reset();
  options = {};
  sluice::storage::ShutdownS3();
  std::printf("{\"blocks\":%llu,\"transactions\":%llu,\"seconds\":%.1f}\n",
              static_cast<unsigned long long>(last_block + 1),
              static_cast<unsigned long long>(last_block * txs_per_block), secs);
  return 0;
}
