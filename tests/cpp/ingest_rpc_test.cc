#include <poll.h>

#include <atomic>
#include <functional>

#include "anvil_fixture.h"
#include "gtest/gtest.h"
#include "ingest/rpc_client.h"

namespace sluice::ingest {

using sluice::testing::Anvil;
using sluice::testing::JsonRpc;

namespace {

/// A one-connection-at-a-time HTTP server on 127.0.0.1 answering every POST with
/// handler(body) -> full HTTP response text ("" = never answer).
class FakeServer {
 public:
  explicit FakeServer(std::function<std::string(const std::string&)> handler)
      : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  static std::string Http200(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[65536];
      size_t body_at = std::string::npos, want = 0;
      while (!stop_) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 20) <= 0) continue;
        ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, n);
        if (body_at == std::string::npos) {
          size_t h = req.find("\r\n\r\n");
          if (h == std::string::npos) continue;
          body_at = h + 4;
          size_t cl = req.find("Content-Length: ");
          if (cl == std::string::npos) cl = req.find("content-length: ");
          want = std::stoul(req.substr(cl + 16));
        }
        if (req.size() >= body_at + want) break;
      }
      std::string response =
          body_at == std::string::npos ? "" : handler_(req.substr(body_at, want));
      if (response.empty()) {
        while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      } else {
        ::write(c, response.data(), response.size());
      }
      ::close(c);
    }
  }

  std::function<std::string(const std::string&)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::unique_ptr<RpcClient> MakeClient(const std::string& url,
                                      arrow::StopToken token = arrow::StopToken::Unstoppable(),
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  RpcClientOptions o;
  o.url = url;
  o.request_timeout = timeout;
  o.stop_token = token;
  auto c = RpcClient::Make(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(*c);
}

}  // namespace

TEST(IngestRpc, CallAndBatchAgainstAnvil) {
  std::string err;
  auto anvil = Anvil::Start({"--no-mining"}, &err);
  ASSERT_TRUE(anvil) << err;
  const JsonRpc& node = anvil->rpc();
  node.Mine(5);

  auto client = MakeClient(anvil->url());
  auto chain = client->Call("eth_chainId");
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  EXPECT_EQ(*UnquoteResult(*chain), node.Call("eth_chainId").get<std::string>());

  // Batch: results in request order, each equal to the node's own answer.
  std::vector<RpcRequest> reqs;
  for (int n = 5; n >= 0; --n) {
    reqs.push_back({"eth_getBlockByNumber", "[\"" + JsonRpc::Q(n) + "\",false]"});
  }
  reqs.push_back({"eth_blockNumber", "[]"});
  auto results = client->CallBatch(reqs);
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), reqs.size());
  for (int i = 0; i < 6; ++i) {
    auto mine = nlohmann::json::parse((*results)[i]);
    EXPECT_EQ(mine, node.Block(5 - i, false)) << "block " << 5 - i;
  }
  EXPECT_EQ(nlohmann::json::parse(results->back()), node.Call("eth_blockNumber"));

  // A block the node does not have: JSON null.
  auto missing = client->Call("eth_getBlockByNumber", "[\"0x999\",false]");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(IsNullResult(*missing));

  // JSON-RPC errors name the method and carry code and message.
  auto bad = client->Call("no_such_method", "[]");
  ASSERT_TRUE(bad.status().IsIOError());
  EXPECT_NE(bad.status().message().find("no_such_method"), std::string::npos);
  EXPECT_NE(bad.status().message().find(std::to_string(
                node.Raw("no_such_method")["error"]["code"].get<int64_t>())),
            std::string::npos)
      << bad.status().message();
  auto bad_batch = client->CallBatch({{"eth_blockNumber", "[]"}, {"no_such_method", "[1]"}});
  ASSERT_TRUE(bad_batch.status().IsIOError());
  EXPECT_NE(bad_batch.status().message().find("no_such_method(1)"), std::string::npos)
      << bad_batch.status().message();
  // The client still works after errors (same connection).
  EXPECT_TRUE(client->Call("eth_blockNumber").ok());
}

TEST(IngestRpc, ConnectionRefusedIsIOError) {
  int port = sluice::testing::FreePort();
  auto client = MakeClient("http://127.0.0.1:" + std::to_string(port));
  auto t0 = std::chrono::steady_clock::now();
  auto r = client->Call("eth_blockNumber");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  ASSERT_TRUE(r.status().IsIOError()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("eth_blockNumber"), std::string::npos);
}

TEST(IngestRpc, BatchAnswersMatchedByIdInAnyOrder) {
  // Answers every call with its method name and params, in reverse order.
  FakeServer server([](const std::string& body) {
    auto reqs = nlohmann::json::parse(body);
    nlohmann::json out = nlohmann::json::array();
    for (auto it = reqs.rbegin(); it != reqs.rend(); ++it) {
      out.push_back({{"jsonrpc", "2.0"},
                     {"id", (*it)["id"]},
                     {"result", (*it)["method"].get<std::string>() + (*it)["params"].dump()}});
    }
    return FakeServer::Http200(out.dump());
  });
  auto client = MakeClient(server.url());
  auto r = client->CallBatch({{"a", "[1]"}, {"b", "[2]"}, {"c", "[]"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(nlohmann::json::parse((*r)[0]), "a[1]");
  EXPECT_EQ(nlohmann::json::parse((*r)[1]), "b[2]");
  EXPECT_EQ(nlohmann::json::parse((*r)[2]), "c[]");
}

TEST(IngestRpc, MalformedAnswersAreInvalid) {
  std::string next;
  FakeServer server([&](const std::string&) { return next; });
  auto client = MakeClient(server.url());

  next = FakeServer::Http200("hello");
  auto r = client->Call("eth_blockNumber");
  EXPECT_TRUE(r.status().IsInvalid()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("eth_blockNumber"), std::string::npos);

  next = FakeServer::Http200(R"({"jsonrpc":"2.0","id":2})");
  r = client->Call("eth_blockNumber");
  EXPECT_TRUE(r.status().IsInvalid()) << r.status().ToString();

  // A batch answer missing one of the calls.
  next = FakeServer::Http200(R"([{"jsonrpc":"2.0","id":3,"result":"0x1"}])");
  auto b = client->CallBatch({{"x", "[]"}, {"y", "[]"}});
  EXPECT_TRUE(b.status().IsInvalid()) << b.status().ToString();
  EXPECT_NE(b.status().message().find("y("), std::string::npos) << b.status().message();

  next = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy";
  r = client->Call("eth_blockNumber");
  ASSERT_TRUE(r.status().IsIOError()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("503"), std::string::npos);

  // A batch rejected as a whole.
  next = FakeServer::Http200(
      R"({"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limited"}})");
  b = client->CallBatch({{"x", "[]"}});
  ASSERT_TRUE(b.status().IsIOError()) << b.status().ToString();
  EXPECT_NE(b.status().message().find("-32005"), std::string::npos);
  EXPECT_NE(b.status().message().find("rate limited"), std::string::npos);

  // A result of every JSON type is returned raw (ids are consecutive from 1 per
  // client: this batch is ids 7-10).
  next = FakeServer::Http200(
      R"([{"jsonrpc":"2.0","id":8,"result":{"a":[1,2]}},{"jsonrpc":"2.0","id":7,"result":"0x1"},)"
      R"({"jsonrpc":"2.0","id":9,"result":null},{"jsonrpc":"2.0","id":10,"result":true}])");
  b = client->CallBatch({{"x", "[]"}, {"y", "[]"}, {"z", "[]"}, {"w", "[]"}});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*b)[0], "\"0x1\"");
  EXPECT_EQ((*b)[1], R"({"a":[1,2]})");
  EXPECT_EQ((*b)[2], "null");
  EXPECT_EQ((*b)[3], "true");
}

TEST(IngestRpc, TimeoutAndStopArePrompt) {
  FakeServer server([](const std::string&) { return std::string(); });  // never answers
  {
    auto client = MakeClient(server.url(), arrow::StopToken::Unstoppable(),
                             std::chrono::milliseconds(300));
    auto t0 = std::chrono::steady_clock::now();
    auto r = client->Call("eth_blockNumber");
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(r.status().IsIOError()) << r.status().ToString();
    EXPECT_GE(took, std::chrono::milliseconds(250));
    EXPECT_LT(took, std::chrono::milliseconds(1500));
  }
  {
    arrow::StopSource stop;
    auto client = MakeClient(server.url(), stop.token());
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      stop.RequestStop();
    });
    auto t0 = std::chrono::steady_clock::now();
    auto r = client->Call("eth_blockNumber");
    auto took = std::chrono::steady_clock::now() - t0;
    stopper.join();
    EXPECT_TRUE(r.status().IsCancelled()) << r.status().ToString();
    EXPECT_LT(took, std::chrono::milliseconds(500));
    // Stopped clients refuse new calls at once.
    EXPECT_TRUE(client->Call("eth_blockNumber").status().IsCancelled());
  }
}

}  // namespace sluice::ingest
