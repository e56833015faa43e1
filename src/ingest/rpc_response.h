// Parsing of JSON-RPC 2.0 response bodies (simdjson), apart from the transport so
// that it can be tested and fuzzed on its own (fuzz/rpc_response_fuzzer.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "arrow/result.h"

namespace sluice::ingest {

struct RpcRequest;

/// \brief `text` cut after 160 characters, to quote node answers in messages.
std::string_view QuoteForMessage(std::string_view text);

/// \brief `s` without trailing JSON whitespace (space, tab, CR, LF).
std::string_view TrimJsonWhitespace(std::string_view s);

/// \brief `method(params)` for messages, params without their brackets and cut
/// after 160 characters: `eth_getBlockByNumber("0x1a",true)`.
std::string DescribeCall(std::string_view method, std::string_view params);

/// \brief Parses the bodies of JSON-RPC responses. Not thread-safe: one per
/// RpcClient (it reuses simdjson's buffers between calls).
///
/// Results are the raw JSON text of each response's `result` member, exactly as
/// the node sent it, copied with simdjson::SIMDJSON_PADDING bytes of spare
/// capacity. Errors:
/// - IOError: a JSON-RPC error object (its code, message and data, prefixed with
///   `what` or the failed call);
/// - Invalid: a body that is not JSON, not the expected object/array, lacks
///   `result`/`error`, names another id, or (batches) repeats or misses an id.
/// Never throws, whatever the bytes.
class RpcResponseParser {
 public:
  RpcResponseParser();
  ~RpcResponseParser();
  RpcResponseParser(const RpcResponseParser&) = delete;
  RpcResponseParser& operator=(const RpcResponseParser&) = delete;

  /// \brief The result of the response to one call with id `id`. `body` is the
  /// HTTP body; its capacity is grown to hold simdjson's padding.
  arrow::Result<std::string> ParseCall(std::string_view what, uint64_t id, std::string* body);

  /// \brief The results of the response to a batch of `requests` whose ids are
  /// first_id, first_id + 1, ..., in request order whatever the order of the
  /// answers; fails as a whole if any call failed (naming the first failure).
  arrow::Result<std::vector<std::string>> ParseBatch(std::string_view what,
                                                     const std::vector<RpcRequest>& requests,
                                                     uint64_t first_id, std::string* body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::ingest
