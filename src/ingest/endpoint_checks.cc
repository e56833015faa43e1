// The start checks of an endpoint (Extractor::CheckEndpoint): run on each of a
// dataset's endpoints before its first use (NodeEndpoints::Check).
#include "common/log.h"
#include "ingest/evm_decode.h"
#include "ingest/extractor.h"
#include "ingest/hex_quantity.h"
#include "ingest/rpc_client.h"

namespace sluice::ingest {

using arrow::Status;

namespace {

std::string HeaderParams(uint64_t n) { return "[\"" + FormatQuantity(n) + "\",false]"; }

const char* TagName(FinalityTag tag) {
  return tag == FinalityTag::kSafe ? "safe" : tag == FinalityTag::kFinalized ? "finalized" : "latest";
}

// Whether a node's error answer to a block tag means it does not know the tag
// (rather than a passing failure): invalid params, method not found, or a message
// about the argument or tag.
bool RefusesTag(const Status& st) {
  const auto* d = RpcErrorOf(st);
  if (d == nullptr || (d->kind != RpcErrorKind::kRpc && d->kind != RpcErrorKind::kMethodNotFound)) {
    return false;
  }
  if (d->rpc_code == -32602 || d->rpc_code == -32601 || d->rpc_code == -32600) return true;
  const std::string& m = st.message();
  for (const char* word : {"tag", "invalid argument", "unknown block", "hex string", "invalid block"}) {
    if (m.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

Status Extractor::CheckIdentity(RpcClient* client, const std::string& url) {
  ARROW_ASSIGN_OR_RAISE(auto raw_chain, CountRpc(client->Call("eth_chainId")));
  auto chain_hex = UnquoteResult(raw_chain);
  arrow::Result<uint64_t> chain_id =
      chain_hex.ok() ? ParseQuantity(*chain_hex) : arrow::Result<uint64_t>(chain_hex.status());
  if (!chain_id.ok()) {
    return CountRpc(chain_id.status().WithMessage("eth_chainId: ", chain_id.status().message()));
  }
  ARROW_ASSIGN_OR_RAISE(auto raw_genesis,
                        CountRpc(client->Call("eth_getBlockByNumber", HeaderParams(0))));
  if (IsNullResult(raw_genesis)) {
    return CountRpc(Status::IOError("eth_getBlockByNumber(0x0): the node has no block 0"));
  }
  ARROW_ASSIGN_OR_RAISE(auto genesis, CountRpc(DecodeBlockHeader(raw_genesis)));
  storage::ChainIdentity id{*chain_id, genesis.hash};

  auto stored = store_->identity();
  if (stored && !(*stored == id)) {
    return Fatal(Status::Invalid(
        "the node at ", RedactUrl(url), " serves chain id ", id.chain_id, " with genesis ",
        storage::HashToHex(id.genesis_hash), ", but data directory ",
        (store_->options().data_dir / store_->options().dataset).string(), " holds chain id ",
        stored->chain_id, " with genesis ", storage::HashToHex(stored->genesis_hash),
        "; refusing to mix chains. Use a different data directory for this chain, or point "
        "rpc_url at a node of chain id ",
        stored->chain_id, " with that genesis"));
  }
  if (!stored) {
    ARROW_RETURN_NOT_OK(store_->SetIdentity(id));
    LOG_INFO("{}: chain id {}, genesis {}", store_->options().dataset, id.chain_id,
             storage::HashToHex(id.genesis_hash));
  }
  return Status::OK();
}

Status Extractor::CheckEndpoint(RpcClient* client, size_t endpoint) {
  const std::string& url = options_.node.urls[endpoint];
  const std::string& dataset = store_->options().dataset;
  ARROW_RETURN_NOT_OK(CheckIdentity(client, url));
  if (options_.receipts == ReceiptsMode::kAuto && block_receipts_.load()) {
    auto r = client->Call("eth_getBlockReceipts", "[\"latest\"]");
    if (!r.ok()) {
      const auto* d = RpcErrorOf(r.status());
      if (d == nullptr || d->kind != RpcErrorKind::kMethodNotFound) {
        return CountRpc(r.status());
      }
      block_receipts_ = false;
      LOG_INFO("{}: the node at {} has no eth_getBlockReceipts ({}); receipts are fetched per "
               "transaction (eth_getTransactionReceipt)",
               dataset, RedactUrl(url), r.status().message());
    }
  }
  if (options_.finality != FinalityTag::kLatest) {
    const char* tag = TagName(options_.finality);
    auto r = client->Call("eth_getBlockByNumber", std::string("[\"") + tag + "\",false]");
    if (!r.ok()) {
      if (!RefusesTag(r.status())) return CountRpc(r.status());
      return Fatal(Status::Invalid(
          "finality_tag \"", tag, "\" needs a node that knows the block "
          "tag \"", tag, "\" (eth_getBlockByNumber(\"", tag, "\")), but the node at ",
          RedactUrl(url), " refused it: ", r.status().message(),
          ". Use finality_depth instead, or a node that has the tag (post-merge)"));
    }
  }
  if (options_.node.urls.size() > 1) {
    LOG_INFO("{}: endpoint {} checked (receipts: {})", dataset, RedactUrl(url),
             block_receipts_.load() ? "eth_getBlockReceipts" : "eth_getTransactionReceipt");
  }
  return Status::OK();
}

}  // namespace sluice::ingest
