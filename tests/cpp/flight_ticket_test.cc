#include <thread>

#include "flight/command.h"
#include "flight/ticket.h"
#include "gtest/gtest.h"

namespace sluice::flight {

TEST(TicketSigner, RoundTrip) {
  auto signer = *TicketSigner::Make("", std::chrono::seconds(60));
  TicketPayload p;
  p.sql = "SELECT 'ünïcode', \"x\" FROM eth_rpc.blocks";
  p.stream = true;
  p.resume = R"({"anvil":{"block_number":5,"hash":"0x00"}})";
  auto t = signer.Issue(p);
  auto back = signer.Redeem(t);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->sql, p.sql);
  EXPECT_TRUE(back->stream);
  EXPECT_EQ(back->resume, p.resume);
}

TEST(TicketSigner, CarriesTheFetchSize) {
  auto signer = *TicketSigner::Make("", std::chrono::seconds(60));
  TicketPayload p;
  p.sql = "SELECT 1";
  auto plain = signer.Redeem(signer.Issue(p));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->rows_per_batch, 0);  // no sluice-fetch-size: the server's default
  p.rows_per_batch = 1000;
  auto sized = signer.Redeem(signer.Issue(p));
  ASSERT_TRUE(sized.ok()) << sized.status().ToString();
  EXPECT_EQ(sized->rows_per_batch, 1000);
}

TEST(TicketSigner, RejectsEveryAlteredByte) {
  auto signer = *TicketSigner::Make("", std::chrono::seconds(60));
  TicketPayload p;
  p.sql = "SELECT 1";
  auto t = signer.Issue(p);
  for (size_t i = 0; i < t.size(); ++i) {
    std::string bad = t;
    bad[i] ^= 0x01;
    auto r = signer.Redeem(bad);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_TRUE(r.status().IsInvalid());
  }
  EXPECT_FALSE(signer.Redeem("").ok());
  EXPECT_FALSE(signer.Redeem("SELECT 1").ok());
  EXPECT_FALSE(signer.Redeem(t.substr(0, t.size() - 1)).ok());
}

TEST(TicketSigner, OtherKeyRejected) {
  auto a = *TicketSigner::Make("", std::chrono::seconds(60));
  auto b = *TicketSigner::Make("", std::chrono::seconds(60));
  TicketPayload p;
  p.sql = "SELECT 1";
  EXPECT_FALSE(b.Redeem(a.Issue(p)).ok());
  // A shared configured key lets two servers redeem each other's tickets.
  auto c = *TicketSigner::Make("00112233445566778899aabbccddeeff", std::chrono::seconds(60));
  auto d = *TicketSigner::Make("00112233445566778899aabbccddeeff", std::chrono::seconds(60));
  EXPECT_TRUE(d.Redeem(c.Issue(p)).ok());
  EXPECT_FALSE(TicketSigner::Make("abcd", std::chrono::seconds(60)).ok());
  EXPECT_FALSE(TicketSigner::Make("zz112233445566778899aabbccddeeff", std::chrono::seconds(60)).ok());
}

TEST(TicketSigner, Expires) {
  auto signer = *TicketSigner::Make("", std::chrono::seconds(1));
  TicketPayload p;
  p.sql = "SELECT 1";
  auto t = signer.Issue(p);
  ASSERT_TRUE(signer.Redeem(t).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto r = signer.Redeem(t);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expired"), std::string::npos);
}

TEST(Command, PlainSql) {
  EXPECT_EQ(*SqlFromCommand("SELECT 1"), "SELECT 1");
  // Text starting with a newline (protobuf tag 1, length-delimited) is still SQL.
  EXPECT_EQ(*SqlFromCommand("\nSELECT 1"), "\nSELECT 1");
  EXPECT_FALSE(SqlFromCommand(std::string("\xff\xfe", 2)).ok());
}

TEST(Command, FlightSqlStatementQuery) {
  // Bytes as protoc encodes Any{type_url, value=CommandStatementQuery{query:"SELECT 1"}}.
  std::string inner = std::string("\x0a\x08", 2) + "SELECT 1";
  std::string url(kCommandStatementQueryType);
  std::string any = std::string("\x0a", 1) + static_cast<char>(url.size()) + url +
                    std::string("\x12", 1) + static_cast<char>(inner.size()) + inner;
  EXPECT_EQ(any, EncodeCommandStatementQuery("SELECT 1"));
  EXPECT_EQ(*SqlFromCommand(any), "SELECT 1");
  std::string long_sql(1000, 'x');
  EXPECT_EQ(*SqlFromCommand(EncodeCommandStatementQuery(long_sql)), long_sql);
}

TEST(Command, OtherFlightSqlCommandNamed) {
  std::string url = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementUpdate";
  std::string any = std::string("\x0a", 1) + static_cast<char>(url.size()) + url;
  auto r = SqlFromCommand(any);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CommandStatementUpdate"), std::string::npos);
}

}  // namespace sluice::flight
