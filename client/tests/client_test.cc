// Unit tests of the client library's parts that need no server: decoding the
// server's app_metadata into events, the file cursor store, option checks, and
// errors when there is no server. The integration tests against a real server
// and chain are tests/python/test_cpp_client.py.
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "arrow/record_batch.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sluice/client/api.h"

namespace sluice::client {
namespace {

namespace fs = std::filesystem;

// Messages as docs/protocol.md shows them (the server builds them in
// src/flight/app_metadata.cc).
const char* kStart =
    R"({"ranges":[{"network":"anvil","numbers":{"start":100,"end":102},"hash":"0xaa",)"
    R"("prev_hash":"0xbb","timestamp":1}],"range":{"start":100,"end":102},)"
    R"("ranges_complete":false,"is_reorg":false,"kind":"microbatch_start"})";
const char* kEnd =
    R"({"ranges":[{"network":"anvil","numbers":{"start":100,"end":102}}],)"
    R"("range":{"start":100,"end":102},"ranges_complete":true,"is_reorg":false,)"
    R"("kind":"microbatch_end","cursor":{"anvil":{"block_number":102,"number":102,"hash":"0xaa"}}})";

std::shared_ptr<arrow::RecordBatch> Empty() {
  return *arrow::RecordBatch::MakeEmpty(arrow::schema({arrow::field("x", arrow::int64())}));
}

TEST(DecodeMessage, EveryKind) {
  auto start = DecodeMessage(kStart, Empty());
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  ASSERT_EQ(start->size(), 1u);
  const auto& s = std::get<MicrobatchStart>((*start)[0]);
  EXPECT_EQ(s.range, (BlockRange{100, 102}));
  EXPECT_FALSE(s.is_reorg);
  EXPECT_EQ(s.prev_hash, "0xbb");

  auto end = DecodeMessage(kEnd, Empty());
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  const auto& e = std::get<MicrobatchEnd>((*end)[0]);
  EXPECT_EQ(e.range, (BlockRange{100, 102}));
  EXPECT_EQ(nlohmann::json::parse(e.cursor)["anvil"]["block_number"], 102);

  auto data = DecodeMessage(R"({"range":{"start":5,"end":9},"kind":"data"})", Empty());
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(std::get<Data>((*data)[0]).range, (BlockRange{5, 9}));
  EXPECT_EQ(EventName((*data)[0]), std::string("Data"));

  auto bc = DecodeMessage(R"({"kind":"block_complete","block_complete":{"start":7,"end":8}})",
                          Empty());
  ASSERT_TRUE(bc.ok());
  EXPECT_EQ(std::get<BlockComplete>((*bc)[0]).start, 7u);
  EXPECT_EQ(std::get<BlockComplete>((*bc)[0]).end, 8u);

  auto ka = DecodeMessage(R"({"ranges":[],"kind":"keep_alive"})", Empty());
  ASSERT_TRUE(ka.ok());
  EXPECT_TRUE(std::holds_alternative<KeepAlive>((*ka)[0]));
}

TEST(DecodeMessage, ReorgComesBeforeItsMicrobatchStart) {
  std::string reorg = kStart;
  reorg.replace(reorg.find("\"is_reorg\":false"), 16, "\"is_reorg\":true");
  auto events = DecodeMessage(reorg, Empty());
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(std::get<Reorg>((*events)[0]).invalidate_from, 100u);
  EXPECT_TRUE(std::get<MicrobatchStart>((*events)[1]).is_reorg);
}

TEST(DecodeMessage, UnknownKindsGiveNoEventMalformedOnesAnError) {
  auto later = DecodeMessage(R"({"kind":"something_new"})", Empty());
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->empty());
  auto batch_end = DecodeMessage(R"({"kind":"end","ranges_complete":true})", Empty());
  ASSERT_TRUE(batch_end.ok());
  EXPECT_TRUE(batch_end->empty());
  EXPECT_TRUE(DecodeMessage("not json", Empty()).status().IsInvalid());
  EXPECT_TRUE(DecodeMessage(R"({"kind":"microbatch_end","range":{"start":1,"end":2}})", Empty())
                  .status()
                  .IsInvalid());  // no cursor
  EXPECT_TRUE(DecodeMessage(R"({"kind":"data"})", Empty()).status().IsInvalid());  // no range
}

class FileCursorStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice_client_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FileCursorStoreTest, SavesAndLoadsAtomically) {
  FileCursorStore store((dir_ / "c.json").string());
  auto none = store.Load();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  const std::string cursor = R"({"anvil":{"block_number":7,"hash":"0x01"}})";
  ASSERT_TRUE(store.Save(cursor).ok());
  auto back = store.Load();
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(nlohmann::json::parse(**back), nlohmann::json::parse(cursor));
  ASSERT_TRUE(store.Save(R"({"anvil":{"block_number":8,"hash":"0x02"}})").ok());
  EXPECT_EQ(nlohmann::json::parse(**store.Load())["anvil"]["block_number"], 8);
  // Only the cursor file: no temporary file left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(FileCursorStoreTest, RefusesWhatIsNotACursor) {
  FileCursorStore store((dir_ / "c.json").string());
  EXPECT_TRUE(store.Save("[1, 2]").IsInvalid());
  EXPECT_TRUE(store.Save("{").IsInvalid());
  std::ofstream(dir_ / "c.json") << "garbage";
  EXPECT_TRUE(store.Load().status().IsInvalid());
  std::ofstream(dir_ / "c.json") << "  \n";
  auto blank = store.Load();
  ASSERT_TRUE(blank.ok());
  EXPECT_FALSE(blank->has_value());
  FileCursorStore nowhere((dir_ / "no" / "such" / "dir" / "c.json").string());
  EXPECT_TRUE(nowhere.Save(R"({"anvil":{"block_number":1}})").IsIOError());
}

// A port nothing listens on: bound, then closed.
int DeadPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(Client, RefusesBadOptionsBeforeAnyCall) {
  ClientOptions bad_url;
  bad_url.flight_url = "not a url";
  EXPECT_TRUE(Client::Connect(bad_url).status().IsInvalid());
  ClientOptions options;
  options.flight_url = "grpc://127.0.0.1:" + std::to_string(DeadPort());
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();  // gRPC connects lazily
  for (int64_t bad : {int64_t{-1}, kMaxFetchSize + 1}) {
    QueryOptions q;
    q.fetch_size = bad;
    auto r = (*client)->Query("SELECT 1", q);
    EXPECT_TRUE(r.status().IsInvalid()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("fetch_size"), std::string::npos);
    StreamOptions s;
    s.fetch_size = bad;
    EXPECT_TRUE((*client)->Stream("SELECT 1", s).status().IsInvalid());
  }
  QueryOptions q;
  q.max_pages = -2;
  EXPECT_TRUE((*client)->Query("SELECT 1", q).status().IsInvalid());
  QueryOptions both;
  both.parameters = {arrow::MakeScalar(int64_t{1})};
  ASSERT_TRUE(arrow::RecordBatch::MakeEmpty(arrow::schema({})).ok());
  both.parameter_batch = *arrow::RecordBatch::MakeEmpty(arrow::schema({}));
  EXPECT_TRUE((*client)->Query("SELECT ?", both).status().IsInvalid());
}

TEST(Client, NoServerIsUnavailable) {
  ClientOptions options;
  options.flight_url = "grpc://127.0.0.1:" + std::to_string(DeadPort());
  options.timeout = std::chrono::seconds(20);
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Query("SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsUnavailable(r.status())) << r.status().ToString();
  EXPECT_FALSE(IsTimedOut(r.status()));
}

TEST(Client, CursorFileThatIsNotACursorIsRefused) {
  auto path = fs::temp_directory_path() / ("sluice_bad_cursor_" + std::to_string(::getpid()));
  std::ofstream(path) << "[not, a, cursor";
  ClientOptions options;
  options.flight_url = "grpc://127.0.0.1:" + std::to_string(DeadPort());
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok());
  StreamOptions s;
  s.cursor_file = path.string();
  auto r = (*client)->Stream("SELECT * FROM eth_rpc.blocks", s);
  EXPECT_TRUE(r.status().IsInvalid()) << r.status().ToString();
  fs::remove(path);
}

}  // namespace
}  // namespace sluice::client
