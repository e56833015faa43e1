// ingest::EthCaller against a real anvil node, compared with the node's own answers
// through the tests' independent JSON-RPC client; and the parsing of batch answers.
#include <thread>

#include "anvil_fixture.h"
#include "common/hex.h"
#include "gtest/gtest.h"
#include "ingest/eth_call.h"

namespace sluice::ingest {
namespace {

std::array<uint8_t, 20> Address(const std::string& hex) {
  auto bytes = *common::FromHex(hex);
  std::array<uint8_t, 20> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

// Runtime code: MSTORE(0, kWord); REVERT(0, 32). Deployed by init code that copies
// it (CODECOPY) and returns it.
const std::string kWord = "deadbeef" + std::string(56, '1');
std::string RevertingContract() {
  std::string runtime = "7f" + kWord + "6000526020" "6000fd";  // 41 bytes
  return "0x6029600c60003960296000f3" + runtime;
}

TEST(EthCaller, AnswersAsTheNodeDoes) {
  std::string err;
  auto anvil = testing::Anvil::Start({"--no-mining"}, &err);
  ASSERT_NE(anvil, nullptr) << err;
  const auto& rpc = anvil->rpc();
  std::string tx = rpc.Send({{"from", testing::kDev0}, {"data", RevertingContract()}});
  rpc.Mine();
  std::string contract = rpc.Call("eth_getTransactionReceipt", {tx})["contractAddress"];

  EthCallerOptions options;
  options.url = anvil->url();
  auto caller = EthCaller::Make(options);
  ASSERT_TRUE(caller.ok()) << caller.status().ToString();
  std::vector<EthCallInput> calls(3);
  calls[0].to = Address(testing::kDev1);  // no code: empty success
  calls[0].block = "latest";
  calls[1].to = Address(contract);
  calls[1].block = "latest";
  calls[2].to = Address(contract);
  calls[2].from = Address(testing::kDev2);
  calls[2].data = std::vector<uint8_t>{1, 2, 3};
  calls[2].block = "0x1";
  auto got = (*caller)->Call(calls);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].result, std::vector<uint8_t>{});
  // The node's own answer to the reverting call.
  auto raw = rpc.Raw("eth_call", {{{"to", contract}}, "latest"});
  ASSERT_TRUE(raw.contains("error")) << raw.dump();
  for (size_t i : {1u, 2u}) {
    const auto& a = (*got)[i];
    EXPECT_FALSE(a.result.has_value());
    EXPECT_EQ(a.error_code, raw["error"]["code"].get<int64_t>());
    EXPECT_EQ(a.error_message, raw["error"]["message"].get<std::string>());
    ASSERT_TRUE(a.error_data.has_value());
    EXPECT_EQ(common::ToHex(a.error_data->data(), a.error_data->size()), "0x" + kWord);
  }
  // Several threads at once share the caller.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) ok += (*caller)->Call(calls).ok();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
  // A node that is gone: an error naming its URL.
  anvil->Kill();
  auto down = (*caller)->Call(calls);
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.status().message().find(anvil->url()), std::string::npos) << down.status().ToString();
}

TEST(EthCaller, ParsesBatchAnswers) {
  auto out = ParseEthCallBatch(
      R"([{"jsonrpc":"2.0","id":8,"error":{"code":3,"message":"execution reverted: no","data":"0x08c379a0"}},)"
      R"({"jsonrpc":"2.0","id":7,"result":"0x0102"},)"
      R"({"jsonrpc":"2.0","id":9,"error":{"code":-32000,"message":"header not found"}}])",
      3);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].result, (std::vector<uint8_t>{1, 2}));
  EXPECT_EQ((*out)[1].error_code, 3);
  EXPECT_EQ((*out)[1].error_data, (std::vector<uint8_t>{0x08, 0xc3, 0x79, 0xa0}));
  EXPECT_EQ((*out)[2].error_message, "header not found");
  EXPECT_FALSE((*out)[2].error_data.has_value());
  for (const char* bad : {"", "{}", "[1]", R"([{"id":1,"result":"0x01"}])",
                          R"([{"id":1,"result":"zz"},{"id":2,"result":"0x"}])",
                          R"([{"id":1,"result":"0x"},{"id":3,"result":"0x"}])",
                          R"([{"id":1},{"id":2,"result":"0x"}])"}) {
    EXPECT_FALSE(ParseEthCallBatch(bad, 2).ok()) << bad;
  }
}

}  // namespace
}  // namespace sluice::ingest
