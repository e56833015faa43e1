// Fetching one range of blocks (Extractor::FetchRange): block receipts or, for
// a node without eth_getBlockReceipts, receipts per transaction; then, with
// `verify`, recomputing each block's hash, roots and bloom before it is stored.
#include "common/log.h"
#include "ingest/block_fetch.h"
#include "ingest/extractor.h"
#include "verify/block_verifier.h"

namespace sluice::ingest {

using arrow::Status;

arrow::Result<storage::BlockRangeData> Extractor::FetchRange(NodeClient* client,
                                                            EvmDecoder* decoder, uint64_t first,
                                                            uint64_t last) {
  const bool block_receipts = block_receipts_.load();
  auto data = FetchBlockRange(client, decoder, first, last, block_receipts);
  if (!data.ok() && block_receipts) {
    const auto* d = RpcErrorOf(data.status());
    if (d && d->kind == RpcErrorKind::kMethodNotFound &&
        options_.receipts == ReceiptsMode::kAuto) {
      // An endpoint without eth_getBlockReceipts (failed over to, after start).
      if (block_receipts_.exchange(false)) {
        LOG_WARN("{}: the node has no eth_getBlockReceipts ({}); receipts are fetched per "
                 "transaction (eth_getTransactionReceipt) from now on",
                 store_->options().dataset, data.status().message());
      }
      data = FetchBlockRange(client, decoder, first, last, false);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto fetched, CountRpc(std::move(data)));
  if (options_.verify) {
    Status verified = verify::VerifyRange(fetched);
    if (!verified.ok()) {
      verification_failures_.fetch_add(1);
      const auto* failure = verify::AsVerificationFailure(verified);
      if (failure && failure->verified()) {
        verified_blocks_.fetch_add(failure->verified()->headers.size());
      }
      return verified;
    }
    verified_blocks_.fetch_add(fetched.headers.size());
  }
  return fetched;
}

}  // namespace sluice::ingest
