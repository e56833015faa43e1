// eth_call against a node (JSON-RPC "eth_call", https://ethereum.org/en/developers/
// docs/apis/json-rpc/#eth_call), in batches, for SQL's eth_call (sql/evm_call.h;
// cli/serve.cc connects the two, so that sql/ does not depend on ingest/).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"

namespace sluice::ingest {

class RpcClient;

/// \brief One call: params [{from?, to, data?}, block].
struct EthCallInput {
  std::optional<std::array<uint8_t, 20>> from;
  std::array<uint8_t, 20> to{};
  std::optional<std::vector<uint8_t>> data;
  std::string block;  ///< "latest", "0x1a", … as sent
};

/// \brief The node's answer: `result` on success, else the JSON-RPC error object's
/// code, message and data (when data is a hex string: a revert's data).
struct EthCallOutput {
  std::optional<std::vector<uint8_t>> result;
  int64_t error_code = 0;
  std::string error_message;
  std::optional<std::vector<uint8_t>> error_data;
};

/// \brief Options of an EthCaller.
struct EthCallerOptions {
  std::string url;  ///< the node's HTTP endpoint
  /// Longest wait for the answer to one request (one JSON-RPC batch).
  std::chrono::milliseconds timeout{10000};
};

/// \brief Sends eth_calls to a node as JSON-RPC batches. Thread-safe: keeps a pool
/// of connections (one RpcClient per concurrent caller).
class EthCaller {
 public:
  static arrow::Result<std::unique_ptr<EthCaller>> Make(EthCallerOptions options);
  ~EthCaller();

  /// \brief One answer per call, in order. An error Status when the node cannot be
  /// reached, times out, or its answer is not a JSON-RPC batch answer to these
  /// calls (IOError / Invalid, with the node's URL); a call the node refused is an
  /// answer with its error.
  arrow::Result<std::vector<EthCallOutput>> Call(const std::vector<EthCallInput>& calls);

 private:
  explicit EthCaller(EthCallerOptions options);
  arrow::Result<std::unique_ptr<RpcClient>> Take();
  void Give(std::unique_ptr<RpcClient> client);

  EthCallerOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<RpcClient>> idle_;
};

/// \brief The answers in `body`, a JSON-RPC batch response to `n` calls sent with
/// consecutive ids (answers in any order), in call order. Invalid when `body` is
/// not such an answer. Exposed for tests.
arrow::Result<std::vector<EthCallOutput>> ParseEthCallBatch(std::string_view body, size_t n);

}  // namespace sluice::ingest
