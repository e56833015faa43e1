// Reorganisations (Extractor::VerifyStoredHead, Extractor::HandleReorg): is the
// stored head still the node's, and if not, where the node's chain and the
// store's part, and removing what the node replaced.
#include <algorithm>

#include "common/log.h"
#include "ingest/evm_decode.h"
#include "ingest/extractor.h"
#include "ingest/hex_quantity.h"
#include "ingest/rpc_client.h"

namespace sluice::ingest {

using arrow::Status;

namespace {

// Blocks per batch request while walking back to a reorg's common ancestor.
constexpr uint64_t kReorgWalkBatch = 32;
// At most one "node behind" warning per this interval.
constexpr auto kWarnInterval = std::chrono::seconds(5);

std::string HeaderParams(uint64_t n) { return "[\"" + FormatQuantity(n) + "\",false]"; }

}  // namespace

Status Extractor::VerifyStoredHead(uint64_t node_head) {
  auto head = store_->head();
  if (!head) {
    verify_head_ = false;
    return Status::OK();
  }
  if (node_head < head->number) {
    if (Clock::now() - last_behind_log_ >= kWarnInterval) {
      last_behind_log_ = Clock::now();
      LOG_WARN("{}: the node's head {} is below the stored head {}; waiting for it (nothing "
               "is deleted)",
               store_->options().dataset, node_head, head->number);
    }
    SleepFor(options_.poll_interval);
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto raw, CountRpc(client_->Call("eth_getBlockByNumber",
                                                         HeaderParams(head->number))));
  if (IsNullResult(raw)) {
    SleepFor(options_.poll_interval);  // the node moved under us; ask again
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto node, CountRpc(DecodeBlockHeader(raw)));
  if (node.hash == head->hash) {
    verify_head_ = false;
    return Status::OK();
  }
  LOG_WARN("{}: the node's block {} is {}, the stored one {}", store_->options().dataset,
           head->number, storage::HashToHex(node.hash), storage::HashToHex(head->hash));
  return HandleReorg();
}

Status Extractor::HandleReorg() {
  auto snap = store_->snapshot();
  if (!snap->range) return Status::OK();
  const uint64_t head = snap->range->end;
  const uint64_t first = snap->range->start;
  const uint64_t depth = options_.max_reorg_depth;
  const uint64_t lowest = std::max(first, head >= depth ? head - depth : 0);

  // Walk back from the stored head, comparing the node's hashes with the stored ones.
  std::optional<uint64_t> ancestor;
  for (uint64_t hi = head;;) {
    const uint64_t lo = std::max(lowest, hi >= kReorgWalkBatch - 1 ? hi - (kReorgWalkBatch - 1) : 0);
    std::vector<RpcRequest> requests;
    for (uint64_t n = lo; n <= hi; ++n) requests.push_back({"eth_getBlockByNumber", HeaderParams(n)});
    ARROW_ASSIGN_OR_RAISE(auto raws, CountRpc(client_->CallBatch(requests)));
    for (uint64_t n = hi + 1; n-- > lo;) {
      const std::string& raw = raws[n - lo];
      if (IsNullResult(raw)) continue;  // not on the node's chain (any more)
      ARROW_ASSIGN_OR_RAISE(auto node, CountRpc(DecodeBlockHeader(raw)));
      const storage::BlockHeader* stored = snap->Header(n);
      if (stored && node.hash == stored->hash) {
        ancestor = n;
        break;
      }
    }
    if (ancestor || lo == lowest) break;
    hi = lo - 1;
  }

  const std::string& dataset = store_->options().dataset;
  if (!ancestor) {
    if (lowest == first && head - first < depth && first > 0) {
      // Every stored block was replaced, within max_reorg_depth.
      LOG_WARN("{}: reorg: the node replaced every stored block {}-{}; removing them",
               dataset, first, head);
      ARROW_RETURN_NOT_OK(store_->TruncateAfter(first - 1));
      restart_from_ = first;
      reorgs_.fetch_add(1);
      stored_head_ = kNone;
      verify_head_ = false;
      return Status::OK();
    }
    return Fatal(Status::Invalid("reorg deeper than max_reorg_depth=", depth, ": the node's blocks ",
                           lowest, "-", head, " all differ from the stored ones; stopped "
                           "extracting dataset ", dataset,
                           ". Re-extract into a new data directory, or raise max_reorg_depth"));
  }
  verify_head_ = false;
  if (*ancestor == head) return Status::OK();  // the node changed between calls; fetch again
  LOG_WARN("{}: reorg: the node replaced blocks {}-{}; common ancestor {} ({} blocks deep)",
           dataset, *ancestor + 1, head, *ancestor, head - *ancestor);
  ARROW_RETURN_NOT_OK(store_->TruncateAfter(*ancestor));
  reorgs_.fetch_add(1);
  stored_head_ = *ancestor;
  return Status::OK();
}

}  // namespace sluice::ingest
