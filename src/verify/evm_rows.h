// Typed, by-name access to the columns of the stored EVM tables (the schemas of
// ingest/evm_schema.h, docs/tables.md) that the verification reads. verify/
// does not depend on ingest/: the columns are looked up by name and their types
// checked, so rows read back from Parquet and rows fresh from the decoder are
// read alike.
#pragma once

#include <memory>

#include "arrow/array.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "arrow/table.h"

namespace sluice::verify {

using FixedArray = arrow::FixedSizeBinaryArray;
using DecimalArray = arrow::Decimal128Array;
using ListArray = arrow::ListArray;

/// \brief The `blocks` columns of a block header.
struct BlockColumns {
  std::shared_ptr<arrow::RecordBatch> batch;  ///< owns the arrays below
  int64_t rows = 0;
  const arrow::UInt64Array* block_num;
  const arrow::TimestampArray* timestamp;  ///< nanoseconds
  const FixedArray *hash, *parent_hash, *ommers_hash, *miner, *state_root, *transactions_root,
      *receipt_root, *mix_hash;
  const arrow::BinaryArray *logs_bloom, *extra_data;
  const DecimalArray* difficulty;
  const arrow::UInt64Array *gas_limit, *gas_used, *nonce;
  // Later forks' fields, null before them.
  const DecimalArray* base_fee_per_gas;       // London
  const FixedArray* withdrawals_root;         // Shanghai
  const arrow::UInt64Array *blob_gas_used, *excess_blob_gas;  // Cancun
  const FixedArray* parent_beacon_root;       // Cancun
  const FixedArray* requests_hash;            // Prague

  /// \brief Bind the columns of a `blocks` table. Invalid naming a missing column
  /// or one of another type.
  static arrow::Result<BlockColumns> Bind(const std::shared_ptr<arrow::Table>& table);
};

/// \brief The `transactions` columns of a transaction and its receipt.
struct TxColumns {
  std::shared_ptr<arrow::RecordBatch> batch;
  int64_t rows = 0;
  const arrow::UInt64Array* block_num;
  const FixedArray* block_hash;
  const arrow::TimestampArray* timestamp;
  const arrow::UInt32Array* tx_index;
  const FixedArray *tx_hash, *to, *r, *s;
  const arrow::UInt64Array *nonce, *gas_limit, *chain_id, *gas_used, *cumulative_gas_used;
  const DecimalArray *gas_price, *v, *max_fee_per_gas, *max_priority_fee_per_gas,
      *max_fee_per_blob_gas;
  const arrow::StringArray* value;  ///< decimal wei
  const arrow::BinaryArray* input;
  const arrow::BooleanArray *v_parity, *status;
  const arrow::Int32Array* type;
  const FixedArray* post_state_root;
  const ListArray *access_list, *blob_versioned_hashes, *authorization_list;

  /// \brief The transaction type of row `row`: `type`, or 0 (legacy) when null. A
  /// node that predates typed transactions (EIP-2718) omits the field, and only
  /// legacy transactions exist there (docs/tables.md).
  int32_t TypeOf(int64_t row) const { return type->IsNull(row) ? 0 : type->Value(row); }

  static arrow::Result<TxColumns> Bind(const std::shared_ptr<arrow::Table>& table);
};

/// \brief The `logs` columns of a log entry.
struct LogColumns {
  std::shared_ptr<arrow::RecordBatch> batch;
  int64_t rows = 0;
  const arrow::UInt64Array* block_num;
  const FixedArray *block_hash, *tx_hash, *address;
  const arrow::TimestampArray* timestamp;
  const arrow::UInt32Array *tx_index, *log_index;
  const FixedArray* topic[4];
  const arrow::BinaryArray* data;

  static arrow::Result<LogColumns> Bind(const std::shared_ptr<arrow::Table>& table);
};

}  // namespace sluice::verify
