#include "ingest/eth_call.h"

#include <algorithm>

#include "common/hex.h"
#include "ingest/rpc_client.h"
#include "ingest/rpc_response.h"
#include "nlohmann/json.hpp"

namespace sluice::ingest {

namespace {

std::string Hex(const uint8_t* p, size_t n) { return common::ToHex(p, n); }

std::string Params(const EthCallInput& c) {
  nlohmann::json tx = nlohmann::json::object();
  if (c.from) tx["from"] = Hex(c.from->data(), c.from->size());
  tx["to"] = Hex(c.to.data(), c.to.size());
  if (c.data) tx["data"] = Hex(c.data->data(), c.data->size());
  return nlohmann::json::array({tx, c.block}).dump();
}

std::optional<std::vector<uint8_t>> HexBytes(const nlohmann::json& v) {
  if (!v.is_string()) return std::nullopt;
  auto bytes = common::FromHex(v.get<std::string>());
  if (!bytes.ok()) return std::nullopt;
  return std::move(*bytes);
}

}  // namespace

arrow::Result<std::vector<EthCallOutput>> ParseEthCallBatch(std::string_view body, size_t n) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid("eth_call: unexpected answer (", why, "): ",
                                  QuoteForMessage(body));
  };
  nlohmann::json answers = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (answers.is_discarded() || !answers.is_array()) return bad("not a JSON-RPC batch answer");
  if (answers.size() != n) return bad("expected " + std::to_string(n) + " answers");
  std::vector<std::pair<uint64_t, const nlohmann::json*>> by_id;
  for (const auto& a : answers) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned()) {
      return bad("an answer without a numeric id");
    }
    by_id.emplace_back(a["id"].get<uint64_t>(), &a);
  }
  std::sort(by_id.begin(), by_id.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<EthCallOutput> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (by_id[i].first != by_id[0].first + i) return bad("ids are not consecutive");
    const nlohmann::json& a = *by_id[i].second;
    if (a.contains("result")) {
      out[i].result = HexBytes(a["result"]);
      if (!out[i].result) return bad("a result that is not hex data");
    } else if (a.contains("error") && a["error"].is_object()) {
      const auto& e = a["error"];
      out[i].error_code = e.value("code", int64_t{0});
      out[i].error_message = e.value("message", std::string("error without a message"));
      if (e.contains("data")) out[i].error_data = HexBytes(e["data"]);
    } else {
      return bad("an answer with neither result nor error");
    }
  }
  return out;
}

EthCaller::EthCaller(EthCallerOptions options) : options_(std::move(options)) {}
EthCaller::~EthCaller() = default;

arrow::Result<std::unique_ptr<EthCaller>> EthCaller::Make(EthCallerOptions options) {
  if (options.url.empty()) return arrow::Status::Invalid("eth_call: empty rpc url");
  std::unique_ptr<EthCaller> caller(new EthCaller(std::move(options)));
  // Fail early on a bad URL or curl setup rather than at the first query.
  ARROW_ASSIGN_OR_RAISE(auto client, caller->Take());
  caller->Give(std::move(client));
  return caller;
}

arrow::Result<std::unique_ptr<RpcClient>> EthCaller::Take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  RpcClientOptions o;
  o.url = options_.url;
  o.request_timeout = options_.timeout;
  o.connect_timeout = std::min(options_.timeout, std::chrono::milliseconds(2000));
  return RpcClient::Make(std::move(o));
}

void EthCaller::Give(std::unique_ptr<RpcClient> client) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(client));
}

arrow::Result<std::vector<EthCallOutput>> EthCaller::Call(const std::vector<EthCallInput>& calls) {
  if (calls.empty()) return std::vector<EthCallOutput>{};
  std::vector<RpcRequest> requests;
  requests.reserve(calls.size());
  for (const auto& c : calls) requests.push_back({"eth_call", Params(c)});
  ARROW_ASSIGN_OR_RAISE(auto client, Take());
  auto results = client->CallBatch(requests);
  if (results.ok()) {
    std::vector<EthCallOutput> out(calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      auto text = UnquoteResult((*results)[i]);
      arrow::Result<std::vector<uint8_t>> bytes = arrow::Status::Invalid("not a string");
      if (text.ok()) bytes = common::FromHex(*text);
      if (!bytes.ok()) {
        Give(std::move(client));
        return arrow::Status::Invalid("eth_call: ", options_.url, " answered ",
                                      QuoteForMessage((*results)[i]), ", not hex data");
      }
      out[i].result = std::move(*bytes);
    }
    Give(std::move(client));
    return out;
  }
  // A call the node refused fails CallBatch as a whole: read each answer instead.
  // Anything else (no connection, a timeout, HTTP errors) fails the calls.
  if (!results.status().IsIOError() || client->last_response().empty()) {
    return results.status();  // the client is dropped: its connection may be broken
  }
  auto parsed = ParseEthCallBatch(client->last_response(), calls.size());
  if (!parsed.ok()) return results.status();
  Give(std::move(client));
  return parsed;
}

}  // namespace sluice::ingest
