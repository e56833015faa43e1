// The Arrow schemas of an EVM dataset's tables, as laid out in the spec
// "EVM chain tables" (evm-tables.md: the reference implementation's EVM tables).
//
//   blocks        one row per block        (eth_getBlockByNumber)
//   transactions  one row per transaction  (block body + eth_getBlockReceipts)
//   logs          one row per log entry    (eth_getBlockReceipts)
//
// Types: hashes and 32-byte words FixedSizeBinary(32); addresses
// FixedSizeBinary(20); `timestamp` Timestamp(ns, "UTC") from the header's
// seconds; gas and counters UInt64; wei amounts Decimal128(38, 0); a
// transaction's `value` (a uint256) Utf8, its exact decimal string. Every table
// has a non-nullable UInt64 `block_num`. Nullable fields are the ones marked `?`
// in the spec; all others are non-nullable.
//
// The optional list columns of `transactions` are null for transaction types
// without them (and for chains that have none):
//   access_list            list<struct<address, storage_keys: list<hash>>>  (types 1-4)
//   blob_versioned_hashes  list<hash>                                        (type 3)
//   authorization_list     list<struct<chain_id: Decimal128(38,0), address,
//                            nonce: UInt64, y_parity: Bool, r, s>>           (type 4, EIP-7702)
// An authorization's chain_id is a uint256 (0 means any chain) and is kept as a
// decimal like wei amounts.
#pragma once

#include <memory>
#include <vector>

#include "arrow/type_fwd.h"
#include "storage/block_store.h"

namespace sluice::ingest {

/// \brief Table names of an EVM dataset.
inline constexpr const char* kBlocksTable = "blocks";
inline constexpr const char* kTransactionsTable = "transactions";
inline constexpr const char* kLogsTable = "logs";

/// \brief Type of transactions.access_list (EIP-2930).
std::shared_ptr<arrow::DataType> AccessListType();
/// \brief Type of transactions.authorization_list (EIP-7702).
std::shared_ptr<arrow::DataType> AuthorizationListType();

/// \brief Schema of `blocks`: one row per block.
std::shared_ptr<arrow::Schema> BlocksSchema();
/// \brief Schema of `transactions`: one row per transaction.
std::shared_ptr<arrow::Schema> TransactionsSchema();
/// \brief Schema of `logs`: one row per log entry.
std::shared_ptr<arrow::Schema> LogsSchema();

/// \brief The tables of an EVM dataset in the order the store needs them:
/// `blocks` first (the store rebuilds its header index from it), then
/// `transactions`, then `logs`.
std::vector<storage::TableDef> EvmTables();

}  // namespace sluice::ingest
