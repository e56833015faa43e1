// The EVM SQL functions (sql/evm_functions.h) run through a real in-memory DuckDB,
// with queries rewritten as the engine does it (sql/evm_rewrite.h). Expected values
// are public constants (ERC-20 topics and selectors), hand ABI-encoded words (values
// computed independently, e.g. 2^255+7 in decimal), and the arguments of real
// transactions on a real anvil node.
#include <cctype>
#include <cstdlib>
#include <map>

#include "anvil_fixture.h"
#include "common/hex.h"
#include "gtest/gtest.h"
#include "sql/duckdb_handles.h"
#include "sql/evm_abi.h"
#include "sql/evm_functions.h"
#include "sql/evm_rewrite.h"
#include "sql/sandbox.h"

namespace sluice::sql {
namespace {

// One 32-byte word (64 hex digits), left-padded / right-padded with zeros.
std::string W(const std::string& hex) { return std::string(64 - hex.size(), '0') + hex; }
std::string R(const std::string& hex) { return hex + std::string((64 - hex.size() % 64) % 64, '0'); }
std::string Ascii(std::string_view text) { return common::ToHex(text).substr(2); }

const std::string kFrom = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const std::string kTo = "70997970c51812dc3a010c7d01b50e0d17dc79c8";
const std::string kErc20 = "Transfer(address indexed from, address indexed to, uint256 value)";

using Row = std::vector<std::optional<std::string>>;

// An in-memory DuckDB with the functions registered; Rows() runs a SELECT through
// the sandbox's parser and the rewrite, as the engine does.
class Db {
 public:
  Db() {
    EXPECT_EQ(duckdb_open(nullptr, db_.out()), DuckDBSuccess);
    conn_ = Connect();
    auto fns = EvmFunctions::Register(conn_.get());
    EXPECT_TRUE(fns.ok()) << fns.status().ToString();
    if (fns.ok()) fns_ = *fns;
  }
  Connection Connect() {
    Connection c;
    EXPECT_EQ(duckdb_connect(db_.get(), c.out()), DuckDBSuccess);
    return c;
  }
  duckdb_connection conn() { return conn_.get(); }
  EvmFunctions* functions() { return fns_.get(); }

  /// A statement as is (DDL, INSERT).
  arrow::Status Exec(const std::string& sql) {
    Result res;
    if (duckdb_query(conn(), sql.c_str(), res.out()) != DuckDBSuccess) return ResultStatus(res.out());
    return arrow::Status::OK();
  }

  /// All rows of a SELECT, every value as DuckDB's VARCHAR cast (NULL -> nullopt).
  arrow::Result<std::vector<Row>> Rows(const std::string& sql) {
    ARROW_ASSIGN_OR_RAISE(auto tree, ParseTree(conn(), sql));
    ARROW_ASSIGN_OR_RAISE(auto rewrite, RewriteEvmCalls(fns_.get(), conn(), sql, tree));
    Result res;
    if (duckdb_query(conn(), rewrite.sql.c_str(), res.out()) != DuckDBSuccess) {
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

  /// The one row of a query.
  Row One(const std::string& sql) {
    auto rows = Rows(sql);
    EXPECT_TRUE(rows.ok()) << sql << ": " << rows.status().ToString();
    if (!rows.ok() || rows->size() != 1) {
      ADD_FAILURE() << sql << ": expected one row";
      return {};
    }
    return (*rows)[0];
  }
  /// The one value of a one-row, one-column query.
  std::optional<std::string> Value(const std::string& sql) {
    Row r = One(sql);
    return r.size() == 1 ? r[0] : std::nullopt;
  }
  /// The error message of a query that must fail.
  std::string Error(const std::string& sql) {
    auto rows = Rows(sql);
    EXPECT_FALSE(rows.ok()) << sql;
    return rows.ok() ? "" : rows.status().message();
  }

 private:
  Database db_;
  Connection conn_;
  std::shared_ptr<EvmFunctions> fns_;
};

std::string Blob(const std::string& hex) { return hex.empty() ? "NULL" : "from_hex('" + hex + "')"; }
std::string Log(const std::vector<std::string>& topics, const std::string& data,
                const std::string& signature) {
  std::string sql = "evm_decode_log(";
  for (size_t i = 0; i < 3; ++i) sql += Blob(i < topics.size() ? topics[i] : "") + ", ";
  return sql + "from_hex('" + data + "'), '" + signature + "')";
}

// ---- evm_topic, hex, shift_units -------------------------------------------------------

TEST(EvmFunctions, Topic) {
  Db db;
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_topic('Transfer(address,address,uint256)')))"),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_topic('" + kErc20 + "')))"),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  EXPECT_EQ(db.Value("SELECT typeof(evm_topic('Approval(address,address,uint256)'))"), "BLOB");
  EXPECT_EQ(db.Value("SELECT evm_topic(NULL)"), std::nullopt);
  auto rows = db.Rows(
      "SELECT lower(hex(evm_topic(s))) FROM (VALUES ('Approval(address,address,uint256)'), "
      "(NULL)) t(s)");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");
  EXPECT_EQ((*rows)[1][0], std::nullopt);
  EXPECT_NE(db.Error("SELECT evm_topic('Transfer(address,uint7)')").find("evm_topic"),
            std::string::npos);
  EXPECT_FALSE(db.Rows("SELECT evm_topic(s) FROM (VALUES ('nope')) t(s)").ok());
  // A scalar subquery is computed per row.
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_topic((SELECT 'Transfer(address,address,uint256)'))))"),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

TEST(EvmFunctions, Hex) {
  Db db;
  Row r = db.One("SELECT evm_encode_hex('0x70997970C51812dc3A010C7d01b50e0d17dc79C8') AS a, "
                 "octet_length(evm_encode_hex('" + W("1") + "')), "
                 "evm_decode_hex(from_hex('" + kTo + "')), evm_decode_hex(NULL), "
                 "evm_encode_hex(NULL), typeof(evm_encode_hex('" + kTo + "'))");
  EXPECT_EQ(r[0], "p\\x99yp\\xC5\\x18\\x12\\xDC:\\x01\\x0C}\\x01\\xB5\\x0E\\x0D\\x17\\xDCy\\xC8");
  EXPECT_EQ(r[1], "32");
  EXPECT_EQ(r[2], "0x" + kTo);
  EXPECT_EQ(r[3], std::nullopt);
  EXPECT_EQ(r[4], std::nullopt);
  EXPECT_EQ(r[5], "BLOB");
  for (const char* bad : {"0x123", "zz997970c51812dc3a010c7d01b50e0d17dc79c8", ""}) {
    EXPECT_NE(db.Error(std::string("SELECT evm_encode_hex('") + bad + "')").find("evm_encode_hex"),
              std::string::npos)
        << bad;
  }
}

TEST(EvmFunctions, ShiftUnits) {
  Db db;
  Row r = db.One(
      "SELECT shift_units('1.5', 18), shift_units('1500000000000000000', -18), "
      "shift_units(1000000::UBIGINT, -6), shift_units(12.50::DECIMAL(10,2), -1), "
      "shift_units(1.25::DOUBLE, 2), shift_units(NULL, 3), shift_units('7', NULL), "
      "shift_units(170141183460469231731687303715884105727::HUGEINT, -38), "
      "shift_units('115792089237316195423570985008687907853269984665640564039457584007913129639935', "
      "-18)");
  EXPECT_EQ(r, (Row{"1500000000000000000", "1.5", "1", "1.25", "125", std::nullopt, std::nullopt,
                    "1.70141183460469231731687303715884105727",
                    "115792089237316195423570985008687907853269984665640564039457.584007913129639935"}));
  EXPECT_NE(db.Error("SELECT shift_units('1.5x', 2)").find("shift_units"), std::string::npos);
  EXPECT_FALSE(db.Rows("SELECT shift_units(true, 2)").ok());
}

// ---- evm_decode_log ------------------------------------------------------------------------

TEST(EvmFunctions, DecodeLogIsAStructNamedBySignature) {
  Db db;
  // 1,000,000 tokens of 18 decimals = 10^24 = 0xd3c21bcecceda1000000.
  std::string call = Log({W(kFrom), W(kTo)}, W("d3c21bcecceda1000000"), kErc20);
  EXPECT_EQ(db.Value("SELECT typeof(" + call + ")"),
            "STRUCT(\"from\" BLOB, \"to\" BLOB, \"value\" VARCHAR)");
  Row r = db.One("SELECT evm_decode_hex(decoded.from), evm_decode_hex(decoded.to), decoded.value, "
                 "decoded.value::HUGEINT = 1000000000000000000000000::HUGEINT FROM (SELECT " +
                 call + " AS decoded)");
  EXPECT_EQ(r, (Row{"0x" + kFrom, "0x" + kTo, "1000000000000000000000000", "true"}));
  // Field access on the call itself, the old name, and JSON operators still work.
  EXPECT_EQ(db.Value("SELECT (" + call + ").value"), "1000000000000000000000000");
  EXPECT_EQ(db.Value("SELECT evm_decode(" + Blob(W(kFrom)) + ", " + Blob(W(kTo)) +
                     ", NULL, from_hex('" + W("5") + "'), '" + kErc20 + "').value"),
            "5");
  EXPECT_EQ(db.Value("SELECT " + call + " ->> 'value'"), "1000000000000000000000000");
  // Unnamed parameters are arg0, arg1, …
  EXPECT_EQ(db.Value("SELECT " +
                     Log({W(kFrom), W(kTo)}, W("5"), "Transfer(address indexed,address indexed,uint256)") +
                     ".arg2"),
            "5");
  // An ERC-721 Transfer (tokenId in topic3, no data) does not fit the ERC-20 event.
  EXPECT_EQ(db.Value("SELECT " + Log({W(kFrom), W(kTo), W("2a")}, "", kErc20) + " IS NULL"), "true");
  EXPECT_EQ(db.Value("SELECT " +
                     Log({W(kFrom), W(kTo), W("2a")}, "",
                         "Transfer(address indexed from, address indexed to, uint256 indexed tokenId)") +
                     ".tokenId"),
            "42");
}

TEST(EvmFunctions, DecodedIntegersAreExactInTheirTypes) {
  Db db;
  std::string data = W("8000000000000000000000000000000000000000000000000000000000000007") +  // 2^255+7
                     std::string(64, 'f') +                                                 // -1
                     W("ffffffffffffffffffffffffffffffff") +                                // 2^128-1
                     "ffffffffffffffffffffffffffffffff80000000000000000000000000000000" +  // -2^127
                     W("ffffffffffffffffffffffffffffff") +                                  // 2^120-1
                     W("ffffffffffffffff") +                                                // 2^64-1
                     std::string(62, 'f') + "fb" +                                          // -5
                     W("ffffff") + W("0");
  std::string call = Log({}, data,
                         "Numbers(uint256 big, int256 minus_one, uint128 u128, int128 i128, "
                         "uint120 u120, uint64 u64, int8 i8, uint24 u24, uint zero)");
  EXPECT_EQ(db.Value("SELECT typeof(" + call + ")"),
            "STRUCT(big VARCHAR, minus_one VARCHAR, u128 VARCHAR, i128 HUGEINT, u120 HUGEINT, "
            "u64 UBIGINT, i8 TINYINT, u24 UINTEGER, zero VARCHAR)");
  Row r = db.One("SELECT d.big, d.minus_one, d.u128, d.i128, d.u120, d.u64, d.i8, d.u24, d.zero "
                 "FROM (SELECT " + call + " AS d)");
  EXPECT_EQ(r, (Row{"57896044618658097711785492504343953926634992332820282019728792003956564819975",
                    "-1", "340282366920938463463374607431768211455",
                    "-170141183460469231731687303715884105728",
                    "1329227995784915872903807060280344575", "18446744073709551615", "-5",
                    "16777215", "0"}));
}

TEST(EvmFunctions, DecodeLogNestedAndDynamic) {
  Db db;
  // (uint8 x, string y) t, int16[] zs, bytes b; an indexed string: its topic.
  std::string data = W("60") + W("e0") + W("140") +                    // heads
                     W("5") + W("40") + W("2") + R(Ascii("hi")) +    // t
                     W("2") + std::string(60, 'f') + "fffe" + W("3") +  // zs
                     W("3") + R("010203");                           // b
  std::string call = Log({W("abcd")}, data,
                         "E(string indexed name, (uint8 x, string y) t, int16[] zs, bytes b)");
  EXPECT_EQ(db.Value("SELECT typeof(" + call + ")"),
            "STRUCT(\"name\" BLOB, t STRUCT(x UTINYINT, y VARCHAR), zs SMALLINT[], b BLOB)");
  Row r = db.One("SELECT hex(d.name), d.t.x, d.t.y, d.zs::VARCHAR, hex(d.b) FROM (SELECT " + call + " AS d)");
  EXPECT_EQ(r, (Row{"000000000000000000000000000000000000000000000000000000000000ABCD", "5", "hi",
                    "[-2, 3]", "010203"}));
  // Invalid UTF-8 in a string: that field is NULL, the row is not.
  Row bad = db.One("SELECT d.s IS NULL, d.n FROM (SELECT " +
                   Log({}, W("40") + W("7") + W("2") + R("c328"), "E(string s, uint8 n)") + " AS d)");
  EXPECT_EQ(bad, (Row{"true", "7"}));
}

TEST(EvmFunctions, DecodeLogManyRowsMixed) {
  // More rows than one DuckDB vector (2048), valid and malformed interleaved.
  Db db;
  Row r = db.One(
      "SELECT count(*), count(d), sum(d.v) FROM (SELECT evm_decode_log("
      "CASE WHEN i % 3 = 0 THEN NULL ELSE from_hex(lpad(printf('%x', i), 64, '0')) END, NULL, NULL, "
      "from_hex(lpad('1', 64, '0')), 'E(uint64 indexed v, bool b)') AS d FROM range(5000) t(i))");
  uint64_t count = 0, sum = 0;
  for (uint64_t i = 0; i < 5000; ++i) {
    if (i % 3 != 0) {
      ++count;
      sum += i;
    }
  }
  EXPECT_EQ(r, (Row{"5000", std::to_string(count), std::to_string(sum)}));
}

// ---- evm_decode_params, evm_decode_type, encoding ----------------------------------------

TEST(EvmFunctions, DecodeParams) {
  Db db;
  const std::string sig = "transfer(address to, uint256 amount)";
  std::string input = "a9059cbb" + W(kTo) + W("3e8");
  Row r = db.One("SELECT evm_decode_hex(p.to), p.amount, typeof(p) FROM (SELECT evm_decode_params(" +
                 Blob(input) + ", '" + sig + "') AS p)");
  EXPECT_EQ(r, (Row{"0x" + kTo, "1000", "STRUCT(\"to\" BLOB, amount VARCHAR)"}));
  // Another selector, or arguments that do not decode: a struct of NULLs. NULL: NULL.
  for (const std::string& other : {"095ea7b3" + W(kTo) + W("3e8"), "a9059cbb" + W(kTo)}) {
    Row n = db.One("SELECT p IS NULL, p.to IS NULL, p.amount IS NULL FROM (SELECT "
                   "evm_decode_params(" + Blob(other) + ", '" + sig + "') AS p)");
    EXPECT_EQ(n, (Row{"false", "true", "true"})) << other;
  }
  EXPECT_EQ(db.Value("SELECT evm_decode_params(NULL::BLOB, '" + sig + "') IS NULL"), "true");
  EXPECT_NE(db.Error("SELECT evm_decode_params(from_hex('00'), 'name()')").find("nothing to decode"),
            std::string::npos);
}

TEST(EvmFunctions, DecodeType) {
  Db db;
  EXPECT_EQ(db.Value("SELECT evm_decode_type(" + Blob(W("20") + W("5") + R(Ascii("hello"))) +
                     ", 'string')"),
            "hello");
  Row r = db.One("SELECT d.c0, d.c1, d.c2, typeof(d) FROM (SELECT evm_decode_type(" +
                 Blob(W("3e8") + W("7d0") + W("65f0a1b2")) + ", '(uint112,uint112,uint32)') AS d)");
  EXPECT_EQ(r, (Row{"1000", "2000", "1710268850", "STRUCT(c0 HUGEINT, c1 HUGEINT, c2 UINTEGER)"}));
  // Method-call syntax, names in the type, NULL and garbage.
  EXPECT_EQ(db.Value("SELECT (d.evm_decode_type('(uint112 r0, uint112 r1, uint32 ts)')).r1 FROM "
                     "(SELECT " + Blob(W("3e8") + W("7d0") + W("1")) + " AS d)"),
            "2000");
  EXPECT_EQ(db.Value("SELECT evm_decode_type(NULL::BLOB, 'uint256')"), std::nullopt);
  EXPECT_EQ(db.Value("SELECT evm_decode_type(from_hex('01'), 'uint256')"), std::nullopt);
  EXPECT_EQ(db.Value("SELECT evm_decode_type(" + Blob(W("1ff")) + ", 'uint8')"), std::nullopt);
}

TEST(EvmFunctions, EncodeRoundTrips) {
  Db db;
  // The reference's example: a tuple with a string array, through encode and decode.
  EXPECT_EQ(db.Value("SELECT evm_decode_type(evm_encode_type(row(1, 2, ['str1', 'str2', 'str3']), "
                     "'(int256, int8, string[])'), '(int256, int8, string[])')::VARCHAR"),
            "{'c0': 1, 'c1': 2, 'c2': [str1, str2, str3]}");
  // The spec's example f(uint,uint32[],bytes10,bytes), encoded from SQL values.
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_params(291, [1110, 1929], '1234567890'::BLOB, "
                     "'Hello, world!'::BLOB, 'f(uint a, uint32[] b, bytes10 c, bytes d)')))"),
            "8be65246" + W("123") + W("80") + R(Ascii("1234567890")) + W("e0") + W("2") +
                W("456") + W("789") + W("d") + R(Ascii("Hello, world!")));
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_params('name()')))"), "06fdde03");
  // Exact integers from text, HUGEINT, DECIMAL; the largest and smallest.
  std::string max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
  EXPECT_EQ(db.Value("SELECT evm_decode_type(evm_encode_type('" + max + "', 'uint256'), 'uint256')"), max);
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_type(-1::HUGEINT, 'int256')))"), std::string(64, 'f'));
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_type(12.00::DECIMAL(6,2), 'uint8')))"), W("c"));
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_type('0x" + kTo + "', 'address')))"), W(kTo));
  EXPECT_EQ(db.Value("SELECT evm_encode_type(NULL, 'uint8')"), std::nullopt);
  EXPECT_EQ(db.Value("SELECT evm_encode_params(NULL, 'f(uint8 x)')"), std::nullopt);
  // Values that do not fit are errors naming the problem.
  EXPECT_NE(db.Error("SELECT evm_encode_type(256, 'uint8')").find("out of range for uint8"),
            std::string::npos);
  EXPECT_NE(db.Error("SELECT evm_encode_type(1e20::DOUBLE, 'uint256')").find("2^53"),
            std::string::npos);
  EXPECT_NE(db.Error("SELECT evm_encode_type([1, NULL], 'uint8[]')").find("NULL"), std::string::npos);
  EXPECT_NE(db.Error("SELECT evm_encode_type(1.5, 'uint8')").find("fraction"), std::string::npos);
  EXPECT_NE(db.Error("SELECT evm_encode_type('ab'::BLOB, 'address')").find("20"), std::string::npos);
  EXPECT_NE(db.Error("SELECT evm_encode_params(1, 'f(uint8 a, uint8 b)')").find("takes 2"),
            std::string::npos);
}

TEST(EvmFunctions, WideIntegerLiteralsStayExact) {
  Db db;
  // Literals beyond HUGEINT are DOUBLE to DuckDB; these functions get their text.
  std::string max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_params(from_hex('" + kTo + "'), " + max +
                     ", 'approve(address spender, uint256 amount)')))"),
            "095ea7b3" + W(kTo) + std::string(64, 'f'));
  // Inside a list it stays a DOUBLE (a string would not mix with 1): refused as
  // inexact; as text it works.
  EXPECT_NE(db.Error("SELECT evm_encode_type([1, " + max + "], 'uint256[]')").find("2^53"),
            std::string::npos);
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_type(['1', '" + max + "'], 'uint256[]')))"),
            W("20") + W("2") + W("1") + std::string(64, 'f'));
  EXPECT_EQ(db.Value("SELECT lower(hex(evm_encode_type(- "
                     "57896044618658097711785492504343953926634992332820282019728792003956564819968, "
                     "'int256')))"),
            "8" + std::string(63, '0'));
  EXPECT_EQ(db.Value("SELECT shift_units(" + max + ", -18)"),
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935");
  // A DOUBLE written as one stays one (and is refused as inexact); elsewhere
  // DuckDB's reading stands.
  EXPECT_NE(db.Error("SELECT evm_encode_type(1e40, 'uint256')").find("2^53"), std::string::npos);
  EXPECT_EQ(db.Value("SELECT typeof(" + max + ")"), "DOUBLE");
}

TEST(EvmFunctions, SignaturesMustBeLiterals) {
  Db db;
  auto msg = db.Error("SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), s) FROM "
                      "(VALUES ('Paused()')) t(s)");
  EXPECT_NE(msg.find("must be a string literal"), std::string::npos) << msg;
  msg = db.Error("SELECT evm_decode_type(from_hex('00'), 'uint' || '8')");
  EXPECT_NE(msg.find("must be a string literal"), std::string::npos) << msg;
  msg = db.Error("SELECT evm_decode_log(NULL, NULL, NULL, NULL, (SELECT 'Paused()'))");
  EXPECT_NE(msg.find("must be a string literal"), std::string::npos) << msg;
  // A literal that does not parse: the parser's message, naming the function.
  msg = db.Error("SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), 'E(uint7 x)')");
  EXPECT_NE(msg.find("evm_decode_log: event signature 'E(uint7 x)'"), std::string::npos) << msg;
  // A prepared statement's parameter is not a literal.
  PreparedStatement stmt;
  EXPECT_NE(duckdb_prepare(db.conn(), "SELECT evm_decode_log(NULL, NULL, NULL, from_hex(''), ?)",
                           stmt.out()),
            DuckDBSuccess);
}

TEST(EvmFunctions, RewriteKeepsTheRestOfTheQuery) {
  Db db;
  // Calls in a CTE, a subquery, a lambda, upper case, after multi-byte text.
  std::string sql =
      "WITH c AS (SELECT EVM_DECODE_TYPE(" + Blob(W("7")) + ", 'uint8') AS v) "
      "SELECT 'é€ evm_decode_type(' AS s, (SELECT v FROM c), list_transform([" + Blob(W("1")) +
      ", " + Blob(W("2")) + "], x -> evm_decode_type(x, 'uint16'))::VARCHAR AS l";
  auto tree = ParseTree(db.conn(), sql);
  ASSERT_TRUE(tree.ok());
  auto rewrite = RewriteEvmCalls(db.functions(), db.conn(), sql, *tree);
  ASSERT_TRUE(rewrite.ok()) << rewrite.status().ToString();
  EXPECT_NE(rewrite->sql.find("'é€ evm_decode_type(' AS s"), std::string::npos) << rewrite->sql;
  EXPECT_EQ(rewrite->sql.find("EVM_DECODE_TYPE"), std::string::npos);
  EXPECT_EQ(db.One(sql), (Row{"é€ evm_decode_type(", "7", "[1, 2]"}));
  // The same signature twice shares one decoder; a query without calls is unchanged.
  auto again = RewriteEvmCalls(db.functions(), db.conn(), sql, *tree);
  EXPECT_EQ(again->sql, rewrite->sql);
  std::string plain = "SELECT 1";
  EXPECT_EQ(RewriteEvmCalls(db.functions(), db.conn(), plain, *ParseTree(db.conn(), plain))->sql,
            plain);
  // The tree form, for callers that rewrite the parse tree.
  nlohmann::json t = *tree;
  EXPECT_EQ(*RewriteEvmCallsInTree(db.functions(), db.conn(), &t), 2);
  EXPECT_NE(t.dump().find("__sluice_evm_decode_type_"), std::string::npos);
  // A typed decoder called with another signature refuses it.
  std::string name = rewrite->sql.substr(rewrite->sql.find("__sluice_evm_decode_type_"), 41);
  Result res;
  EXPECT_NE(duckdb_query(db.conn(), ("SELECT " + name + "(from_hex('00'), 'bool')").c_str(),
                         res.out()),
            DuckDBSuccess)
      << name;
}

TEST(EvmFunctions, StreamingRefusesEthCall) {
  Db db;
  auto tree = ParseTree(db.conn(), "SELECT eth_rpc.eth_call(NULL, NULL, NULL, 'latest')");
  ASSERT_TRUE(tree.ok());
  EXPECT_TRUE(CallsEthCall(*tree));
  auto st = CheckStreamingEvmCalls(*tree, {});
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_TRUE(st.message().starts_with("NonIncrementalOp: eth_call")) << st.ToString();
  auto plain = ParseTree(db.conn(), "SELECT evm_topic('E()')");
  EXPECT_TRUE(CheckStreamingEvmCalls(*plain, {}).ok());
  EXPECT_FALSE(CheckStreamingEvmCalls(*plain, {&*tree}).ok());  // through a view
}

TEST(EvmFunctions, RegisteredOncePerDatabase) {
  Db db;
  Connection other = db.Connect();
  EXPECT_FALSE(EvmFunctions::Register(other.get()).ok());
  // Still usable once the configuration is locked down as the engine does it.
  ASSERT_TRUE(db.Exec("SET enable_external_access = false; SET lock_configuration = true").ok());
  EXPECT_EQ(db.Value("SELECT evm_decode_type(" + Blob(W("2a")) + ", 'uint8')"), "42");
}

// ---- real logs and transactions from a real node ----------------------------------------

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

  // The logs and transactions into DuckDB tables, as the chain tables hold them.
  Db db;
  ASSERT_TRUE(db.Exec("CREATE TABLE logs (block_num UBIGINT, log_index UBIGINT, topic0 BLOB, "
                      "topic1 BLOB, topic2 BLOB, topic3 BLOB, data BLOB); "
                      "CREATE TABLE txs (block_num UBIGINT, tx_index UBIGINT, input BLOB)")
                  .ok());
  // Per log: kind and fields as the transaction's own arguments say.
  std::map<std::pair<uint64_t, uint64_t>, std::tuple<std::string, std::string, std::string, std::string>>
      expected;  // (kind, from, to, value)
  std::map<std::pair<uint64_t, uint64_t>, std::pair<std::string, std::string>> transfers;  // tx args
  const std::string kZero = "0x" + std::string(40, '0');
  auto arg_addr = [](const std::string& input, int i) { return "0x" + input.substr(10 + 64 * i + 24, 40); };
  auto arg_uint = [](const std::string& input, int i) { return HexToDecimal(input.substr(10 + 64 * i, 64)); };
  uint64_t head = rpc.BlockNumber();
  for (uint64_t b = 1; b <= head; ++b) {
    auto block = rpc.Block(b, true);
    std::map<std::string, nlohmann::json> txs;
    for (auto& tx : block["transactions"]) {
      txs[tx["hash"]] = tx;
      std::string input = tx["input"];
      uint64_t index = testing::JsonRpc::Hex(tx["transactionIndex"]);
      ASSERT_TRUE(db.Exec("INSERT INTO txs VALUES (" + std::to_string(b) + ", " +
                          std::to_string(index) + ", from_hex('" + input.substr(2) + "'))")
                      .ok());
      if (input.substr(0, 10) == "0xa9059cbb") transfers[{b, index}] = {arg_addr(input, 0), arg_uint(input, 1)};
    }
    for (auto& receipt : rpc.Call("eth_getBlockReceipts", {testing::JsonRpc::Q(b)})) {
      if (receipt["status"] != "0x1") continue;
      const auto& tx = txs[receipt["transactionHash"]];
      std::string input = tx["input"], from = tx["from"];
      for (auto& c : from) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string selector = input.size() >= 10 ? input.substr(2, 8) : "";
      for (auto& log : receipt["logs"]) {
        const auto& topics = log["topics"];
        uint64_t li = testing::JsonRpc::Hex(log["logIndex"]);
        std::string values = std::to_string(b) + ", " + std::to_string(li);
        for (size_t i = 0; i < 4; ++i) {
          values += i < topics.size() ? ", from_hex('" + topics[i].get<std::string>().substr(2) + "')"
                                      : ", NULL";
        }
        values += ", from_hex('" + log["data"].get<std::string>().substr(2) + "')";
        ASSERT_TRUE(db.Exec("INSERT INTO logs VALUES (" + values + ")").ok());
        bool nft = topics.size() == 4;
        if (selector == "40c10f19") {  // token.mint(address to, uint256 amount)
          expected[{b, li}] = {"erc20", kZero, arg_addr(input, 0), arg_uint(input, 1)};
        } else if (selector == "a9059cbb") {  // token.transfer(address to, uint256 amount)
          expected[{b, li}] = {"erc20", from, arg_addr(input, 0), arg_uint(input, 1)};
        } else if (selector == "23b872dd") {  // transferFrom(address from, address to, uint256)
          expected[{b, li}] = {nft ? "erc721" : "erc20", arg_addr(input, 0), arg_addr(input, 1),
                               arg_uint(input, 2)};
        } else if (selector == "6a627842") {  // nft.mint(address to): the id is the contract's
          expected[{b, li}] = {"erc721", kZero, arg_addr(input, 0),
                               HexToDecimal(topics[3].get<std::string>().substr(2))};
        }
      }
    }
  }
  ASSERT_GE(expected.size(), 20u);  // setup alone mints 10 SLT and 10 NFTs

  auto rows = db.Rows(
      "SELECT block_num, log_index, evm_decode_hex(t.from), evm_decode_hex(t.to), t.value, "
      "evm_decode_hex(n.from), evm_decode_hex(n.to), n.tokenId FROM (SELECT block_num, log_index, "
      "evm_decode_log(topic1, topic2, topic3, data, '" + kErc20 + "') AS t, "
      "evm_decode_log(topic1, topic2, topic3, data, "
      "'Transfer(address indexed from, address indexed to, uint256 indexed tokenId)') AS n "
      "FROM logs WHERE topic0 = evm_topic('Transfer(address,address,uint256)')) "
      "ORDER BY block_num, log_index");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  size_t matched = 0;
  for (const auto& row : *rows) {
    auto it = expected.find({std::stoull(*row[0]), std::stoull(*row[1])});
    if (it == expected.end()) continue;
    ++matched;
    const auto& [kind, from, to, value] = it->second;
    SCOPED_TRACE("block " + *row[0] + " log " + *row[1] + " " + kind);
    if (kind == "erc20") {
      EXPECT_EQ((Row{row[2], row[3], row[4]}), (Row{from, to, value}));
      EXPECT_EQ(row[5], std::nullopt);  // not an ERC-721 log
    } else {
      EXPECT_EQ((Row{row[5], row[6], row[7]}), (Row{from, to, value}));
      EXPECT_EQ(row[2], std::nullopt);
    }
  }
  EXPECT_EQ(matched, expected.size());

  // transfer(address to, uint256 amount) calls, decoded from the transactions' input.
  ASSERT_FALSE(transfers.empty());
  auto calls = db.Rows(
      "SELECT block_num, tx_index, evm_decode_hex(p.to), p.amount FROM (SELECT block_num, tx_index, "
      "evm_decode_params(input, 'transfer(address to, uint256 amount)') AS p FROM txs) "
      "WHERE p.to IS NOT NULL ORDER BY block_num, tx_index");
  ASSERT_TRUE(calls.ok()) << calls.status().ToString();
  ASSERT_EQ(calls->size(), transfers.size());
  for (const auto& row : *calls) {
    const auto& want = transfers.at({std::stoull(*row[0]), std::stoull(*row[1])});
    EXPECT_EQ((Row{row[2], row[3]}), (Row{want.first, want.second}));
  }
}

}  // namespace
}  // namespace sluice::sql
