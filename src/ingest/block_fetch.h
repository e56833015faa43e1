// Fetching a range of blocks with their receipts from a node, and decoding them
// into the rows of the EVM tables (ingest/evm_decode.h).
#pragma once

#include <cstdint>

#include "arrow/result.h"
#include "ingest/evm_decode.h"
#include "ingest/node_client.h"
#include "storage/block_store.h"

namespace sluice::ingest {

/// \brief Blocks [first, last] (first <= last) and their receipts, decoded.
///
/// With `block_receipts`: one batch of `eth_getBlockByNumber(n, true)` and
/// `eth_getBlockReceipts(n)` per block. Without (a node that lacks
/// eth_getBlockReceipts): one batch of `eth_getBlockByNumber(n, true)`, then one of
/// `eth_getTransactionReceipt(hash)` for every transaction of those blocks, in
/// block and transaction order. Batches go through NodeClient::CallBatch (split to
/// the node's batch limit, failing over).
///
/// Errors: those of the calls (kMethodNotFound when the node lacks
/// eth_getBlockReceipts: the caller switches to per-transaction receipts); IOError
/// when the node answers null for a block or a receipt (it does not have it, or
/// its chain moved); those of EvmDecoder::Append; Invalid when the node answers
/// another block than asked.
arrow::Result<storage::BlockRangeData> FetchBlockRange(NodeClient* client, EvmDecoder* decoder,
                                                       uint64_t first, uint64_t last,
                                                       bool block_receipts);

}  // namespace sluice::ingest
