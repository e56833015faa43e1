// How node and provider answers are classified (ingest/rpc_error.h): the
// conditions the extractor reacts to (rate limits, batch limits, missing methods).
#include <chrono>

#include "gtest/gtest.h"
#include "ingest/rpc_error.h"

namespace sluice::ingest {

using std::chrono::milliseconds;

TEST(RpcError, ClassifiesWhatProvidersAnswer) {
  // geth's own messages.
  EXPECT_EQ(ClassifyRpcError(-32600, "batch too large"), RpcErrorKind::kBatchTooLarge);
  EXPECT_EQ(ClassifyRpcError(-32003, "response too large"), RpcErrorKind::kBatchTooLarge);
  EXPECT_EQ(ClassifyRpcError(-32601, "the method eth_getBlockReceipts does not exist/is not "
                                     "available"),
            RpcErrorKind::kMethodNotFound);
  // Hosted providers' rate limits.
  EXPECT_EQ(ClassifyRpcError(429, "Your app has exceeded its compute units per second capacity"),
            RpcErrorKind::kRateLimited);
  EXPECT_EQ(ClassifyRpcError(-32005, "limit exceeded"), RpcErrorKind::kRateLimited);
  EXPECT_EQ(ClassifyRpcError(-32000, "Too Many Requests"), RpcErrorKind::kRateLimited);
  // "too many requests in batch" is about size, not rate.
  EXPECT_EQ(ClassifyRpcError(-32600, "too many requests in batch, max 100"),
            RpcErrorKind::kBatchTooLarge);
  EXPECT_EQ(ClassifyRpcError(-32000, "header not found"), RpcErrorKind::kRpc);
  EXPECT_EQ(ClassifyRpcError(-32602, "invalid argument 0: hex string without 0x prefix"),
            RpcErrorKind::kRpc);
}

TEST(RpcError, RetryAfterSecondsOrHttpDate) {
  EXPECT_EQ(ParseRetryAfter(" 3 "), milliseconds(3000));
  EXPECT_EQ(ParseRetryAfter("0"), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), milliseconds(0));  // past
  auto future = ParseRetryAfter("Fri, 01 Jan 2100 00:00:00 GMT");
  ASSERT_TRUE(future.has_value());
  EXPECT_GT(*future, milliseconds(1000LL * 3600 * 24 * 365));
  EXPECT_FALSE(ParseRetryAfter("soon").has_value());
  EXPECT_FALSE(ParseRetryAfter("").has_value());
}

TEST(RpcError, RedactUrlHidesKeysInPathQueryAndUserinfo) {
  EXPECT_EQ(RedactUrl("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:8545/"), "http://127.0.0.1:8545");
  EXPECT_EQ(RedactUrl("https://eth-mainnet.g.alchemy.com/v2/SECRETKEY"),
            "https://eth-mainnet.g.alchemy.com/…");
  EXPECT_EQ(RedactUrl("https://user:pass@node.example:8545?key=SECRET"),
            "https://node.example:8545/…");
}

TEST(RpcError, DetailTravelsWithTheStatus) {
  auto d = std::make_shared<RpcErrorDetail>(RpcErrorKind::kRateLimited);
  d->retry_after = milliseconds(1500);
  auto st = WithRpcError(arrow::Status::IOError("x"), d);
  ASSERT_NE(RpcErrorOf(st), nullptr);
  EXPECT_EQ(RpcErrorOf(st)->kind, RpcErrorKind::kRateLimited);
  EXPECT_EQ(RpcErrorOf(st)->retry_after, milliseconds(1500));
  EXPECT_EQ(RpcErrorOf(arrow::Status::IOError("y")), nullptr);
  EXPECT_TRUE(WithRpcError(arrow::Status::OK(), d).ok());
}

}  // namespace sluice::ingest
