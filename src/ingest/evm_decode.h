// Decoding of Ethereum JSON-RPC answers into the rows of the EVM tables
// (ingest/evm_schema.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "arrow/memory_pool.h"
#include "arrow/result.h"
#include "arrow/status.h"
#include "storage/block_store.h"

namespace sluice::ingest {

/// \brief Decodes consecutive blocks, each given as the result of
/// `eth_getBlockByNumber(n, true)` (a JSON object with full transaction objects)
/// and the result of `eth_getBlockReceipts(n)` (a JSON array, one receipt per
/// transaction, in transaction order), into the rows of `blocks`,
/// `transactions` and `logs` of one contiguous block range.
///
/// Where values come from:
/// - blocks: the header fields of the block object;
/// - transactions: the block's transaction objects (their signature's `v` as
///   given, null when absent), plus `gas_used`, `cumulative_gas_used`, `status`
///   and, in pre-Byzantium receipts, `root` (post_state_root) from the receipt
///   at the same position;
/// - logs: the receipts' `logs`, `log_index` from each log's `logIndex`;
///   block_hash, block_num, timestamp, tx_hash and tx_index from the block.
///
/// Fields that some nodes or chains omit are stored as null, never invented: a
/// missing `type` (older nodes' legacy transactions), `chainId` (pre-EIP-155),
/// `r`/`s` and `v`/`yParity` (system or deposit transactions), `baseFeePerGas`
/// (pre-London), `withdrawalsRoot` (pre-Shanghai), ... A missing `yParity` is
/// derived from `v` when there is one (v in {0,1}: v; 27/28 and EIP-155
/// v = 35 + 2*chain_id + parity: parity). A receipt without `status`
/// (pre-Byzantium, which has a state root instead) records null. Nullable columns
/// are null when the field is absent or JSON null.
///
/// Not thread-safe; use one decoder per thread.
class EvmDecoder {
 public:
  /// \brief Create a decoder whose arrays are allocated from `pool`.
  static arrow::Result<std::unique_ptr<EvmDecoder>> Make(
      arrow::MemoryPool* pool = arrow::default_memory_pool());
  ~EvmDecoder();

  /// \brief Append one block. The block must be the next one: its number is the
  /// previous block's + 1 and its `parentHash` the previous block's hash (the
  /// first block after Make/Finish/Reset may be any).
  ///
  /// Inputs are parsed in place when their capacity has simdjson's padding to
  /// spare (as RpcClient results do), else copied.
  ///
  /// Errors: Invalid, naming the block and field, on a missing or malformed
  /// field, a block without full transaction objects, receipts whose count or
  /// transaction hashes differ from the block's transactions or whose block hash
  /// is another block's (the node reorganised between the two calls), a
  /// Decimal128(38, 0) amount with more than 38 digits, or a block that does not
  /// extend the previous one. On error every row appended since the last
  /// Finish/Reset is discarded.
  arrow::Status Append(const std::string& block_json, const std::string& receipts_json);

  /// \brief The blocks appended since the last Finish/Reset: their headers and
  /// one table per EVM table (a table may have zero rows). Resets the decoder.
  /// Invalid when no block was appended.
  arrow::Result<storage::BlockRangeData> Finish();

  /// \brief Discard every row appended since the last Finish/Reset.
  void Reset();

  /// \brief Blocks appended since the last Finish/Reset.
  int64_t num_blocks() const;

 private:
  EvmDecoder();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// \brief Decode the header facts (number, hash, parentHash, timestamp) of a
/// block object as returned by `eth_getBlockByNumber(n, false|true)`.
/// Errors: Invalid on JSON `null` (no such block) or a missing or malformed field.
arrow::Result<storage::BlockHeader> DecodeBlockHeader(const std::string& block_json);

}  // namespace sluice::ingest
