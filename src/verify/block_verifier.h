// Verification of stored blocks against their headers' own commitments, from
// the stored rows alone (docs/datasets.md#verification):
//
//   block hash         Keccak-256 of the header's RLP (verify/evm_encoding.h) = `hash`
//   transactions root  trie root of the transactions' encodings = `transactions_root`,
//                      and each encoding's Keccak-256 = its `tx_hash`
//   receipts root      trie root of the receipts' encodings (status, cumulative
//                      gas, bloom, logs) = `receipt_root`
//   logs bloom         the OR of the receipts' blooms, recomputed from the logs = `logs_bloom`
//
// plus the consistency of the rows copied from the block (block_hash,
// timestamp, tx_hash and tx_index of logs), the order of tx_index and
// log_index (0, 1, … per block), each transaction's gas_used (the step of
// cumulative_gas_used) and the block's gas_used (the last transaction's
// cumulative_gas_used), each signature's parity against `v`, and the blob gas
// (131072 per blob hash). Not checked: `from` (it needs public-key recovery),
// `total_difficulty`, and the gas_price of types 2-4 (the effective price).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"
#include "arrow/table.h"
#include "storage/block_store.h"

namespace sluice::verify {

/// \brief The rows of a contiguous block range: tables with the columns of
/// `blocks`, `transactions` and `logs` (ingest/evm_schema.h), each ordered by
/// block_num (then tx_index, log_index), as the store writes them.
struct BlockRows {
  std::shared_ptr<arrow::Table> blocks;
  std::shared_ptr<arrow::Table> transactions;
  std::shared_ptr<arrow::Table> logs;
};

/// \brief A block whose rows do not match its header's commitments.
struct BlockMismatch {
  uint64_t number = 0;
  storage::Hash32 hash{};  ///< the stored `hash`
  /// What differs, one entry each, e.g. "receipts root: recomputed 0x…, stored 0x…".
  std::vector<std::string> differences;

  /// \brief "block N (0xhash): difference; difference …".
  std::string ToString() const;
};

/// \brief The outcome of verifying some blocks.
struct VerifyReport {
  uint64_t blocks = 0;  ///< blocks checked (those in the range asked for)
  uint64_t transactions = 0;
  uint64_t logs = 0;
  std::vector<BlockMismatch> mismatches;  ///< in block order; empty: every block verified
  bool all_match() const { return mismatches.empty(); }
};

/// \brief Verify every block of `rows` whose number is in `only` (all when
/// nullopt). Errors (not mismatches): Invalid when a table lacks a column or has
/// a column of another type, or rows are not ordered by block_num. Rows of a
/// block number without a `blocks` row are a mismatch of that number.
arrow::Result<VerifyReport> VerifyBlocks(const BlockRows& rows,
                                         std::optional<storage::BlockRange> only = std::nullopt);

/// \brief For extraction: verify the blocks of `data` (its tables named
/// "blocks", "transactions", "logs"). OK when all verify; else Invalid naming
/// the first mismatching block and what differs, with a VerificationFailure
/// detail that holds the blocks of `data` below that block (verified, so they
/// may be stored before extraction stops).
arrow::Status VerifyRange(const storage::BlockRangeData& data);

/// \brief The detail of a status for blocks that failed verification.
class VerificationFailure : public arrow::StatusDetail {
 public:
  VerificationFailure(uint64_t block, std::shared_ptr<const storage::BlockRangeData> verified)
      : block_(block), verified_(std::move(verified)) {}
  const char* type_id() const override;
  std::string ToString() const override;
  /// \brief The first block that failed.
  uint64_t block() const { return block_; }
  /// \brief The verified blocks of the range below block(); null when none.
  const std::shared_ptr<const storage::BlockRangeData>& verified() const { return verified_; }

 private:
  uint64_t block_;
  std::shared_ptr<const storage::BlockRangeData> verified_;
};

/// \brief The detail of `st` when it is a verification failure, else null.
const VerificationFailure* AsVerificationFailure(const arrow::Status& st);

/// \brief The failed block when `st` is a verification failure, else nullopt.
std::optional<uint64_t> VerificationFailureBlock(const arrow::Status& st);

/// \brief The blocks [first, last] of `data` (its headers and each table's rows
/// of those blocks, zero-copy slices). Invalid when `data` does not hold them
/// all or a table is not ordered by block_num.
arrow::Result<storage::BlockRangeData> SliceBlocks(const storage::BlockRangeData& data,
                                                   uint64_t first, uint64_t last);

}  // namespace sluice::verify
