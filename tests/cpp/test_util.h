// Helpers shared by the C++ tests: temporary directories and a minimal chain.
#pragma once

#include <filesystem>
#include <random>
#include <string>

#include "arrow/api.h"
#include "storage/block_store.h"

namespace sluice::testing {

/// \brief A fresh directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("sluice_test_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// \brief Two tables shaped like the chain's: `blocks` (one row per block, with
/// hash, parent_hash, timestamp) and `events` (`per_block` rows per block).
inline std::vector<storage::TableDef> ToyTables() {
  auto blocks = arrow::schema({arrow::field("block_num", arrow::uint64(), false),
                               arrow::field("timestamp", arrow::timestamp(arrow::TimeUnit::NANO, "UTC"), false),
                               arrow::field("hash", arrow::fixed_size_binary(32), false),
                               arrow::field("parent_hash", arrow::fixed_size_binary(32), false)});
  auto events = arrow::schema({arrow::field("block_num", arrow::uint64(), false),
                               arrow::field("idx", arrow::uint32(), false),
                               arrow::field("payload", arrow::utf8(), false)});
  return {{"blocks", blocks}, {"events", events}};
}

/// \brief A deterministic toy hash of (fork, number).
inline storage::Hash32 ToyHash(uint64_t number, uint32_t fork = 0) {
  storage::Hash32 h{};
  for (int i = 0; i < 8; ++i) h[i] = static_cast<uint8_t>(number >> (8 * i));
  h[8] = static_cast<uint8_t>(fork);
  h[31] = 0xab;
  return h;
}

/// \brief Blocks [first, last] of fork `fork` (block first's parent is `parent`),
/// with `per_block` events each whose payload is "fork/number/idx".
inline storage::BlockRangeData ToyRange(uint64_t first, uint64_t last, storage::Hash32 parent,
                                        uint32_t fork = 0, int per_block = 3) {
  storage::BlockRangeData data;
  auto tables = ToyTables();
  arrow::UInt64Builder bn, en;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::NANO, "UTC"), arrow::default_memory_pool());
  arrow::FixedSizeBinaryBuilder hb(arrow::fixed_size_binary(32)), pb(arrow::fixed_size_binary(32));
  arrow::UInt32Builder idx;
  arrow::StringBuilder payload;
  for (uint64_t n = first; n <= last; ++n) {
    storage::BlockHeader h{n, ToyHash(n, fork), n == first ? parent : ToyHash(n - 1, fork),
                           static_cast<int64_t>(1700000000 + n)};
    data.headers.push_back(h);
    (void)bn.Append(n);
    (void)ts.Append(h.timestamp * 1000000000LL);
    (void)hb.Append(h.hash.data());
    (void)pb.Append(h.parent_hash.data());
    for (int i = 0; i < per_block; ++i) {
      (void)en.Append(n);
      (void)idx.Append(i);
      (void)payload.Append(std::to_string(fork) + "/" + std::to_string(n) + "/" + std::to_string(i));
    }
  }
  data.tables["blocks"] = arrow::Table::Make(
      tables[0].schema, {bn.Finish().ValueOrDie(), ts.Finish().ValueOrDie(),
                         hb.Finish().ValueOrDie(), pb.Finish().ValueOrDie()});
  data.tables["events"] = arrow::Table::Make(
      tables[1].schema,
      {en.Finish().ValueOrDie(), idx.Finish().ValueOrDie(), payload.Finish().ValueOrDie()});
  return data;
}

}  // namespace sluice::testing
