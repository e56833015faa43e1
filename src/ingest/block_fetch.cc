#include "ingest/block_fetch.h"

#include "ingest/hex_quantity.h"
#include "ingest/simdjson_binding.h"
#include "simdjson.h"

namespace sluice::ingest {

using arrow::Status;

namespace {

std::string BlockParams(uint64_t n, bool full) {
  std::string p = "[\"" + FormatQuantity(n) + "\"";
  if (full) p += ",true";
  p += "]";
  return p;
}

// The transaction hashes of a block object with full transactions, in order.
arrow::Result<std::vector<std::string>> TransactionHashes(simdjson::dom::parser* parser,
                                                          const std::string& block_json,
                                                          uint64_t n) {
  simdjson::dom::element doc;
  if (auto e = parser->parse(block_json).get(doc)) {
    return Status::Invalid("block ", n, ": malformed JSON (", simdjson::error_message(e), ")");
  }
  simdjson::dom::array txs;
  if (doc.at_key("transactions").get_array().get(txs)) {
    return Status::Invalid("block ", n, ": missing field 'transactions'");
  }
  std::vector<std::string> out;
  for (simdjson::dom::element tx : txs) {
    std::string_view hash;
    if (tx.at_key("hash").get_string().get(hash)) {
      return Status::Invalid("block ", n, ": transaction ", out.size(), " has no 'hash'");
    }
    out.emplace_back(hash);
  }
  return out;
}

}  // namespace

arrow::Result<storage::BlockRangeData> FetchBlockRange(NodeClient* client, EvmDecoder* decoder,
                                                       uint64_t first, uint64_t last,
                                                       bool block_receipts) {
  const size_t blocks = last - first + 1;
  std::vector<std::string> block_json(blocks), receipts_json(blocks);
  if (block_receipts) {
    std::vector<RpcRequest> requests;
    requests.reserve(2 * blocks);
    for (uint64_t n = first; n <= last; ++n) {
      requests.push_back({"eth_getBlockByNumber", BlockParams(n, true)});
      requests.push_back({"eth_getBlockReceipts", BlockParams(n, false)});
    }
    ARROW_ASSIGN_OR_RAISE(auto raws, client->CallBatch(requests));
    for (size_t i = 0; i < blocks; ++i) {
      block_json[i] = std::move(raws[2 * i]);
      receipts_json[i] = std::move(raws[2 * i + 1]);
      if (IsNullResult(receipts_json[i]) && !IsNullResult(block_json[i])) {
        return Status::IOError("block ", first + i,
                               " is not available from the node (eth_getBlockReceipts returned "
                               "null)");
      }
    }
  } else {
    std::vector<RpcRequest> requests;
    requests.reserve(blocks);
    for (uint64_t n = first; n <= last; ++n) {
      requests.push_back({"eth_getBlockByNumber", BlockParams(n, true)});
    }
    ARROW_ASSIGN_OR_RAISE(block_json, client->CallBatch(requests));
    ARROW_RETURN_NOT_OK(internal::CheckSimdjsonBinding());
    simdjson::dom::parser parser;
    std::vector<size_t> counts(blocks, 0);
    requests.clear();
    for (size_t i = 0; i < blocks; ++i) {
      if (IsNullResult(block_json[i])) break;  // reported below
      ARROW_ASSIGN_OR_RAISE(auto hashes, TransactionHashes(&parser, block_json[i], first + i));
      counts[i] = hashes.size();
      for (const auto& h : hashes) requests.push_back({"eth_getTransactionReceipt", "[\"" + h + "\"]"});
    }
    ARROW_ASSIGN_OR_RAISE(auto receipts, client->CallBatch(requests));
    size_t k = 0;
    for (size_t i = 0; i < blocks; ++i) {
      std::string& out = receipts_json[i];
      out = "[";
      for (size_t j = 0; j < counts[i]; ++j, ++k) {
        if (IsNullResult(receipts[k])) {
          return Status::IOError("block ", first + i, ": the receipt of transaction ", j,
                                 " is not available from the node (eth_getTransactionReceipt "
                                 "returned null)");
        }
        if (j) out += ',';
        out += receipts[k];
      }
      out += ']';
    }
  }
  decoder->Reset();
  for (size_t i = 0; i < blocks; ++i) {
    if (IsNullResult(block_json[i])) {
      return Status::IOError("block ", first + i,
                             " is not available from the node (eth_getBlockByNumber returned "
                             "null)");
    }
    ARROW_RETURN_NOT_OK(decoder->Append(block_json[i], receipts_json[i]));
  }
  ARROW_ASSIGN_OR_RAISE(auto data, decoder->Finish());
  if (data.headers.front().number != first) {
    return Status::Invalid("eth_getBlockByNumber(", FormatQuantity(first), ") returned block ",
                           data.headers.front().number);
  }
  return data;
}

}  // namespace sluice::ingest
