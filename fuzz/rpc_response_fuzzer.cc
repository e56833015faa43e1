// Fuzzes what sluice makes of a JSON-RPC node's answers: the response envelope
// parser (ingest/rpc_response.h) for single calls and batches, then the EVM
// decoder (ingest/evm_decode.h) on what the envelope parser accepts, as the
// extractor does with eth_getBlockByNumber(n, true) + eth_getBlockReceipts(n).
//
// The node is not trusted: any bytes must give a result or a clear error.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "arrow/memory_pool.h"
#include "ingest/evm_decode.h"
#include "ingest/rpc_client.h"
#include "ingest/rpc_response.h"

using sluice::ingest::EvmDecoder;
using sluice::ingest::RpcRequest;
using sluice::ingest::RpcResponseParser;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static RpcResponseParser parser;
  // The system allocator, so that AddressSanitizer sees the decoder's buffers.
  static auto decoder = EvmDecoder::Make(arrow::system_memory_pool()).ValueOrDie();
  static const std::vector<RpcRequest> requests = {
      {"eth_getBlockByNumber", R"(["0x1",true])"}, {"eth_getBlockReceipts", R"(["0x1"])"}};
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  std::string body = bytes;
  auto one = parser.ParseCall("fuzz", 1, &body);
  if (one.ok()) (void)sluice::ingest::DecodeBlockHeader(*one);

  body = bytes;
  auto batch = parser.ParseBatch("fuzz batch", requests, 1, &body);
  if (batch.ok()) {
    if (batch->size() != requests.size()) std::abort();
    (void)sluice::ingest::DecodeBlockHeader((*batch)[0]);
    decoder->Reset();
    if (decoder->Append((*batch)[0], (*batch)[1]).ok()) {
      auto range = decoder->Finish();
      if (!range.ok() || range->headers.size() != 1) std::abort();
    }
  } else if (batch.status().message().empty()) {
    std::abort();
  }
  return 0;
}
