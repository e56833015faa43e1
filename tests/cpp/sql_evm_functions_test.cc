// evm_abi (Keccak-256, signatures, ABI decoding) and the SQL functions evm_topic /
// evm_decode_log, run through a real in-memory DuckDB. Expected values are public
// constants (Keccak vectors, ERC-20 topics), hand ABI-encoded words (values computed
// independently, e.g. 2^255+7 in decimal), and the arguments of real transactions
// on a real anvil node.
#include <cctype>
#include <cstdlib>
#include <map>

#include "anvil_fixture.h"
#include "common/hex.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sql/duckdb_handles.h"
#include "sql/evm_abi.h"
#include "sql/evm_functions.h"
#include "sql/sandbox.h"

namespace sluice::sql {
namespace {

std::string Hex(const Hash32& h) { return common::ToHex(h.data(), h.size()).substr(2); }

// ---- hand ABI encoding ----------------------------------------------------------

// One 32-byte word (64 hex digits), left-padded with zeros.
std::string W(const std::string& hex) { return std::string(64 - hex.size(), '0') + hex; }
// One word, right-padded with zeros (bytesN, the tail of string/bytes).
std::string R(const std::string& hex) { return hex + std::string((64 - hex.size() % 64) % 64, '0'); }
std::string Hex(std::string_view text) { return common::ToHex(text).substr(2); }

const std::string kFrom = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const std::string kTo = "70997970c51812dc3a010c7d01b50e0d17dc79c8";

// ---- an in-memory DuckDB with the functions registered ---------------------------

using Row = std::vector<std::optional<std::string>>;

class Db {
 public:
  Db() {
    EXPECT_EQ(duckdb_open(nullptr, db_.out()), DuckDBSuccess);
    conn_ = Connect();
    auto st = RegisterEvmFunctions(conn_.get());
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  Connection Connect() {
    Connection c;
    EXPECT_EQ(duckdb_connect(db_.get(), c.out()), DuckDBSuccess);
    return c;
  }
  duckdb_connection conn() { return conn_.get(); }

  /// All rows, every value as DuckDB's VARCHAR cast (NULL -> nullopt).
  static arrow::Result<std::vector<Row>> Rows(duckdb_connection conn, const std::string& sql) {
    Result res;
    if (duckdb_query(conn, sql.c_str(), res.out()) != DuckDBSuccess) {
      return ResultStatus(res.out());
    }
    std::vector<Row> rows;
    for (idx_t r = 0; r < duckdb_row_count(res.out()); ++r) {
      Row row;
      for (idx_t c = 0; c < duckdb_column_count(res.out()); ++c) {
        if (duckdb_value_is_null(res.out(), c, r)) {
          row.push_back(std::nullopt);
        } else {
          char* v = duckdb_value_varchar(res.out(), c, r);
          row.push_back(std::string(v));
          duckdb_free(v);
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }
  arrow::Result<std::vector<Row>> Rows(const std::string& sql) { return Rows(conn(), sql); }

  /// The one value of a one-row, one-column query.
  std::optional<std::string> One(const std::string& sql) {
    auto rows = Rows(sql);
    EXPECT_TRUE(rows.ok()) << sql << ": " << rows.status().ToString();
    if (!rows.ok() || rows->size() != 1 || (*rows)[0].size() != 1) {
      ADD_FAILURE() << sql << ": expected one value";
      return std::nullopt;
    }
    return (*rows)[0][0];
  }

  /// evm_decode_log over hex topics (empty: NULL) and hex data, parsed as JSON
  /// (null when SQL NULL).
  nlohmann::json Decode(const std::string& signature, const std::vector<std::string>& topics,
                        const std::string& data) {
    std::string sql = "SELECT evm_decode_log(";
    for (size_t i = 0; i < 3; ++i) {
      std::string t = i < topics.size() ? topics[i] : "";
      sql += t.empty() ? "NULL, " : "from_hex('" + t + "'), ";
    }
    sql += "from_hex('" + data + "'), '" + signature + "')";
    auto v = One(sql);
    return v ? nlohmann::json::parse(*v) : nlohmann::json();
  }

 private:
  Database db_;
  Connection conn_;
};

// ---- evm_abi ---------------------------------------------------------------------

TEST(EvmFunctions, KeccakKnownVectors) {
  EXPECT_EQ(Hex(Keccak256("")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  EXPECT_EQ(Hex(Keccak256("abc")),
            "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
  EXPECT_EQ(Hex(Keccak256("Transfer(address,address,uint256)")),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  EXPECT_EQ(Hex(Keccak256("Approval(address,address,uint256)")),
            "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");
  // Not FIPS-202 SHA3-256, whose hash of "" is a7ffc6f8…f8434a.
  EXPECT_NE(Hex(Keccak256("")).substr(0, 8), "a7ffc6f8");
}

TEST(EvmFunctions, ParseSignatures) {
  auto full = ParseEventSignature(
      "Transfer(address indexed from, address indexed to, uint256 value)");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->name, "Transfer");
  ASSERT_EQ(full->params.size(), 3u);
  EXPECT_EQ(full->params[0].name, "from");
  EXPECT_TRUE(full->params[0].indexed);
  EXPECT_EQ(full->params[2].name, "value");
  EXPECT_FALSE(full->params[2].indexed);
  EXPECT_EQ(full->indexed_count(), 2);
  EXPECT_EQ(full->Canonical(), "Transfer(address,address,uint256)");
  EXPECT_EQ(Hex(full->Topic0()),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

  auto bare = ParseEventSignature("  event Approval( address indexed , address\tindexed,uint ) ; ");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(bare->Canonical(), "Approval(address,address,uint256)");
  EXPECT_EQ(bare->params[0].name, "arg0");
  EXPECT_EQ(bare->params[2].name, "arg2");
  EXPECT_EQ(Hex(bare->Topic0()),
            "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");

  auto types = ParseEventSignature("E(int x, uint8 a, int24, bytes1 b, bytes32, bytes, string s, bool)");
  ASSERT_TRUE(types.ok()) << types.status().ToString();
  EXPECT_EQ(types->Canonical(), "E(int256,uint8,int24,bytes1,bytes32,bytes,string,bool)");
  EXPECT_TRUE(ParseEventSignature("Paused()").ok());

  for (const char* bad :
       {"", "Transfer", "Transfer(address,address,uint256", "(uint256)", "1x(uint256)",
        "E(uint7)", "E(uint264)", "E(uint008)", "E(bytes0)", "E(bytes33)", "E(uint256[])",
        "E((uint256,bool))", "E(fixed128x18)", "E(foo)", "E(uint256,)",
        "E(uint256 a b c)", "E(uint256 a, uint256 A)", "E(uint256 arg1, uint256)",
        "E(uint8 indexed, uint8 indexed, uint8 indexed, uint8 indexed)"}) {
    EXPECT_FALSE(ParseEventSignature(bad).ok()) << bad;
  }
  auto arr = ParseEventSignature("E(uint256[] xs)");
  EXPECT_NE(arr.status().message().find("array"), std::string::npos) << arr.status().ToString();
}

std::optional<std::vector<AbiValue>> DecodeHex(const std::string& signature,
                                               std::vector<std::string> topics,
                                               const std::string& data) {
  auto sig = ParseEventSignature(signature);
  EXPECT_TRUE(sig.ok()) << sig.status().ToString();
  std::vector<std::vector<uint8_t>> tb;
  for (auto& t : topics) tb.push_back(*common::FromHex(t));
  std::array<std::optional<ByteSpan>, 3> spans;
  for (size_t i = 0; i < tb.size(); ++i) spans[i] = ByteSpan(tb[i]);
  auto d = *common::FromHex(data);
  return DecodeEventLog(*sig, spans, ByteSpan(d));
}

TEST(EvmFunctions, DecodeValuesInCpp) {
  auto v = DecodeHex("E(uint64 indexed a, int8 b, uint72 c, int64 d, bytes2 e)", {W("ffffffffffffffff")},
                     std::string(62, 'f') + "fb" + W("ffffffffffffffffff") +
                         std::string(48, 'f') + "8000000000000000" + R("abcd"));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(std::get<uint64_t>((*v)[0]), UINT64_MAX);
  EXPECT_EQ(std::get<int64_t>((*v)[1]), -5);
  EXPECT_EQ(std::get<AbiDecimal>((*v)[2]).digits, "4722366482869645213695");  // 2^72-1
  EXPECT_EQ(std::get<int64_t>((*v)[3]), INT64_MIN);
  EXPECT_EQ(std::get<AbiBytes>((*v)[4]), (AbiBytes{0xab, 0xcd}));
  // Indexed string: the topic (its hash) comes back as 32 bytes.
  auto s = DecodeHex("E(string indexed s)", {W("1234")}, "");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(std::get<AbiBytes>((*s)[0]).size(), 32u);
  // Empty data and no parameters.
  EXPECT_TRUE(DecodeHex("Paused()", {}, "").has_value());
}

TEST(EvmFunctions, Utf8Validation) {
  auto ok = [](std::string_view s) {
    return IsValidUtf8(ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  EXPECT_TRUE(ok("plain"));
  EXPECT_TRUE(ok("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(ok("\xc3"));                                   // truncated
  EXPECT_FALSE(ok("\xc0\xaf"));                               // overlong '/'
  EXPECT_FALSE(ok("\xed\xa0\x80"));                           // surrogate U+D800
  EXPECT_FALSE(ok("\xf4\x90\x80\x80"));                       // above U+10FFFF
  EXPECT_FALSE(ok("\xff"));
}

// ---- SQL: evm_topic ------------------------------------------------------------------

TEST(EvmFunctions, SqlTopic) {
  Db db;
  EXPECT_EQ(db.One("SELECT lower(hex(evm_topic('Transfer(address,address,uint256)')))"),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  EXPECT_EQ(db.One("SELECT lower(hex(evm_topic('Transfer(address indexed from, address indexed "
                   "to, uint value)')))"),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  EXPECT_EQ(db.One("SELECT typeof(evm_topic('Approval(address,address,uint256)'))"), "BLOB");
  EXPECT_EQ(db.One("SELECT octet_length(evm_topic('Approval(address,address,uint256)'))"), "32");
  EXPECT_EQ(db.One("SELECT evm_topic(NULL)"), std::nullopt);
  // A column of signatures: computed per row, NULL rows stay NULL.
  auto rows = db.Rows(
      "SELECT lower(hex(evm_topic(s))) FROM (VALUES ('Approval(address,address,uint256)'), "
      "(NULL), ('Transfer(address,address,uint256)')) t(s)");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0][0], "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");
  EXPECT_EQ((*rows)[1][0], std::nullopt);
  EXPECT_EQ((*rows)[2][0], "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  // Invalid signatures are errors, constant or not.
  auto bad = db.Rows("SELECT evm_topic('Transfer(address,address,uint256[])')");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("evm_topic"), std::string::npos) << bad.status().ToString();
  EXPECT_FALSE(db.Rows("SELECT evm_topic(s) FROM (VALUES ('nope')) t(s)").ok());
}

// ---- SQL: evm_decode_log -------------------------------------------------------------

TEST(EvmFunctions, SqlDecodeErc20Transfer) {
  Db db;
  // 1,000,000 tokens of 18 decimals = 10^24 = 0xd3c21bcecceda1000000.
  std::string t1 = W(kFrom), t2 = W(kTo), data = W("d3c21bcecceda1000000");
  auto j = db.Decode("Transfer(address indexed from, address indexed to, uint256 value)", {t1, t2},
                     data);
  EXPECT_EQ(j, nlohmann::json::parse(R"({"from":"0x)" + kFrom + R"(","to":"0x)" + kTo +
                                     R"(","value":"1000000000000000000000000"})"));
  // Field access and exact numbers through DuckDB's JSON operators.
  std::string call = "evm_decode_log(from_hex('" + t1 + "'), from_hex('" + t2 + "'), NULL, from_hex('" +
                     data + "'), 'Transfer(address indexed from, address indexed to, uint256 value)')";
  EXPECT_EQ(db.One("SELECT typeof(" + call + ")"), "VARCHAR");
  EXPECT_EQ(db.One("SELECT (" + call + "->>'value')::UHUGEINT = 1000000000000000000000000::UHUGEINT"),
            "true");
  EXPECT_EQ(db.One("SELECT " + call + "->>'to'"), "0x" + kTo);
  // Unnamed parameters are arg0, arg1, …
  auto u = db.Decode("Transfer(address indexed,address indexed,uint256)", {t1, t2}, data);
  EXPECT_EQ(u["arg2"], "1000000000000000000000000");
  EXPECT_EQ(u["arg0"], "0x" + kFrom);
  // The same log read as an ERC-721 Transfer does not match (no topic3, data left over
  // is fine but the topic is required) -> NULL.
  EXPECT_TRUE(db.Decode("Transfer(address indexed from, address indexed to, uint256 indexed tokenId)",
                        {t1, t2}, data)
                  .is_null());
  // An ERC-721 log (tokenId in topic3, no data) read as ERC-20 -> NULL (extra topic,
  // short data); as ERC-721 -> decoded.
  EXPECT_TRUE(db.Decode("Transfer(address indexed from, address indexed to, uint256 value)",
                        {t1, t2, W("2a")}, "")
                  .is_null());
  auto nft = db.Decode("Transfer(address indexed from, address indexed to, uint256 indexed tokenId)",
                       {t1, t2, W("2a")}, "");
  EXPECT_EQ(nft["tokenId"], "42");
}

TEST(EvmFunctions, SqlDecodeIntegers) {
  Db db;
  std::string data = W("8000000000000000000000000000000000000000000000000000000000000007") +  // 2^255+7
                     std::string(64, 'f') +                                                 // -1
                     W("8000000000000000000000000000000000000000000000000000000000000000") +  // -2^255
                     W("ffffffffffffffffffffffffffffffff") +                                // 2^128-1
                     "ffffffffffffffffffffffffffffffff80000000000000000000000000000000" +  // -2^127
                     W("ffffffffffffffff") +                                                // 2^64-1
                     std::string(62, 'f') + "fb" +                                          // -5
                     W("0");
  auto j = db.Decode(
      "Numbers(uint256 big, int256 minus_one, int256 min, uint128 u128, int128 i128, uint64 u64, "
      "int8 i8, uint zero)",
      {}, data);
  EXPECT_EQ(j["big"], "57896044618658097711785492504343953926634992332820282019728792003956564819975");
  EXPECT_EQ(j["minus_one"], "-1");
  EXPECT_EQ(j["min"], "-57896044618658097711785492504343953926634992332820282019728792003956564819968");
  EXPECT_EQ(j["u128"], "340282366920938463463374607431768211455");
  EXPECT_EQ(j["i128"], "-170141183460469231731687303715884105728");
  EXPECT_EQ(j["u64"], "18446744073709551615");
  EXPECT_EQ(j["i8"], "-5");
  EXPECT_EQ(j["zero"], "0");
  // uint256 max, indexed.
  auto m = db.Decode("Max(uint256 indexed x)", {std::string(64, 'f')}, "");
  EXPECT_EQ(m["x"], "115792089237316195423570985008687907853269984665640564039457584007913129639935");
}

TEST(EvmFunctions, SqlDecodeDynamicAndBytes) {
  Db db;
  // Head: bool, string (offset 0x80), bytes (offset 0xc0), bytes4. Tail: "héllo", 3 bytes.
  std::string text = "h\xc3\xa9llo \"q\"\n";
  std::string data = W("1") + W("80") + W("c0") + R("deadbeef") +  //
                     W(common::ToHex(std::string(1, static_cast<char>(text.size()))).substr(2)) +
                     R(Hex(text)) + W("3") + R("010203");
  auto j = db.Decode("Mixed(bool flag, string memo, bytes payload, bytes4 tag)", {}, data);
  EXPECT_EQ(j["flag"], true);
  EXPECT_EQ(j["memo"], text);
  EXPECT_EQ(j["payload"], "0x010203");
  EXPECT_EQ(j["tag"], "0xdeadbeef");
  // Empty string / bytes: length 0.
  auto e = db.Decode("E(string s, bytes b)", {}, W("40") + W("60") + W("0") + W("0"));
  EXPECT_EQ(e["s"], "");
  EXPECT_EQ(e["b"], "0x");
  // Indexed string: the topic holds keccak256(value); it comes back as the 32 bytes.
  std::string hash = Hex(Keccak256("sluice"));
  auto ix = db.Decode("Named(string indexed name, bool ok)", {hash}, W("0"));
  EXPECT_EQ(ix["name"], "0x" + hash);
  EXPECT_EQ(ix["ok"], false);
  // Invalid UTF-8 in a string: that field is null, the row is not.
  auto bad = db.Decode("E(string s, uint8 n)", {}, W("40") + W("7") + W("2") + R("c328"));
  ASSERT_TRUE(bad.is_object());
  EXPECT_TRUE(bad["s"].is_null());
  EXPECT_EQ(bad["n"], "7");
}

TEST(EvmFunctions, SqlMalformedIsNull) {
  Db db;
  const std::string erc20 = "Transfer(address indexed from, address indexed to, uint256 value)";
  std::string t1 = W(kFrom), t2 = W(kTo);
  EXPECT_TRUE(db.Decode(erc20, {t1, t2}, W("5")).is_object());  // control: decodes
  EXPECT_TRUE(db.Decode(erc20, {t1, t2}, W("5").substr(0, 62)).is_null());  // 31 bytes of data
  EXPECT_TRUE(db.Decode(erc20, {t1, t2}, "").is_null());                    // no data
  EXPECT_TRUE(db.Decode(erc20, {t1}, W("5")).is_null());                    // missing topic2
  EXPECT_TRUE(db.Decode(erc20, {t1, t2.substr(0, 62)}, W("5")).is_null());  // 31-byte topic
  EXPECT_TRUE(db.Decode(erc20, {t1, t2, W("1")}, W("5")).is_null());        // extra topic3
  EXPECT_TRUE(db.Decode(erc20, {"01" + t1.substr(2), t2}, W("5")).is_null());  // dirty address
  EXPECT_TRUE(db.Decode("E(bool b)", {}, W("2")).is_null());                // bool 2
  EXPECT_TRUE(db.Decode("E(uint8 x)", {}, W("100")).is_null());             // 256 in uint8
  EXPECT_TRUE(db.Decode("E(int8 x)", {}, W("80")).is_null());               // not sign-extended
  EXPECT_TRUE(db.Decode("E(bytes2 x)", {}, W("1")).is_null());              // dirty bytes2 padding
  // Dynamic values pointing outside the data.
  EXPECT_TRUE(db.Decode("E(bytes b)", {}, W("20")).is_null());             // no length word
  EXPECT_TRUE(db.Decode("E(bytes b)", {}, W("20") + W("21") + R("00")).is_null());  // length > rest
  EXPECT_TRUE(db.Decode("E(bytes b)", {}, W("40")).is_null());             // offset past end
  EXPECT_TRUE(db.Decode("E(bytes b)", {}, std::string(64, 'f')).is_null());  // huge offset
  EXPECT_TRUE(
      db.Decode("E(bytes b)", {}, W("20") + "00000000000000000000000000000000000000000000000100000000"
                                            "00000000")
          .is_null());  // length >= 2^64
  EXPECT_TRUE(db.Decode("E(bytes b)", {}, W("20") + W("ffffffffffffffff")).is_null());
  // A length that reaches exactly the end is fine (no padding required).
  EXPECT_EQ(db.Decode("E(bytes b)", {}, W("20") + W("2") + "abcd")["b"], "0xabcd");
  // NULL data where the event needs none is fine.
  EXPECT_EQ(db.One("SELECT evm_decode_log(from_hex('" + W("7") +
                   "'), NULL, NULL, NULL, 'E(uint8 indexed x)')->>'x'"),
            "7");
}

TEST(EvmFunctions, SqlManyRowsMixed) {
  // More rows than one DuckDB vector (2048), valid and malformed interleaved.
  Db db;
  auto rows = db.Rows(
      "SELECT count(*), count(d), sum((d->>'v')::UBIGINT) FROM (SELECT evm_decode_log("
      "CASE WHEN i % 3 = 0 THEN NULL ELSE from_hex(lpad(printf('%x', i), 64, '0')) END, NULL, NULL, "
      "from_hex(lpad('1', 64, '0')), 'E(uint64 indexed v, bool b)') AS d FROM range(5000) t(i))");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  // Rows with i % 3 == 0 lack topic1 -> NULL; the others decode v = i.
  uint64_t expect_count = 0, expect_sum = 0;
  for (uint64_t i = 0; i < 5000; ++i) {
    if (i % 3 != 0) {
      ++expect_count;
      expect_sum += i;
    }
  }
  EXPECT_EQ((*rows)[0][0], "5000");
  EXPECT_EQ((*rows)[0][1], std::to_string(expect_count));
  EXPECT_EQ((*rows)[0][2], std::to_string(expect_sum));
}

TEST(EvmFunctions, SqlSignatureMustBeConstant) {
  Db db;
  auto r = db.Rows(
      "SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), s) FROM (VALUES ('Paused()')) t(s)");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("must be a constant"), std::string::npos)
      << r.status().ToString();
  EXPECT_TRUE(r.status().IsInvalid()) << r.status().ToString();
  auto n = db.Rows("SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), NULL)");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("must not be NULL"), std::string::npos);
  auto bad = db.Rows("SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), 'E(uint256[] x)')");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not supported"), std::string::npos)
      << bad.status().ToString();
  // A constant expression is fine.
  EXPECT_EQ(db.One("SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), 'Pau' || 'sed()')"),
            "{}");
  // A prepared statement's parameter is not constant at bind.
  PreparedStatement stmt;
  EXPECT_NE(duckdb_prepare(db.conn(),
                           "SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), ?::VARCHAR)",
                           stmt.out()),
            DuckDBSuccess);
}

TEST(EvmFunctions, RegisteredOncePerDatabase) {
  Db db;
  // Visible from a second connection of the same database.
  Connection other = db.Connect();
  auto rows = Db::Rows(other.get(), "SELECT octet_length(evm_topic('Paused()'))");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], "32");
  // A second registration in the same database is refused.
  EXPECT_FALSE(RegisterEvmFunctions(other.get()).ok());
  // Still usable once the configuration is locked down as the engine does it.
  ASSERT_TRUE(db.Rows("SET enable_external_access = false; SET lock_configuration = true").ok());
  Connection third = db.Connect();
  rows = Db::Rows(third.get(), "SELECT evm_decode_log(NULL, NULL, NULL, NULL, 'Paused()')");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], "{}");
}

TEST(EvmFunctions, SubqueryArguments) {
  // A scalar subquery is not a constant at bind: evm_topic computes it per row,
  // evm_decode_log refuses it with its usual message.
  Db db;
  EXPECT_EQ(db.One("SELECT lower(hex(evm_topic((SELECT 'Transfer(address,address,uint256)'))))"),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  auto decoded = db.Rows("SELECT evm_decode_log(NULL, NULL, NULL, NULL, (SELECT 'Paused()'))");
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("must be a constant"), std::string::npos)
      << decoded.status().ToString();
}

TEST(EvmFunctions, SandboxAcceptsThem) {
  // The engine's sandbox (sql/sandbox.h) passes queries using the functions.
  Db db;
  auto tree = ParseTree(db.conn(),
                        "SELECT evm_decode_log(topic1, topic2, topic3, data, 'Transfer(address indexed "
                        "from, address indexed to, uint256 value)')->>'value' FROM eth_rpc.logs "
                        "WHERE topic0 = evm_topic('Transfer(address,address,uint256)')");
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_TRUE(CheckTableFunctions(*tree).ok());
}

// ---- real logs from a real node ---------------------------------------------------

// Decimal of a big-endian hex number (long multiplication on decimal digits).
std::string HexToDecimal(std::string_view hex) {
  std::vector<int> digits = {0};  // least significant first
  for (char c : hex) {
    int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    int carry = v;
    for (auto& d : digits) {
      int x = d * 16 + carry;
      d = x % 10;
      carry = x / 10;
    }
    while (carry) {
      digits.push_back(carry % 10);
      carry /= 10;
    }
  }
  while (digits.size() > 1 && digits.back() == 0) digits.pop_back();
  std::string out;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(static_cast<char>('0' + *it));
  return out;
}

TEST(EvmFunctions, RealErc20AndErc721TransferLogs) {
  std::string err;
  auto anvil = testing::Anvil::Start({"--no-mining"}, &err);
  ASSERT_NE(anvil, nullptr) << err;
  auto src = testing::SourceDir();
  std::string cmd = (src / ".venv" / "bin" / "python").string() + " " +
                    (src / "demo" / "traffic.py").string() + " --rpc-url " + anvil->url() +
                    " --mine --blocks 3 --interval 0 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto& rpc = anvil->rpc();

  // The logs into a DuckDB table, as the chain tables hold them (BLOB topics/data).
  Db db;
  ASSERT_TRUE(Db::Rows(db.conn(),
                       "CREATE TABLE logs (block_num UBIGINT, log_index UBIGINT, topic0 BLOB, "
                       "topic1 BLOB, topic2 BLOB, topic3 BLOB, data BLOB)")
                  .ok());
  struct Expected {
    nlohmann::json fields;  // what the tx arguments say
    std::string kind;       // "erc20", "erc721", "approval"
  };
  std::map<std::pair<uint64_t, uint64_t>, Expected> expected;
  const std::string kZero = "0x" + std::string(40, '0');
  auto arg_addr = [](const std::string& input, int i) {
    return "0x" + input.substr(10 + 64 * i + 24, 40);
  };
  auto arg_uint = [](const std::string& input, int i) {
    return HexToDecimal(input.substr(10 + 64 * i, 64));
  };
  uint64_t head = rpc.BlockNumber();
  int nft_mints_checked = 0;
  for (uint64_t b = 1; b <= head; ++b) {
    auto block = rpc.Block(b, true);
    std::map<std::string, nlohmann::json> txs;
    for (auto& tx : block["transactions"]) txs[tx["hash"]] = tx;
    for (auto& receipt : rpc.Call("eth_getBlockReceipts", {testing::JsonRpc::Q(b)})) {
      if (receipt["status"] != "0x1") continue;
      const auto& tx = txs[receipt["transactionHash"]];
      std::string input = tx["input"];
      std::string from = tx["from"];
      for (auto& c : from) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string selector = input.size() >= 10 ? input.substr(2, 8) : "";
      for (auto& log : receipt["logs"]) {
        const auto& topics = log["topics"];
        std::string values = std::to_string(b) + ", " +
                             std::to_string(testing::JsonRpc::Hex(log["logIndex"]));
        for (size_t i = 0; i < 4; ++i) {
          values += i < topics.size()
                        ? ", from_hex('" + topics[i].get<std::string>().substr(2) + "')"
                        : ", NULL";
        }
        values += ", from_hex('" + log["data"].get<std::string>().substr(2) + "')";
        ASSERT_TRUE(Db::Rows(db.conn(), "INSERT INTO logs VALUES (" + values + ")").ok());

        Expected e;
        bool nft = topics.size() == 4;
        if (selector == "40c10f19") {  // token.mint(address to, uint256 amount)
          e = {{{"from", kZero}, {"to", arg_addr(input, 0)}, {"value", arg_uint(input, 1)}}, "erc20"};
        } else if (selector == "a9059cbb") {  // token.transfer(address to, uint256 amount)
          e = {{{"from", from}, {"to", arg_addr(input, 0)}, {"value", arg_uint(input, 1)}}, "erc20"};
        } else if (selector == "23b872dd") {  // transferFrom(address from, address to, uint256)
          e = {{{"from", arg_addr(input, 0)},
                {"to", arg_addr(input, 1)},
                {nft ? "tokenId" : "value", arg_uint(input, 2)}},
               nft ? "erc721" : "erc20"};
        } else if (selector == "095ea7b3" && !nft) {  // token.approve(address spender, uint256)
          e = {{{"owner", from}, {"spender", arg_addr(input, 0)}, {"value", arg_uint(input, 1)}},
               "approval"};
        } else if (selector == "6a627842") {  // nft.mint(address to): the id comes from the
          // contract; check it with ownerOf(tokenId) at that block.
          std::string id_word = topics[3].get<std::string>().substr(2);
          auto owner = rpc.Call("eth_call", {{{"to", log["address"]}, {"data", "0x6352211e" + id_word}},
                                             testing::JsonRpc::Q(b)});
          ASSERT_EQ("0x" + owner.get<std::string>().substr(26), arg_addr(input, 0));
          ++nft_mints_checked;
          e = {{{"from", kZero}, {"to", arg_addr(input, 0)}, {"tokenId", HexToDecimal(id_word)}},
               "erc721"};
        } else {
          continue;
        }
        expected[{b, testing::JsonRpc::Hex(log["logIndex"])}] = e;
      }
    }
  }
  ASSERT_GE(expected.size(), 20u);  // setup alone mints 10 SLT and 10 NFTs
  EXPECT_GE(nft_mints_checked, 10);

  auto rows = Db::Rows(
      db.conn(),
      "SELECT block_num, log_index, "
      "evm_decode_log(topic1, topic2, topic3, data, "
      "'Transfer(address indexed from, address indexed to, uint256 value)'), "
      "evm_decode_log(topic1, topic2, topic3, data, "
      "'Transfer(address indexed from, address indexed to, uint256 indexed tokenId)'), "
      "evm_decode_log(topic1, topic2, topic3, data, "
      "'Approval(address indexed owner, address indexed spender, uint256 value)'), "
      "topic0 = evm_topic('Transfer(address,address,uint256)') "
      "FROM logs WHERE topic0 IN (evm_topic('Transfer(address,address,uint256)'), "
      "evm_topic('Approval(address,address,uint256)')) ORDER BY block_num, log_index");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  size_t matched = 0;
  std::map<std::string, int> kinds;
  for (const auto& row : *rows) {
    auto key = std::make_pair(std::stoull(*row[0]), std::stoull(*row[1]));
    auto it = expected.find(key);
    if (it == expected.end()) continue;  // a log this test has no expectation for
    ++matched;
    const Expected& e = it->second;
    ++kinds[e.kind];
    bool is_transfer = row[5] == "true";
    const auto& erc20 = row[2];
    const auto& erc721 = row[3];
    SCOPED_TRACE("block " + *row[0] + " log " + *row[1] + " " + e.kind);
    if (e.kind == "erc20") {
      ASSERT_TRUE(is_transfer && erc20.has_value());
      EXPECT_EQ(nlohmann::json::parse(*erc20), e.fields);
      EXPECT_FALSE(erc721.has_value());
    } else if (e.kind == "erc721") {
      ASSERT_TRUE(is_transfer && erc721.has_value());
      EXPECT_EQ(nlohmann::json::parse(*erc721), e.fields);
      EXPECT_FALSE(erc20.has_value());
    } else {
      ASSERT_TRUE(!is_transfer && row[4].has_value());
      EXPECT_EQ(nlohmann::json::parse(*row[4]), e.fields);
    }
  }
  EXPECT_EQ(matched, expected.size());
  EXPECT_GE(kinds["erc20"], 10);
  EXPECT_GE(kinds["erc721"], 10);
}

}  // namespace
}  // namespace sluice::sql
