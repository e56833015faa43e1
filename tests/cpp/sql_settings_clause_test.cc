#include <string>

#include "gtest/gtest.h"
#include "sql/duckdb_handles.h"
#include "sql/sandbox.h"
#include "sql/settings_clause.h"

namespace sluice::sql {

namespace {

// The query with its clause removed, or a failure naming the status.
std::string Stripped(const std::string& sql) {
  auto r = ExtractSettings(sql);
  EXPECT_TRUE(r.ok()) << sql << " -> " << r.status().ToString();
  return r.ok() ? r->sql : "<error>";
}

std::optional<bool> Stream(const std::string& sql) {
  auto r = ExtractSettings(sql);
  EXPECT_TRUE(r.ok()) << sql << " -> " << r.status().ToString();
  return r.ok() ? r->stream : std::nullopt;
}

std::string Error(const std::string& sql) {
  auto r = ExtractSettings(sql);
  EXPECT_FALSE(r.ok()) << sql << " was accepted as: " << (r.ok() ? r->sql : "");
  if (r.ok()) return "<accepted>";
  EXPECT_TRUE(r.status().IsInvalid()) << r.status().ToString();
  return r.status().message();
}

}  // namespace

TEST(SettingsClause, SeedExample) {
  const std::string sql =
      "SELECT block_num, hash, timestamp\nFROM eth_rpc.blocks\nSETTINGS stream = true";
  auto r = ExtractSettings(sql);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->sql, "SELECT block_num, hash, timestamp\nFROM eth_rpc.blocks");
  EXPECT_EQ(r->stream, std::optional<bool>(true));

  const std::string accepted =
      "SELECT block_num, hash, gas_used\nFROM eth_rpc.blocks\nWHERE gas_used > 10000000\n"
      "SETTINGS stream = true";
  EXPECT_EQ(Stripped(accepted),
            "SELECT block_num, hash, gas_used\nFROM eth_rpc.blocks\nWHERE gas_used > 10000000");
  EXPECT_EQ(Stream(accepted), std::optional<bool>(true));
}

TEST(SettingsClause, NoClauseLeavesQueryUnchanged) {
  for (const std::string sql : {"SELECT 1", "SELECT 1;", "SELECT * FROM eth_rpc.blocks  ;  -- x\n",
                                "", "   ", "SELECT 1 SETTINGS"}) {
    auto r = ExtractSettings(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    EXPECT_EQ(r->sql, sql);
    EXPECT_FALSE(r->stream.has_value()) << sql;
  }
}

TEST(SettingsClause, KeysAndBooleanValues) {
  EXPECT_EQ(Stream("SELECT 1 settings STREAM = TRUE"), std::optional<bool>(true));
  EXPECT_EQ(Stream("SELECT 1 Settings Stream = False"), std::optional<bool>(false));
  EXPECT_EQ(Stream("SELECT 1 SETTINGS stream = 1"), std::optional<bool>(true));
  EXPECT_EQ(Stream("SELECT 1 SETTINGS stream = 0"), std::optional<bool>(false));
  EXPECT_EQ(Stream("SELECT 1 SETTINGS stream = 'true'"), std::optional<bool>(true));
  EXPECT_EQ(Stream("SELECT 1 SETTINGS stream = 'FALSE'"), std::optional<bool>(false));
  EXPECT_EQ(Stream("SELECT 1 SETTINGS stream = '1'"), std::optional<bool>(true));
  EXPECT_EQ(Stream("SELECT 1 SETTINGS \"stream\" = true"), std::optional<bool>(true));
  EXPECT_EQ(Stream("SELECT 1 SETTINGS stream=true"), std::optional<bool>(true));
}

TEST(SettingsClause, TrailingSemicolonAndComments) {
  EXPECT_EQ(Stripped("SELECT 1 SETTINGS stream = true;"), "SELECT 1");
  EXPECT_EQ(Stripped("SELECT 1 SETTINGS stream = true ; ;\n"), "SELECT 1");
  EXPECT_EQ(Stripped("SELECT 1 SETTINGS stream = true; -- the end\n/* really */  "), "SELECT 1");
  EXPECT_EQ(Stripped("SELECT 1 SETTINGS stream = true -- no semicolon"), "SELECT 1");
  // Comments and whitespace between the query and the clause go too, so the text can
  // be embedded (e.g. wrapped in a subquery) without a dangling line comment.
  EXPECT_EQ(Stripped("SELECT 1 -- note\nSETTINGS stream = true"), "SELECT 1");
  EXPECT_EQ(Stripped("SELECT  1\t/* c */\n SETTINGS stream = true"), "SELECT  1");
}

TEST(SettingsClause, SettingsInsideStringsCommentsAndIdentifiersIsNotAClause) {
  for (const std::string sql : {
           "SELECT 'SETTINGS stream = true'",
           "SELECT 'it''s SETTINGS stream = true'",
           "SELECT 'it''s' AS a, ' SETTINGS stream = true'",
           "SELECT E'\\' SETTINGS stream = true'",
           "SELECT $$ SETTINGS stream = true $$",
           "SELECT $tag$ SETTINGS stream = true $tag$",
           "SELECT 1 AS \"SETTINGS stream = true\"",
           "SELECT 1 AS \"a\"\" SETTINGS stream = true\"",
           "SELECT 1 -- SETTINGS stream = true",
           "SELECT 1 /* SETTINGS stream = true */",
           "SELECT 1 /* nested /* comment */ SETTINGS stream = true */",
       }) {
    auto r = ExtractSettings(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    EXPECT_EQ(r->sql, sql);
    EXPECT_FALSE(r->stream.has_value()) << sql;
  }
}

TEST(SettingsClause, SettingsInSubqueryIsNotAClause) {
  for (const std::string sql : {
           "SELECT * FROM (SELECT 1 SETTINGS stream = true) t",
           "SELECT * FROM (SELECT 1 SETTINGS stream = true)",
           "SELECT [1, (2)] AS l FROM (SELECT 1 SETTINGS stream = true) t",
       }) {
    auto r = ExtractSettings(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    EXPECT_EQ(r->sql, sql);
    EXPECT_FALSE(r->stream.has_value());
  }
}

TEST(SettingsClause, ParenthesesInStringsAndCommentsDoNotConfuseDepth) {
  EXPECT_EQ(Stripped("SELECT ')' AS p SETTINGS stream = true"), "SELECT ')' AS p");
  EXPECT_EQ(Stripped("SELECT '(' AS p SETTINGS stream = true"), "SELECT '(' AS p");
  EXPECT_EQ(Stripped("SELECT 1 /* ( */ SETTINGS stream = true"), "SELECT 1");
  EXPECT_EQ(Stripped("SELECT \"(\" FROM t -- (\nSETTINGS stream = true"), "SELECT \"(\" FROM t");
  EXPECT_EQ(Stripped("SELECT (1 + (2)) AS x SETTINGS stream = true"), "SELECT (1 + (2)) AS x");
}

TEST(SettingsClause, ColumnsAndAliasesNamedSettingsAreNotAClause) {
  for (const std::string sql : {
           "SELECT settings FROM t",
           "SELECT 1 AS settings",
           "SELECT * FROM t settings WHERE settings.x = 1",
           "SELECT a FROM t ORDER BY settings DESC",
           "SELECT a FROM t WHERE settings = 1",
       }) {
    auto r = ExtractSettings(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    EXPECT_EQ(r->sql, sql);
  }
}

TEST(SettingsClause, ClauseAfterDecoyInString) {
  auto r = ExtractSettings("SELECT 'SETTINGS stream = false' AS s FROM t SETTINGS stream = true");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->sql, "SELECT 'SETTINGS stream = false' AS s FROM t");
  EXPECT_EQ(r->stream, std::optional<bool>(true));
}

TEST(SettingsClause, UnknownSettingIsNamed) {
  EXPECT_EQ(Error("SELECT 1 SETTINGS strem = true"),
            "unknown setting 'strem' in SETTINGS clause (known: stream)");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true, max_rows = 5"),
            "unknown setting 'max_rows' in SETTINGS clause (known: stream)");
}

TEST(SettingsClause, MalformedClauses) {
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream ="), "SETTINGS clause: missing value of 'stream'");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = ;"),
            "SETTINGS clause: value of 'stream' must be true, false, an integer or a quoted "
            "string, got ';'");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true,"),
            "SETTINGS clause: expected a setting name, got the end of the query");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true, stream"),
            "SETTINGS clause: expected '=' after 'stream', got the end of the query");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true extra"),
            "SETTINGS clause must end the query: unexpected 'extra' after 'stream = true'");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true UNION ALL SELECT 2"),
            "SETTINGS clause must end the query: unexpected 'UNION' after 'stream = true'");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true, stream = false"),
            "setting 'stream' is given twice in SETTINGS clause");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = 'true"), "SETTINGS clause: unterminated quoted string");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true /* open"), "SETTINGS clause: unterminated comment");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = true /* /* */"), "SETTINGS clause: unterminated comment");
  EXPECT_EQ(Error("SETTINGS stream = true"), "the query is empty: only a SETTINGS clause was given");
}

TEST(SettingsClause, WrongValueTypes) {
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = 2"),
            "setting 'stream' in SETTINGS clause must be a boolean (true, false, 1 or 0), got 2");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = -1"),
            "setting 'stream' in SETTINGS clause must be a boolean (true, false, 1 or 0), got -1");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = 'yes'"),
            "setting 'stream' in SETTINGS clause must be a boolean (true, false, 1 or 0), got "
            "'yes'");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = maybe"),
            "SETTINGS clause: value of 'stream' must be true, false, an integer or a quoted "
            "string, got 'maybe'");
  EXPECT_EQ(Error("SELECT 1 SETTINGS stream = 1.5"),
            "SETTINGS clause: value of 'stream' must be true, false, an integer or a quoted "
            "string, got 1.5");
}

// What remains after the clause is removed is a query the engine parses.
TEST(SettingsClause, RemainingSqlParses) {
  Database db;
  Connection conn;
  ASSERT_EQ(duckdb_open(nullptr, db.out()), DuckDBSuccess);
  ASSERT_EQ(duckdb_connect(db.get(), conn.out()), DuckDBSuccess);
  for (const std::string sql : {
           "SELECT block_num, hash, timestamp FROM eth_rpc.blocks SETTINGS stream = true",
           "SELECT 1 -- c\nSETTINGS stream = true; -- end",
           "SELECT 'SETTINGS x = 1' AS s, \"SETTINGS\" FROM t /* SETTINGS */ SETTINGS stream = 0",
           "SELECT * FROM (SELECT 1 AS a) settings SETTINGS stream = true",
           "WITH c AS (SELECT 1) SELECT * FROM c SETTINGS STREAM = 'true';",
       }) {
    auto r = ExtractSettings(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    EXPECT_TRUE(r->stream.has_value()) << sql;
    auto tree = ParseTree(conn.get(), r->sql);
    EXPECT_TRUE(tree.ok()) << r->sql << ": " << tree.status().ToString();
    // The unstripped query does not parse: the clause is not SQL for the engine.
    EXPECT_FALSE(ParseTree(conn.get(), sql).ok()) << sql;
  }
}

TEST(StreamHeader, Values) {
  using B = std::optional<bool>;
  for (const std::string v : {"true", "TRUE", " True ", "1", "\t1\n"}) {
    auto r = ParseStreamHeader(v);
    ASSERT_TRUE(r.ok()) << v;
    EXPECT_EQ(*r, B(true)) << v;
  }
  for (const std::string v : {"false", "FALSE", " False", "0"}) {
    auto r = ParseStreamHeader(v);
    ASSERT_TRUE(r.ok()) << v;
    EXPECT_EQ(*r, B(false)) << v;
  }
  auto empty = ParseStreamHeader("  ");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, B());
  for (const std::string v : {"yes", "2", "truee", "on", "t"}) {
    auto r = ParseStreamHeader(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_TRUE(r.status().IsInvalid());
    EXPECT_EQ(r.status().message(), "amp-stream header must be true, false, 1 or 0, got '" + v + "'");
  }
}

TEST(StreamHeader, HeaderWinsOverClause) {
  QuerySettings on{"SELECT 1", true};
  QuerySettings off{"SELECT 1", false};
  QuerySettings unset{"SELECT 1", std::nullopt};
  EXPECT_TRUE(IsStreaming(on, std::nullopt));
  EXPECT_FALSE(IsStreaming(off, std::nullopt));
  EXPECT_FALSE(IsStreaming(unset, std::nullopt));
  EXPECT_FALSE(IsStreaming(on, false));
  EXPECT_TRUE(IsStreaming(off, true));
  EXPECT_TRUE(IsStreaming(unset, true));
}

}  // namespace sluice::sql
