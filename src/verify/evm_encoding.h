// The consensus encodings of a block's header, transactions and receipts, built
// from stored rows (verify/evm_rows.h): what the block hash and the header's
// roots commit to.
//
//   header       RLP [parent_hash, ommers_hash, miner, state_root,
//                transactions_root, receipt_root, logs_bloom, difficulty, number,
//                gas_limit, gas_used, timestamp, extra_data, mix_hash, nonce (8 bytes),
//                base_fee_per_gas (London), withdrawals_root (Shanghai), blob_gas_used,
//                excess_blob_gas, parent_beacon_root (Cancun), requests_hash (Prague)]
//                — a later fork's field only when stored (not null);
//   transaction  legacy: RLP [nonce, gas_price, gas_limit, to, value, input, v, r, s];
//                typed (EIP-2718): type byte ++ RLP of
//                1 (EIP-2930)  [chain_id, nonce, gas_price, gas_limit, to, value, input,
//                               access_list, y_parity, r, s]
//                2 (EIP-1559)  [chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas,
//                               gas_limit, to, value, input, access_list, y_parity, r, s]
//                3 (EIP-4844)  type 2's fields up to access_list, then max_fee_per_blob_gas,
//                               blob_versioned_hashes, y_parity, r, s
//                4 (EIP-7702)  type 2's fields up to access_list, then authorization_list
//                               ([chain_id, address, nonce, y_parity, r, s] each), y_parity, r, s
//   receipt      (type byte ++ for typed) RLP [status (1 or empty) or, before
//                Byzantium, post_state_root; cumulative_gas_used; logs bloom;
//                [[address, [topics], data], …]]
// Integers are big-endian without leading zeros; a missing `to` is the empty string.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "arrow/result.h"
#include "verify/evm_rows.h"

namespace sluice::verify {

/// \brief A 2048-bit logs bloom (yellow paper 4.3.1): for the address and each
/// topic of every log, bits (k[0..1], k[2..3], k[4..5]) & 2047 of k = Keccak-256(x)
/// are set, bit b being bit b % 8 of byte 255 - b / 8.
using Bloom = std::array<uint8_t, 256>;

/// \brief Add a value (an address or a topic) to `bloom`.
void AddToBloom(Bloom* bloom, const uint8_t* data, size_t size);

/// \brief The header encoding of blocks row `row`. Invalid when a later fork's
/// field is stored while an earlier one is null (no header has that shape).
arrow::Result<std::string> EncodeHeader(const BlockColumns& b, int64_t row);

/// \brief The encoding of transactions row `row` (the bytes its hash and the
/// transactions trie take; a null type is legacy, TxColumns::TypeOf). Invalid
/// naming the field for a type other than 0-4 or a field the type needs that is
/// null (e.g. a legacy transaction without `v`, a system transaction without a
/// signature).
arrow::Result<std::string> EncodeTransaction(const TxColumns& t, int64_t row);

/// \brief The receipt encoding of transactions row `row` with its logs, rows
/// [log_begin, log_end) of `l` (in log_index order); ORs the receipt's bloom
/// into `block_bloom`. Invalid when a log's topics are not contiguous from topic0,
/// or both status and post_state_root are null. A null type is legacy
/// (TxColumns::TypeOf).
arrow::Result<std::string> EncodeReceipt(const TxColumns& t, int64_t row, const LogColumns& l,
                                         int64_t log_begin, int64_t log_end, Bloom* block_bloom);

/// \brief The 32-byte big-endian value of a non-negative decimal string (a
/// transaction's `value`). Invalid on anything but digits or above 2^256 - 1.
arrow::Status DecimalStringToWord(std::string_view decimal, uint8_t out[32]);

}  // namespace sluice::verify
