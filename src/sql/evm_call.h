// eth_call in SQL: a read-only contract call answered by the node of a dataset
// (JSON-RPC eth_call, https://ethereum.org/en/developers/docs/apis/json-rpc/#eth_call).
//
//   eth_call(from BLOB, to BLOB, input BLOB, block) -> STRUCT(data BLOB, message VARCHAR)
//   <dataset>.eth_call(…)        the same, answered by that dataset's node
//
// from: 20 bytes or NULL; to: 20 bytes; input: calldata or NULL; block: 'latest',
// 'earliest', 'pending', 'safe', 'finalized', a decimal number as text, '0x' hex, or
// an integer. On success `data` holds the returned bytes and `message` is NULL. When
// the node answers with an error (a revert: JSON-RPC code 3 or -32000), `data` holds
// the revert data (NULL when none) and `message` the reason: "execution reverted:
// <reason>" for Error(string), "execution reverted: panic 0x11 (arithmetic
// underflow or overflow)" for Panic(uint256), else the node's message.
//
// The query fails, with a message naming eth_call, when: `to` or `block` is NULL or
// malformed; the node cannot be reached or does not answer within the per-request
// timeout (the transport's, see EthCallFunction); the query would make more than
// max_calls_per_query calls to the node (identical calls in one query are made once,
// while the answers kept for that stay under 64 MiB).
// eth_call is volatile (never run at plan time) and cannot stream: its answer is not
// part of the chain's blocks (sql/evm_rewrite.h refuses it in streaming queries).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arrow/result.h"
#include "duckdb.h"
#include "sql/evm_abi_codec.h"

namespace sluice::sql {

/// \brief One eth_call.
struct EthCallRequest {
  std::optional<std::array<uint8_t, 20>> from;
  std::array<uint8_t, 20> to{};
  std::optional<AbiBytes> input;  ///< calldata; none: no data
  std::string block;              ///< a tag ("latest", …) or a "0x…" quantity
};

/// \brief The node's answer to one eth_call: `result` on success, else its
/// JSON-RPC error (code, message and the data member's bytes, if any).
struct EthCallAnswer {
  std::optional<AbiBytes> result;
  int64_t error_code = 0;
  std::string error_message;
  std::optional<AbiBytes> error_data;
};

/// \brief Calls the node: one answer per request, in order (a JSON-RPC batch).
/// An error Status (transport failure, timeout, an unreadable answer) fails the
/// query; a JSON-RPC error object is an answer. Called from several threads at once.
using EthCallFunction =
    std::function<arrow::Result<std::vector<EthCallAnswer>>(const std::vector<EthCallRequest>&)>;

/// \brief Options of eth_call for one engine.
struct EthCallOptions {
  /// Most calls to the node one query makes (identical calls count once); 0: off.
  int64_t max_calls_per_query = 10000;
  /// Most calls sent to the node in one JSON-RPC batch.
  int64_t batch_size = 64;
};

class EthCallQuota;

/// \brief The nodes eth_call can ask, by dataset, and the call budget of each
/// running query. Thread-safe.
class EthCalls {
 public:
  explicit EthCalls(EthCallOptions options) : options_(options) {}

  /// \brief Let `dataset`'s eth_call ask `call`. Before serving.
  void AddNode(const std::string& dataset, EthCallFunction call);
  /// \brief The node of `dataset` (empty: the only one); Invalid, explaining, when
  /// there is none or `dataset` is empty and there are several.
  arrow::Result<std::pair<std::string, EthCallFunction>> Node(const std::string& dataset) const;

  /// \brief A fresh call budget for the next query of connection `connection_id`
  /// (duckdb_client_context_get_connection_id); eth_call finds it when bound in
  /// that connection. The budget lives while the caller holds it.
  std::shared_ptr<EthCallQuota> BeginQuery(idx_t connection_id);
  /// \brief The budget of the query being bound in `connection_id` (a new one when
  /// BeginQuery was not called for it).
  std::shared_ptr<EthCallQuota> QuotaFor(idx_t connection_id);

  const EthCallOptions& options() const { return options_; }

 private:
  EthCallOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, EthCallFunction> nodes_;
  std::map<idx_t, std::weak_ptr<EthCallQuota>> quotas_;
  uint64_t inserts_ = 0;
};

/// \brief Register eth_call (4 arguments, the only dataset's node) and
/// __sluice_eth_call(dataset, from, to, input, block), which `<dataset>.eth_call`
/// macros call (Engine::AddEthCall).
arrow::Status RegisterEthCall(duckdb_connection conn, std::shared_ptr<EthCalls> calls);

/// \brief The revert reason in revert data: "execution reverted: <reason>" for
/// Error(string) (selector 0x08c379a0), "execution reverted: panic 0x11 (arithmetic
/// underflow or overflow)" for Panic(uint256) (0x4e487b71); std::nullopt otherwise.
std::optional<std::string> DecodeRevertReason(ByteSpan data);

/// \brief Parse eth_call's block argument text: a tag, a decimal block number or
/// "0x" hex, into the JSON-RPC block parameter ("latest", "0x1a").
arrow::Result<std::string> ParseBlockTag(std::string_view text);

}  // namespace sluice::sql
