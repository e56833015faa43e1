#include "verify/block_verifier.h"

#include <cstring>

#include "arrow/util/decimal.h"
#include "common/hex.h"
#include "verify/evm_encoding.h"
#include "verify/evm_rows.h"
#include "verify/keccak.h"
#include "verify/trie.h"

namespace sluice::verify {

using arrow::Status;

namespace {

constexpr const char* kVerificationFailureId = "sluice::verify::VerificationFailure";
// Per-row differences listed per block; the others are counted.
constexpr size_t kMaxListed = 5;
// Blob gas per blob (EIP-4844 GAS_PER_BLOB).
constexpr uint64_t kGasPerBlob = 131072;

std::string Hex(const uint8_t* p, size_t n) { return common::ToHex(p, n); }
std::string Hex(const Hash32& h) { return Hex(h.data(), h.size()); }

// Collects one block's differences, listing at most kMaxListed per-row ones.
class Differences {
 public:
  void Block(std::string what) { out_.push_back(std::move(what)); }
  void Row(std::string what) {
    if (rows_++ < kMaxListed) out_.push_back(std::move(what));
  }
  std::vector<std::string> Take() {
    if (rows_ > kMaxListed) {
      out_.push_back("and " + std::to_string(rows_ - kMaxListed) + " more row differences");
    }
    return std::move(out_);
  }

 private:
  std::vector<std::string> out_;
  size_t rows_ = 0;
};

std::string Compare(const char* what, const Hash32& recomputed, const uint8_t* stored) {
  return std::string(what) + ": recomputed " + Hex(recomputed) + ", stored " + Hex(stored, 32);
}

// v as an unsigned 128-bit integer.
unsigned __int128 U128(const DecimalArray* a, int64_t i) {
  arrow::Decimal128 d(a->GetValue(i));
  return (static_cast<unsigned __int128>(static_cast<uint64_t>(d.high_bits())) << 64) |
         d.low_bits();
}

// The signature parity and chain id that a transaction's `v` implies, when
// stored: legacy 27/28 or 35 + 2 chain_id + parity (EIP-155); typed 0/1.
void CheckParity(const TxColumns& t, int64_t i, size_t k, Differences* diff) {
  if (t.v->IsNull(i) || t.v_parity->IsNull(i)) return;
  const unsigned __int128 v = U128(t.v, i);
  const bool parity = t.v_parity->Value(i);
  std::optional<bool> implied;
  if (t.TypeOf(i) != 0) {
    if (v <= 1) implied = v == 1;
  } else if (v == 27 || v == 28) {
    implied = v == 28;
  } else if (v >= 35) {
    implied = ((v - 35) & 1) == 1;
    const unsigned __int128 chain = (v - 35) / 2;
    if (!t.chain_id->IsNull(i) && chain != t.chain_id->Value(i)) {
      diff->Row("transaction " + std::to_string(k) + ": chain_id " +
                std::to_string(t.chain_id->Value(i)) + " differs from the one its v implies");
    }
  }
  if (!implied) {
    diff->Row("transaction " + std::to_string(k) + ": v is not a signature parity");
  } else if (*implied != parity) {
    diff->Row("transaction " + std::to_string(k) + ": v_parity differs from its v");
  }
}

struct Span {
  int64_t begin = 0, end = 0;
};

// Verify one block: its blocks row `bi`, its transactions rows `tx`, its logs rows `lg`.
std::vector<std::string> CheckBlock(const BlockColumns& b, int64_t bi, const TxColumns& t,
                                    Span tx, const LogColumns& l, Span lg) {
  Differences diff;
  const uint8_t* hash = b.hash->GetValue(bi);
  const int64_t timestamp = b.timestamp->Value(bi);
  const int64_t num_tx = tx.end - tx.begin;

  // Transactions: order, copies of the block's fields, encodings and hashes.
  std::vector<std::string> encoded;
  encoded.reserve(static_cast<size_t>(num_tx));
  bool all_encoded = true;
  uint64_t blobs = 0;
  for (int64_t i = tx.begin; i < tx.end; ++i) {
    const size_t k = static_cast<size_t>(i - tx.begin);
    const std::string row = "transaction " + std::to_string(k);
    if (t.tx_index->Value(i) != k) {
      diff.Row(row + ": tx_index is " + std::to_string(t.tx_index->Value(i)));
    }
    if (std::memcmp(t.block_hash->GetValue(i), hash, 32) != 0) {
      diff.Row(row + ": block_hash " + Hex(t.block_hash->GetValue(i), 32) + " is not the block's");
    }
    if (t.timestamp->Value(i) != timestamp) diff.Row(row + ": timestamp is not the block's");
    auto enc = EncodeTransaction(t, i);
    if (!enc.ok()) {
      diff.Row(row + " cannot be encoded: " + enc.status().message());
      all_encoded = false;
      encoded.emplace_back();
    } else {
      const Hash32 h = Keccak256(*enc);
      if (std::memcmp(h.data(), t.tx_hash->GetValue(i), 32) != 0) {
        diff.Row(Compare((row + " hash").c_str(), h, t.tx_hash->GetValue(i)));
      }
      encoded.push_back(std::move(*enc));
    }
    CheckParity(t, i, k, &diff);
    if (!t.blob_versioned_hashes->IsNull(i)) {
      blobs += static_cast<uint64_t>(t.blob_versioned_hashes->value_length(i));
    }
  }
  if (all_encoded) {
    const Hash32 root = OrderedTrieRoot(encoded);
    if (std::memcmp(root.data(), b.transactions_root->GetValue(bi), 32) != 0) {
      diff.Block(Compare("transactions root", root, b.transactions_root->GetValue(bi)));
    }
  } else {
    diff.Block("transactions root: not recomputed (a transaction cannot be encoded)");
  }

  // Logs: order and copies of the block's and transaction's fields.
  bool logs_ordered = true;
  for (int64_t j = lg.begin; j < lg.end; ++j) {
    const std::string row = "log " + std::to_string(j - lg.begin);
    if (l.log_index->Value(j) != static_cast<uint64_t>(j - lg.begin)) {
      diff.Row(row + ": log_index is " + std::to_string(l.log_index->Value(j)));
    }
    const uint32_t ti = l.tx_index->Value(j);
    if (ti >= num_tx || (j > lg.begin && ti < l.tx_index->Value(j - 1))) {
      diff.Row(row + ": tx_index " + std::to_string(ti) + " is out of order or range");
      logs_ordered = false;
      continue;
    }
    if (std::memcmp(l.tx_hash->GetValue(j), t.tx_hash->GetValue(tx.begin + ti), 32) != 0) {
      diff.Row(row + ": tx_hash is not transaction " + std::to_string(ti) + "'s");
    }
    if (std::memcmp(l.block_hash->GetValue(j), hash, 32) != 0) {
      diff.Row(row + ": block_hash is not the block's");
    }
    if (l.timestamp->Value(j) != timestamp) diff.Row(row + ": timestamp is not the block's");
  }

  // Receipts, their gas and the bloom.
  if (logs_ordered) {
    std::vector<std::string> receipts;
    receipts.reserve(static_cast<size_t>(num_tx));
    Bloom bloom{};
    bool all_receipts = true;
    uint64_t previous = 0;
    int64_t j = lg.begin;
    for (int64_t i = tx.begin; i < tx.end; ++i) {
      const size_t k = static_cast<size_t>(i - tx.begin);
      const int64_t from = j;
      while (j < lg.end && l.tx_index->Value(j) == k) ++j;
      auto enc = EncodeReceipt(t, i, l, from, j, &bloom);
      if (!enc.ok()) {
        diff.Row("receipt " + std::to_string(k) + " cannot be encoded: " + enc.status().message());
        all_receipts = false;
        receipts.emplace_back();
      } else {
        receipts.push_back(std::move(*enc));
      }
      const uint64_t cumulative = t.cumulative_gas_used->Value(i);
      if (cumulative < previous || cumulative - previous != t.gas_used->Value(i)) {
        diff.Row("transaction " + std::to_string(k) + ": gas_used " +
                 std::to_string(t.gas_used->Value(i)) + " is not its step of cumulative_gas_used");
      }
      previous = cumulative;
    }
    if (all_receipts) {
      const Hash32 root = OrderedTrieRoot(receipts);
      if (std::memcmp(root.data(), b.receipt_root->GetValue(bi), 32) != 0) {
        diff.Block(Compare("receipts root", root, b.receipt_root->GetValue(bi)));
      }
      const std::string_view stored_bloom = b.logs_bloom->GetView(bi);
      if (stored_bloom.size() != bloom.size() ||
          std::memcmp(stored_bloom.data(), bloom.data(), bloom.size()) != 0) {
        diff.Block("logs bloom: the bloom recomputed from the logs differs from the stored one");
      }
    } else {
      diff.Block("receipts root: not recomputed (a receipt cannot be encoded)");
    }
    if (b.gas_used->Value(bi) != previous) {
      diff.Block("gas_used " + std::to_string(b.gas_used->Value(bi)) +
                 " is not the last transaction's cumulative_gas_used " + std::to_string(previous));
    }
  } else {
    diff.Block("receipts root and logs bloom: not recomputed (logs out of order)");
  }
  if (!b.blob_gas_used->IsNull(bi) && b.blob_gas_used->Value(bi) != blobs * kGasPerBlob) {
    diff.Block("blob_gas_used " + std::to_string(b.blob_gas_used->Value(bi)) + " is not " +
               std::to_string(blobs) + " blobs' " + std::to_string(blobs * kGasPerBlob));
  }

  // The header.
  auto header = EncodeHeader(b, bi);
  if (!header.ok()) {
    diff.Block("block hash: not recomputed: " + header.status().message());
  } else {
    const Hash32 h = Keccak256(*header);
    if (std::memcmp(h.data(), hash, 32) != 0) {
      diff.Block(Compare("block hash (of the header fields)", h, hash));
    }
  }
  return diff.Take();
}

Status CheckOrdered(const char* table, const arrow::UInt64Array* block_num, bool strictly) {
  for (int64_t i = 1; i < block_num->length(); ++i) {
    const uint64_t a = block_num->Value(i - 1), b = block_num->Value(i);
    if (b < a || (strictly && a == b)) {
      return Status::Invalid("verify: ", table, " rows are not ordered by block_num (", a,
                             " before ", b, ")");
    }
  }
  return Status::OK();
}

// The rows [pos, end) of `block_num` equal to n; rows below n (without a block
// row) are reported through `orphan`.
template <typename F>
Span Take(const arrow::UInt64Array* block_num, int64_t* pos, uint64_t n, F&& orphan) {
  const int64_t rows = block_num->length();
  while (*pos < rows && block_num->Value(*pos) < n) orphan(block_num->Value((*pos)++));
  Span s{*pos, *pos};
  while (s.end < rows && block_num->Value(s.end) == n) ++s.end;
  *pos = s.end;
  return s;
}

}  // namespace

std::string BlockMismatch::ToString() const {
  std::string out = "block " + std::to_string(number) + " (" + Hex(hash) + "): ";
  for (size_t i = 0; i < differences.size(); ++i) {
    if (i > 0) out += "; ";
    out += differences[i];
  }
  return out;
}

arrow::Result<VerifyReport> VerifyBlocks(const BlockRows& rows,
                                         std::optional<storage::BlockRange> only) {
  ARROW_ASSIGN_OR_RAISE(auto b, BlockColumns::Bind(rows.blocks));
  ARROW_ASSIGN_OR_RAISE(auto t, TxColumns::Bind(rows.transactions));
  ARROW_ASSIGN_OR_RAISE(auto l, LogColumns::Bind(rows.logs));
  ARROW_RETURN_NOT_OK(CheckOrdered("blocks", b.block_num, /*strictly=*/true));
  ARROW_RETURN_NOT_OK(CheckOrdered("transactions", t.block_num, false));
  ARROW_RETURN_NOT_OK(CheckOrdered("logs", l.block_num, false));

  VerifyReport report;
  auto wanted = [&](uint64_t n) { return !only || only->Contains(n); };
  std::optional<uint64_t> last_orphan;
  auto orphan = [&](const char* table) {
    return [&report, &last_orphan, &wanted, table](uint64_t n) {
      if (!wanted(n)) return;
      if (last_orphan == n && !report.mismatches.empty()) return;
      last_orphan = n;
      BlockMismatch m;
      m.number = n;
      m.differences.push_back(std::string("rows in ") + table + " but no blocks row");
      report.mismatches.push_back(std::move(m));
    };
  };
  int64_t tp = 0, lp = 0;
  for (int64_t bi = 0; bi < b.rows; ++bi) {
    const uint64_t n = b.block_num->Value(bi);
    const Span tx = Take(t.block_num, &tp, n, orphan("transactions"));
    const Span lg = Take(l.block_num, &lp, n, orphan("logs"));
    if (!wanted(n)) continue;
    ++report.blocks;
    report.transactions += static_cast<uint64_t>(tx.end - tx.begin);
    report.logs += static_cast<uint64_t>(lg.end - lg.begin);
    auto differences = CheckBlock(b, bi, t, tx, l, lg);
    if (!differences.empty()) {
      BlockMismatch m;
      m.number = n;
      std::memcpy(m.hash.data(), b.hash->GetValue(bi), 32);
      m.differences = std::move(differences);
      report.mismatches.push_back(std::move(m));
    }
  }
  Take(t.block_num, &tp, UINT64_MAX, orphan("transactions"));
  Take(l.block_num, &lp, UINT64_MAX, orphan("logs"));
  return report;
}

Status VerifyRange(const storage::BlockRangeData& data) {
  auto table = [&](const char* name) -> std::shared_ptr<arrow::Table> {
    auto it = data.tables.find(name);
    return it == data.tables.end() ? nullptr : it->second;
  };
  BlockRows rows{table("blocks"), table("transactions"), table("logs")};
  ARROW_ASSIGN_OR_RAISE(auto report, VerifyBlocks(rows));
  if (report.all_match()) return Status::OK();
  const auto& first = report.mismatches.front();
  std::string more;
  if (report.mismatches.size() > 1) {
    more = " (and " + std::to_string(report.mismatches.size() - 1) + " more blocks)";
  }
  std::shared_ptr<const storage::BlockRangeData> verified;
  const uint64_t start = data.headers.front().number;
  if (first.number > start) {
    ARROW_ASSIGN_OR_RAISE(auto below, SliceBlocks(data, start, first.number - 1));
    verified = std::make_shared<const storage::BlockRangeData>(std::move(below));
  }
  return Status(arrow::StatusCode::Invalid, "verification failed: " + first.ToString() + more,
                std::make_shared<VerificationFailure>(first.number, std::move(verified)));
}

arrow::Result<storage::BlockRangeData> SliceBlocks(const storage::BlockRangeData& data,
                                                   uint64_t first, uint64_t last) {
  if (data.headers.empty() || first > last || first < data.headers.front().number ||
      last > data.headers.back().number) {
    return Status::Invalid("SliceBlocks: blocks ", first, "..", last, " are not in the range");
  }
  storage::BlockRangeData out;
  const uint64_t start = data.headers.front().number;
  out.headers.assign(data.headers.begin() + static_cast<std::ptrdiff_t>(first - start),
                     data.headers.begin() + static_cast<std::ptrdiff_t>(last - start + 1));
  for (const auto& [name, table] : data.tables) {
    ARROW_ASSIGN_OR_RAISE(auto combined, table->CombineChunks());
    auto column = combined->GetColumnByName("block_num");
    if (!column) return Status::Invalid("SliceBlocks: table ", name, " has no block_num");
    if (column->num_chunks() == 0) {
      out.tables[name] = combined;
      continue;
    }
    const auto* num = dynamic_cast<const arrow::UInt64Array*>(column->chunk(0).get());
    if (num == nullptr) return Status::Invalid("SliceBlocks: ", name, ".block_num is not UInt64");
    ARROW_RETURN_NOT_OK(CheckOrdered(name.c_str(), num, /*strictly=*/false));
    int64_t a = 0;
    while (a < num->length() && num->Value(a) < first) ++a;
    int64_t b = a;
    while (b < num->length() && num->Value(b) <= last) ++b;
    out.tables[name] = combined->Slice(a, b - a);
  }
  return out;
}

const char* VerificationFailure::type_id() const { return kVerificationFailureId; }

std::string VerificationFailure::ToString() const {
  return "verification failed at block " + std::to_string(block_);
}

const VerificationFailure* AsVerificationFailure(const Status& st) {
  const auto& detail = st.detail();
  if (!detail || std::strcmp(detail->type_id(), kVerificationFailureId) != 0) return nullptr;
  return static_cast<const VerificationFailure*>(detail.get());
}

std::optional<uint64_t> VerificationFailureBlock(const Status& st) {
  const auto* failure = AsVerificationFailure(st);
  if (failure == nullptr) return std::nullopt;
  return failure->block();
}

}  // namespace sluice::verify
