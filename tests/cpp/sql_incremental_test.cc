#include <map>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "sql/duckdb_handles.h"
#include "sql/incremental.h"
#include "sql/sandbox.h"

namespace sluice::sql {

namespace {

// Parse trees come from a real in-memory DuckDB (json_serialize_sql); aggregates are
// those the engine reports; views are SQL texts parsed the same way.
class Incremental : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new Database();
    conn_ = new Connection();
    ASSERT_EQ(duckdb_open(nullptr, db_->out()), DuckDBSuccess);
    ASSERT_EQ(duckdb_connect(db_->get(), conn_->out()), DuckDBSuccess);
    auto names = AggregateFunctionNames(conn_->get());
    ASSERT_TRUE(names.ok()) << names.status().ToString();
    aggregates_ = new std::set<std::string>(*names);
  }
  static void TearDownTestSuite() {
    delete aggregates_;
    delete conn_;
    delete db_;
  }

  void SetUp() override {
    ctx_.is_aggregate = [](const std::string& name) { return aggregates_->count(name) > 0; };
    ctx_.view_tree = [this](const std::string& schema,
                            const std::string& name) -> std::optional<nlohmann::json> {
      auto it = views_.find(schema.empty() ? name : schema + "." + name);
      if (it == views_.end()) return std::nullopt;
      auto tree = ParseTree(conn_->get(), it->second);
      EXPECT_TRUE(tree.ok()) << it->second << ": " << tree.status().ToString();
      return tree.ok() ? std::optional<nlohmann::json>(*tree) : std::nullopt;
    };
  }

  arrow::Status Check(const std::string& sql, IncrementalInfo* info = nullptr) {
    auto tree = ParseTree(conn_->get(), sql);
    if (!tree.ok()) return arrow::Status::UnknownError("test query does not parse: ", tree.status().ToString());
    return CheckIncremental(*tree, ctx_, info);
  }

  void ExpectRejected(const std::string& sql, const std::string& message) {
    arrow::Status st = Check(sql);
    EXPECT_TRUE(st.IsInvalid()) << sql << " -> " << st.ToString();
    EXPECT_EQ(st.message(), message) << sql;
  }

  IncrementalInfo ExpectAccepted(const std::string& sql) {
    IncrementalInfo info;
    arrow::Status st = Check(sql, &info);
    EXPECT_TRUE(st.ok()) << sql << " -> " << st.ToString();
    return info;
  }

  static Database* db_;
  static Connection* conn_;
  static std::set<std::string>* aggregates_;
  IncrementalContext ctx_;
  std::map<std::string, std::string> views_;  // "schema.name" or "name" → SQL
};

Database* Incremental::db_ = nullptr;
Connection* Incremental::conn_ = nullptr;
std::set<std::string>* Incremental::aggregates_ = nullptr;

const char* kCount = "NonIncrementalOp: Aggregate function COUNT requires maintaining state across batches";
const char* kDistinct = "NonIncrementalOp: DISTINCT requires global deduplication state";
const char* kLimit = "NonIncrementalOp: LIMIT requires counting rows across batches";
const char* kOrderBy = "NonIncrementalOp: ORDER BY requires seeing all rows before sorting";
const char* kRowNumber =
    "NonIncrementalOp: Window function ROW_NUMBER requires state and sorting across batches";
const char* kRecursive = "NonIncrementalOp: Recursive query requires state across batches";
const char* kUnion = "NonIncrementalOp: UNION (without ALL) requires global deduplication state";
const char* kGroupBy =
    "NonIncrementalOp: GROUP BY requires maintaining group state across batches unless one of "
    "its keys is block_num";
const char* kGroupByJoin =
    "NonIncrementalOp: GROUP BY block_num over a join requires the join condition to equate "
    "block_num of both sides, so that each block's groups close with the block; group by "
    "block_num() (the later of the joined blocks) instead";

TableReference Table(std::string schema, std::string table, std::string alias = "") {
  return TableReference{"", std::move(schema), std::move(table), std::move(alias)};
}

}  // namespace

// ---- the seed's examples ------------------------------------------------------------

TEST_F(Incremental, SeedRejectedExampleVerbatim) {
  ExpectRejected("SELECT COUNT(*) as total_blocks FROM eth_rpc.blocks", kCount);
}

TEST_F(Incremental, SeedAcceptedExample) {
  auto info = ExpectAccepted(
      "SELECT block_num, hash, gas_used FROM eth_rpc.blocks WHERE gas_used > 10000000");
  EXPECT_EQ(info.tables, std::vector<TableReference>{Table("eth_rpc", "blocks")});
  EXPECT_FALSE(info.has_join);
  EXPECT_FALSE(info.has_block_grouping);
  EXPECT_FALSE(info.has_subquery_expression);
}

// ---- each rejected operation --------------------------------------------------------

TEST_F(Incremental, AggregateFunctionsAreNamed) {
  ExpectRejected("SELECT count(hash) FROM eth_rpc.blocks", kCount);
  ExpectRejected("SELECT count(DISTINCT hash) FROM eth_rpc.blocks", kCount);
  const std::map<std::string, std::string> cases = {
      {"SELECT sum(gas_used) FROM eth_rpc.blocks", "SUM"},
      {"SELECT avg(gas_used) FROM eth_rpc.blocks", "AVG"},
      {"SELECT min(block_num), 1 FROM eth_rpc.blocks", "MIN"},
      {"SELECT 1 + max(block_num) FROM eth_rpc.blocks", "MAX"},
      {"SELECT string_agg(hash, ',' ORDER BY block_num) FROM eth_rpc.blocks", "STRING_AGG"},
      {"SELECT arg_max(hash, gas_used) FROM eth_rpc.blocks", "ARG_MAX"},
      {"SELECT list(hash) FROM eth_rpc.blocks", "LIST"},
      {"SELECT geomean(gas_used) FROM eth_rpc.blocks", "GEOMEAN"},  // a macro over avg
      {"SELECT json_group_array(hash) FROM eth_rpc.blocks", "JSON_GROUP_ARRAY"},
      {"SELECT 1 FROM eth_rpc.blocks HAVING sum(gas_used) > 0", "SUM"},
      {"SELECT hash, count(*) FROM eth_rpc.blocks GROUP BY hash", "COUNT"},
      {"SELECT SUM(gas_used) FILTER (WHERE gas_used > 0) FROM eth_rpc.blocks", "SUM"},
  };
  for (const auto& [sql, name] : cases) {
    ExpectRejected(sql, "NonIncrementalOp: Aggregate function " + name +
                            " requires maintaining state across batches");
  }
}

TEST_F(Incremental, WindowFunctionsAreNamed) {
  ExpectRejected("SELECT row_number() OVER (ORDER BY block_num) FROM eth_rpc.blocks", kRowNumber);
  ExpectRejected("SELECT block_num FROM eth_rpc.blocks QUALIFY row_number() OVER () = 1",
                 kRowNumber);
  ExpectRejected("SELECT sum(gas_used) OVER () FROM eth_rpc.blocks",
                 "NonIncrementalOp: Window function SUM requires state and sorting across batches");
  ExpectRejected(
      "SELECT lag(hash) OVER (PARTITION BY block_num ORDER BY log_index) FROM eth_rpc.logs",
      "NonIncrementalOp: Window function LAG requires state and sorting across batches");
  ExpectRejected("SELECT count(*) OVER () FROM eth_rpc.blocks",
                 "NonIncrementalOp: Window function COUNT requires state and sorting across batches");
}

TEST_F(Incremental, Distinct) {
  ExpectRejected("SELECT DISTINCT miner FROM eth_rpc.blocks", kDistinct);
  ExpectRejected("SELECT DISTINCT * FROM eth_rpc.blocks", kDistinct);
  ExpectRejected("SELECT DISTINCT ON (miner) miner, hash FROM eth_rpc.blocks",
                 "NonIncrementalOp: DISTINCT ON requires global deduplication state unless one "
                 "of its keys is block_num");
}

TEST_F(Incremental, LimitAndOffset) {
  ExpectRejected("SELECT * FROM eth_rpc.blocks LIMIT 10", kLimit);
  ExpectRejected("SELECT * FROM eth_rpc.blocks LIMIT 10 OFFSET 5", kLimit);
  ExpectRejected("SELECT * FROM eth_rpc.blocks LIMIT 10%", kLimit);
  ExpectRejected("SELECT * FROM eth_rpc.blocks OFFSET 5",
                 "NonIncrementalOp: OFFSET requires counting rows across batches");
  ExpectRejected("SELECT * FROM (SELECT * FROM eth_rpc.blocks LIMIT 1) b", kLimit);
}

TEST_F(Incremental, OrderByAtTopLevel) {
  ExpectRejected("SELECT * FROM eth_rpc.blocks ORDER BY block_num", kOrderBy);
  ExpectRejected("SELECT * FROM eth_rpc.blocks ORDER BY ALL", kOrderBy);
  ExpectRejected(
      "SELECT block_num FROM eth_rpc.blocks UNION ALL SELECT block_num FROM eth_rpc.logs "
      "ORDER BY 1",
      kOrderBy);
  ExpectRejected(
      "WITH b AS MATERIALIZED (SELECT * FROM eth_rpc.blocks) SELECT * FROM b ORDER BY hash",
      kOrderBy);
  // Below the top level an ORDER BY orders nothing the client sees.
  ExpectAccepted("SELECT * FROM (SELECT * FROM eth_rpc.blocks ORDER BY hash) b");
  ExpectAccepted("WITH b AS (SELECT * FROM eth_rpc.blocks ORDER BY hash) SELECT * FROM b");
}

TEST_F(Incremental, RecursiveQueries) {
  ExpectRejected(
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) "
      "SELECT * FROM r",
      kRecursive);
  ExpectRejected(
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n + 1 FROM r WHERE n < 10) "
      "SELECT * FROM eth_rpc.blocks",  // checked even when not referenced
      kRecursive);
  // RECURSIVE on a CTE that does not recur is a plain CTE.
  ExpectAccepted("WITH RECURSIVE b AS (SELECT * FROM eth_rpc.blocks) SELECT * FROM b");
}

TEST_F(Incremental, SetOperations) {
  ExpectRejected("SELECT hash FROM eth_rpc.blocks UNION SELECT hash FROM eth_rpc.logs", kUnion);
  ExpectRejected("SELECT hash FROM eth_rpc.blocks UNION BY NAME SELECT hash FROM eth_rpc.logs",
                 "NonIncrementalOp: UNION BY NAME (without ALL) requires global deduplication state");
  ExpectRejected("SELECT hash FROM eth_rpc.blocks EXCEPT SELECT hash FROM eth_rpc.logs",
                 "NonIncrementalOp: EXCEPT requires comparing rows with all rows of the other side "
                 "across batches");
  ExpectRejected("SELECT hash FROM eth_rpc.blocks INTERSECT ALL SELECT hash FROM eth_rpc.logs",
                 "NonIncrementalOp: INTERSECT ALL requires comparing rows with all rows of the "
                 "other side across batches");
  ExpectRejected(
      "SELECT hash FROM eth_rpc.blocks UNION ALL SELECT hash FROM eth_rpc.logs "
      "UNION SELECT hash FROM eth_rpc.transactions",
      kUnion);
  auto info = ExpectAccepted(
      "SELECT block_num FROM eth_rpc.blocks UNION ALL SELECT block_num FROM eth_rpc.logs "
      "UNION ALL BY NAME SELECT block_num FROM eth_rpc.transactions");
  EXPECT_EQ(info.tables, (std::vector<TableReference>{Table("eth_rpc", "blocks"),
                                                      Table("eth_rpc", "logs"),
                                                      Table("eth_rpc", "transactions")}));
  EXPECT_FALSE(info.has_join);
}

TEST_F(Incremental, OnlyInnerJoins) {
  const std::string on = " eth_rpc.logs l ON t.tx_hash = l.tx_hash";
  const std::string from = "SELECT * FROM eth_rpc.transactions t ";
  ExpectRejected(from + "LEFT JOIN" + on,
                 "NonIncrementalOp: LEFT JOIN requires tracking unmatched rows across batches");
  ExpectRejected(from + "RIGHT OUTER JOIN" + on,
                 "NonIncrementalOp: RIGHT JOIN requires tracking unmatched rows across batches");
  ExpectRejected(from + "FULL OUTER JOIN" + on,
                 "NonIncrementalOp: FULL JOIN requires tracking unmatched rows across batches");
  // A SEMI JOIN is an EXISTS: each kept row once, when its first match arrives.
  auto semi = ExpectAccepted(from + "SEMI JOIN" + on);
  EXPECT_TRUE(semi.late_rows);
  EXPECT_FALSE(semi.has_join);
  ExpectRejected(from + "ANTI JOIN" + on,
                 "NonIncrementalOp: ANTI JOIN requires knowing that no matching row arrives in a "
                 "later block");
  ExpectRejected(from + "ASOF JOIN eth_rpc.blocks b ON t.block_num >= b.block_num",
                 "NonIncrementalOp: ASOF JOIN requires finding the nearest row of the other side "
                 "across batches");
  ExpectRejected(from + "POSITIONAL JOIN eth_rpc.blocks b",
                 "NonIncrementalOp: POSITIONAL JOIN requires row positions across batches");
}

TEST_F(Incremental, OtherStatefulConstructs) {
  ExpectRejected("SELECT * FROM eth_rpc.blocks USING SAMPLE 10 ROWS",
                 "NonIncrementalOp: SAMPLE of a fixed number of rows (reservoir sampling) "
                 "requires state across batches");
  ExpectRejected("SELECT * FROM eth_rpc.blocks TABLESAMPLE 5 ROWS",
                 "NonIncrementalOp: SAMPLE of a fixed number of rows (reservoir sampling) "
                 "requires state across batches");
  ExpectAccepted("SELECT * FROM eth_rpc.blocks USING SAMPLE 10% (bernoulli)");
  ExpectRejected("SELECT * FROM eth_rpc.logs PIVOT (count(*) FOR topic0 IN ('a', 'b'))",
                 "NonIncrementalOp: PIVOT requires aggregating across batches");
  ExpectAccepted("SELECT * FROM eth_rpc.logs UNPIVOT (topic FOR which IN (topic0, topic1))");
  ExpectRejected("SUMMARIZE eth_rpc.blocks",
                 "NonIncrementalOp: SUMMARIZE requires aggregating all rows across batches");
  ExpectRejected("SELECT miner FROM eth_rpc.blocks GROUP BY miner", kGroupBy);
}

TEST_F(Incremental, EveryRejectionStartsWithThePrefix) {
  for (const std::string sql : {
           "SELECT count(*) FROM t", "SELECT DISTINCT a FROM t", "SELECT a FROM t LIMIT 1",
           "SELECT a FROM t ORDER BY a", "SELECT rank() OVER () FROM t",
           "SELECT a FROM t UNION SELECT a FROM u", "SELECT * FROM t LEFT JOIN u USING (a)",
           "SELECT a FROM t GROUP BY a",
       }) {
    arrow::Status st = Check(sql);
    ASSERT_TRUE(st.IsInvalid()) << sql;
    EXPECT_EQ(st.message().rfind("NonIncrementalOp: ", 0), 0u) << st.message();
  }
}

// ---- hidden in subqueries, CTEs and views --------------------------------------------

TEST_F(Incremental, HiddenInSubqueries) {
  ExpectRejected("SELECT * FROM (SELECT count(*) AS n FROM eth_rpc.blocks) s", kCount);
  ExpectRejected("SELECT * FROM (SELECT * FROM (SELECT DISTINCT miner FROM eth_rpc.blocks) a) b",
                 kDistinct);
  ExpectRejected(
      "SELECT hash, (SELECT count(*) FROM eth_rpc.logs l WHERE l.tx_hash = t.tx_hash) "
      "FROM eth_rpc.transactions t",
      kCount);
  ExpectRejected(
      "SELECT * FROM eth_rpc.transactions WHERE tx_hash IN (SELECT tx_hash FROM eth_rpc.logs "
      "LIMIT 5)",
      kLimit);
  ExpectRejected(
      "SELECT * FROM eth_rpc.blocks b WHERE EXISTS (SELECT 1 FROM eth_rpc.logs l "
      "LEFT JOIN eth_rpc.transactions t ON l.tx_hash = t.tx_hash)",
      "NonIncrementalOp: LEFT JOIN requires tracking unmatched rows across batches");
  ExpectRejected(
      "SELECT block_num FROM eth_rpc.blocks UNION ALL "
      "SELECT block_num FROM (SELECT block_num, row_number() OVER () FROM eth_rpc.logs)",
      kRowNumber);
}

TEST_F(Incremental, HiddenInCtes) {
  ExpectRejected("WITH c AS (SELECT count(*) FROM eth_rpc.blocks) SELECT * FROM c", kCount);
  ExpectRejected(
      "WITH a AS (SELECT * FROM eth_rpc.blocks), b AS (SELECT DISTINCT miner FROM a) "
      "SELECT * FROM b",
      kDistinct);
  ExpectRejected(
      "WITH c AS MATERIALIZED (SELECT * FROM eth_rpc.blocks LIMIT 3) SELECT * FROM c", kLimit);
  // A CTE defined but never read is still checked.
  ExpectRejected(
      "WITH unused AS (SELECT count(*) FROM eth_rpc.blocks) SELECT * FROM eth_rpc.blocks",
      kCount);
  ExpectRejected(
      "SELECT * FROM (WITH c AS (SELECT hash FROM eth_rpc.blocks UNION SELECT hash FROM "
      "eth_rpc.logs) SELECT * FROM c) s",
      kUnion);
}

TEST_F(Incremental, HiddenInViews) {
  views_["eth_rpc.block_counts"] = "SELECT miner, count(*) AS n FROM eth_rpc.blocks GROUP BY miner";
  views_["derived.latest"] = "SELECT * FROM eth_rpc.blocks ORDER BY block_num DESC LIMIT 1";
  views_["derived.wrapper"] = "SELECT * FROM eth_rpc.block_counts";
  ExpectRejected("SELECT * FROM eth_rpc.block_counts", kCount);
  ExpectRejected("SELECT * FROM derived.latest", kLimit);  // ORDER BY in a view is not top level
  ExpectRejected("SELECT * FROM derived.wrapper", kCount);  // a view over a view
  ExpectRejected(
      "SELECT * FROM eth_rpc.transactions t JOIN derived.wrapper w ON t.miner = w.miner", kCount);
  // A CTE of the same name shadows the view.
  ExpectAccepted("WITH block_counts AS (SELECT * FROM eth_rpc.blocks) SELECT * FROM block_counts");
}

TEST_F(Incremental, ViewsAreExpandedAndListed) {
  views_["derived.transfers"] =
      "SELECT t.block_num, t.tx_hash, l.address FROM eth_rpc.transactions t "
      "JOIN eth_rpc.logs l ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash";
  auto info = ExpectAccepted("SELECT * FROM derived.transfers x WHERE address IS NOT NULL");
  EXPECT_EQ(info.views, std::vector<TableReference>{Table("derived", "transfers", "x")});
  EXPECT_EQ(info.tables, (std::vector<TableReference>{Table("eth_rpc", "transactions", "t"),
                                                      Table("eth_rpc", "logs", "l")}));
  EXPECT_TRUE(info.has_join);
  // Its join equates block_num, so grouping its rows by block_num is accepted.
  ExpectAccepted("SELECT block_num, count(*) FROM derived.transfers GROUP BY block_num");
}

TEST_F(Incremental, ViewThatRefersToItself) {
  views_["derived.loop"] = "SELECT * FROM derived.loop";
  arrow::Status st = Check("SELECT * FROM derived.loop");
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_EQ(st.message(), "view derived.loop refers to itself");
}

// ---- accepted queries ----------------------------------------------------------------

TEST_F(Incremental, ProjectionsFiltersAndScalarFunctions) {
  ExpectAccepted("SELECT * FROM eth_rpc.blocks");
  ExpectAccepted("SELECT block_num AS n, hash FROM eth_rpc.blocks WHERE block_num BETWEEN 1 AND 9");
  ExpectAccepted(
      "SELECT lower(hex(hash)), abs(gas_used - 1), CASE WHEN gas_used > 0 THEN 'x' END, "
      "gas_used::DOUBLE / 2, coalesce(miner, 'none'), list_transform([1, 2], x -> x + 1), "
      "regexp_matches(miner, '^0x'), list_avg([1, 2]), my_udf(hash) "
      "FROM eth_rpc.blocks WHERE starts_with(miner, '0x') AND block_num % 2 = 0");
  ExpectAccepted("SELECT * FROM eth_rpc.blocks, unnest([1, 2]) u(v)");
  ExpectAccepted("SELECT 1");
}

TEST_F(Incremental, JoinOfTransactionsAndLogs) {
  auto info = ExpectAccepted(
      "SELECT t.block_num, t.tx_hash, l.log_index, l.address "
      "FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
      "ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash "
      "WHERE l.address = '0xabc'");
  EXPECT_EQ(info.tables, (std::vector<TableReference>{Table("eth_rpc", "transactions", "t"),
                                                      Table("eth_rpc", "logs", "l")}));
  EXPECT_TRUE(info.has_join);
  // Comma, CROSS and NATURAL joins are inner joins too.
  EXPECT_TRUE(ExpectAccepted("SELECT * FROM eth_rpc.transactions t, eth_rpc.logs l "
                             "WHERE t.tx_hash = l.tx_hash")
                  .has_join);
  EXPECT_TRUE(ExpectAccepted("SELECT * FROM eth_rpc.blocks CROSS JOIN eth_rpc.logs").has_join);
  EXPECT_TRUE(ExpectAccepted("SELECT * FROM eth_rpc.transactions NATURAL JOIN eth_rpc.logs").has_join);
  // Unnesting a column is not a join of tables.
  EXPECT_FALSE(ExpectAccepted("SELECT * FROM eth_rpc.logs l, unnest(l.topics) t(topic)").has_join);
}

TEST_F(Incremental, SelfJoinListsTheTableTwice) {
  auto info = ExpectAccepted(
      "WITH l AS (SELECT * FROM eth_rpc.logs) "
      "SELECT * FROM l a JOIN l b ON a.tx_hash = b.tx_hash");
  EXPECT_EQ(info.tables, (std::vector<TableReference>{Table("eth_rpc", "logs"),
                                                      Table("eth_rpc", "logs")}));
  EXPECT_TRUE(info.has_join);
}

TEST_F(Incremental, IncrementalSubqueries) {
  auto info = ExpectAccepted(
      "SELECT * FROM (SELECT block_num, hash FROM eth_rpc.blocks WHERE gas_used > 0) b "
      "WHERE b.hash IN (SELECT block_hash FROM eth_rpc.transactions)");
  EXPECT_TRUE(info.has_subquery_expression);
  EXPECT_EQ(info.tables, (std::vector<TableReference>{Table("eth_rpc", "blocks"),
                                                      Table("eth_rpc", "transactions")}));
  ExpectAccepted("WITH b AS (SELECT * FROM eth_rpc.blocks) SELECT * FROM b WHERE gas_used > 1");
}

// ---- beyond the seed: grouping keyed by block_num -------------------------------------

TEST_F(Incremental, GroupByBlockNumWithAggregates) {
  auto info = ExpectAccepted("SELECT block_num, count(*) FROM eth_rpc.logs GROUP BY block_num");
  EXPECT_TRUE(info.has_block_grouping);
  ExpectAccepted("SELECT l.block_num, count(*), sum(log_index) FROM eth_rpc.logs l GROUP BY l.block_num");
  ExpectAccepted("SELECT block_num, address, count(*) FROM eth_rpc.logs GROUP BY block_num, address");
  ExpectAccepted("SELECT address, block_num, count(*) FROM eth_rpc.logs GROUP BY address, block_num");
  ExpectAccepted("SELECT block_num, count(*) FROM eth_rpc.logs GROUP BY 1");
  ExpectAccepted("SELECT block_num AS b, count(*) FROM eth_rpc.logs GROUP BY b");
  ExpectAccepted("SELECT block_num, count(*) FROM eth_rpc.logs GROUP BY ALL");
  ExpectAccepted(
      "SELECT block_num, count(*) FILTER (WHERE address = '0x1') FROM eth_rpc.logs "
      "GROUP BY block_num HAVING count(*) > 2");
  ExpectAccepted(
      "SELECT count(*) FROM eth_rpc.logs GROUP BY GROUPING SETS ((block_num), (block_num, address))");
  ExpectAccepted(
      "SELECT * FROM (SELECT block_num, count(*) AS n FROM eth_rpc.logs GROUP BY block_num) c "
      "WHERE n > 3");
}

TEST_F(Incremental, GroupByOtherKeysIsRejected) {
  // ROLLUP has a global grouping set.
  ExpectRejected("SELECT count(*) FROM eth_rpc.logs GROUP BY ROLLUP (block_num, address)", kCount);
  ExpectRejected("SELECT address, count(*) FROM eth_rpc.logs GROUP BY ALL", kCount);
  ExpectRejected("SELECT block_num + 1 AS b, count(*) FROM eth_rpc.logs GROUP BY block_num + 1",
                 kCount);
  // An alias named block_num that is something else.
  ExpectRejected("SELECT address AS block_num, count(*) FROM eth_rpc.logs GROUP BY block_num",
                 kCount);
  // Aggregating a per-block result again is not per block.
  ExpectRejected(
      "SELECT count(*) FROM (SELECT block_num, count(*) FROM eth_rpc.logs GROUP BY block_num)",
      kCount);
}

TEST_F(Incremental, GroupByBlockNumOverJoins) {
  ExpectAccepted(
      "SELECT t.block_num, count(*) FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
      "ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash GROUP BY t.block_num");
  ExpectAccepted(
      "SELECT block_num, count(*) FROM eth_rpc.transactions JOIN eth_rpc.logs "
      "USING (block_num, tx_hash) GROUP BY block_num");
  ExpectRejected(
      "SELECT t.block_num, count(*) FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
      "ON t.tx_hash = l.tx_hash GROUP BY t.block_num",
      kGroupByJoin);
  ExpectRejected(
      "SELECT t.block_num, count(*) FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
      "ON t.block_num = l.block_num OR t.tx_hash = l.tx_hash GROUP BY t.block_num",
      kGroupByJoin);
  ExpectRejected(
      "SELECT block_num, count(*) FROM (SELECT t.block_num FROM eth_rpc.transactions t, "
      "eth_rpc.logs l WHERE t.tx_hash = l.tx_hash) GROUP BY block_num",
      kGroupByJoin);
  // An unqualified block_num does not say which side it is from.
  ExpectRejected(
      "SELECT l.block_num, count(*) FROM (SELECT tx_hash FROM eth_rpc.transactions) "
      "JOIN eth_rpc.logs l ON block_num = l.block_num GROUP BY l.block_num",
      kGroupByJoin);
  // A comma join whose WHERE equates block_num is aligned too.
  ExpectAccepted(
      "SELECT t.block_num, count(*) FROM eth_rpc.transactions t, eth_rpc.logs l "
      "WHERE t.tx_hash = l.tx_hash AND l.block_num = t.block_num GROUP BY t.block_num");
  ExpectRejected(
      "SELECT t.block_num, count(*) FROM eth_rpc.transactions t, eth_rpc.logs l "
      "WHERE t.tx_hash = l.tx_hash GROUP BY t.block_num",
      kGroupByJoin);
}

TEST_F(Incremental, DistinctKeyedByBlockNum) {
  EXPECT_TRUE(ExpectAccepted("SELECT DISTINCT ON (block_num) block_num, tx_hash FROM eth_rpc.logs")
                  .has_block_grouping);
  ExpectAccepted("SELECT DISTINCT block_num, address FROM eth_rpc.logs");
  ExpectAccepted(
      "SELECT * FROM (SELECT DISTINCT ON (block_num) * FROM eth_rpc.logs ORDER BY block_num, "
      "log_index) first_logs");
  ExpectRejected("SELECT DISTINCT ON (block_num) count(*) FROM eth_rpc.logs", kCount);
  ExpectRejected(
      "SELECT DISTINCT t.block_num, t.tx_hash FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
      "ON t.tx_hash = l.tx_hash",
      "NonIncrementalOp: DISTINCT block_num over a join requires the join condition to equate "
      "block_num of both sides, so that each block's rows close with the block; use "
      "block_num() (the later of the joined blocks)");
}

// ---- the context and the tree ----------------------------------------------------------

TEST_F(Incremental, AggregateNamesComeFromTheEngine) {
  const auto& names = *aggregates_;
  for (const char* agg : {"count", "count_star", "sum", "avg", "min", "max", "string_agg",
                          "list", "arg_max", "geomean", "json_group_array", "weighted_avg"}) {
    EXPECT_TRUE(names.count(agg)) << agg;
  }
  for (const char* scalar : {"abs", "lower", "hash", "list_avg", "row_number", "range", "+"}) {
    EXPECT_FALSE(names.count(scalar)) << scalar;
  }
}

TEST_F(Incremental, IsAggregateIsConsulted) {
  // A context that knows no aggregates accepts what it cannot recognise…
  IncrementalContext none;
  none.is_aggregate = [](const std::string&) { return false; };
  auto tree = ParseTree(conn_->get(), "SELECT count(*) FROM eth_rpc.blocks");
  ASSERT_TRUE(tree.ok());
  EXPECT_TRUE(CheckIncremental(*tree, none).ok());
  // …one that calls my_udf an aggregate rejects it by that name.
  IncrementalContext udf;
  udf.is_aggregate = [](const std::string& n) { return n == "my_udf"; };
  auto tree2 = ParseTree(conn_->get(), "SELECT my_udf(hash) FROM eth_rpc.blocks");
  ASSERT_TRUE(tree2.ok());
  EXPECT_EQ(CheckIncremental(*tree2, udf).message(),
            "NonIncrementalOp: Aggregate function MY_UDF requires maintaining state across batches");
  // Unset is an error, not a silent accept.
  IncrementalContext unset;
  EXPECT_TRUE(CheckIncremental(*tree, unset).IsInvalid());
}

TEST_F(Incremental, AcceptsStatementOrNodeAndRejectsNonTrees) {
  auto tree = ParseTree(conn_->get(), "SELECT count(*) FROM eth_rpc.blocks");
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(CheckIncremental((*tree)["statements"][0], ctx_).message(), kCount);
  EXPECT_EQ(CheckIncremental((*tree)["statements"][0]["node"], ctx_).message(), kCount);
  // The engine's own output for a query that does not parse.
  PreparedStatement stmt;
  ASSERT_EQ(duckdb_prepare(conn_->get(), "SELECT json_serialize_sql('SELEC 1')", stmt.out()),
            DuckDBSuccess);
  Result res;
  ASSERT_EQ(duckdb_execute_prepared(stmt.get(), res.out()), DuckDBSuccess);
  char* text = duckdb_value_varchar(res.out(), 0, 0);
  ASSERT_NE(text, nullptr);
  nlohmann::json error = nlohmann::json::parse(text);
  duckdb_free(text);
  ASSERT_TRUE(error.value("error", false));
  arrow::Status st = CheckIncremental(error, ctx_);
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find("syntax error"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("NonIncrementalOp"), std::string::npos) << st.message();
  EXPECT_TRUE(CheckIncremental(nlohmann::json::array(), ctx_).IsInvalid());
}

}  // namespace sluice::sql

namespace sluice::sql {
namespace {

IncrementalInfo InfoOf(const std::string& sql) {
  duckdb_database db;
  duckdb_connection conn;
  EXPECT_EQ(duckdb_open(nullptr, &db), DuckDBSuccess);
  EXPECT_EQ(duckdb_connect(db, &conn), DuckDBSuccess);
  auto tree = ParseTree(conn, sql);
  EXPECT_TRUE(tree.ok()) << tree.status().ToString();
  auto aggregates = *AggregateFunctionNames(conn);
  IncrementalContext ctx;
  ctx.is_aggregate = [&](const std::string& n) { return aggregates.count(n) > 0; };
  IncrementalInfo info;
  EXPECT_TRUE(CheckIncremental(*tree, ctx, &info).ok());
  duckdb_disconnect(&conn);
  duckdb_close(&db);
  return info;
}

TEST_F(Incremental, ExistsAndInStreamUnderAndOr) {
  auto info = ExpectAccepted(
      "SELECT * FROM eth_rpc.blocks b WHERE EXISTS (SELECT 1 FROM eth_rpc.logs l "
      "WHERE l.block_num = b.block_num + 1)");
  EXPECT_TRUE(info.late_rows);
  EXPECT_EQ(info.tables, (std::vector<TableReference>{Table("eth_rpc", "blocks", "b"),
                                                      Table("eth_rpc", "logs", "l")}));
  ExpectAccepted("SELECT * FROM eth_rpc.transactions WHERE gas_used > 1 OR tx_hash IN "
                 "(SELECT tx_hash FROM eth_rpc.logs)");
  ExpectAccepted("SELECT * FROM eth_rpc.transactions t JOIN eth_rpc.blocks b ON "
                 "b.block_num = t.block_num AND EXISTS (SELECT 1 FROM eth_rpc.logs l WHERE "
                 "l.tx_hash = t.tx_hash)");
  // A subquery over no chain table is a constant: anywhere, and rows are not late.
  EXPECT_FALSE(ExpectAccepted("SELECT block_num IN (SELECT unnest([1, 2])) FROM eth_rpc.blocks")
                   .late_rows);
}

TEST_F(Incremental, NegatedAndScalarSubqueriesOverChainTablesAreRefused) {
  ExpectRejected("SELECT * FROM eth_rpc.blocks b WHERE NOT EXISTS (SELECT 1 FROM eth_rpc.logs l "
                 "WHERE l.block_num = b.block_num)",
                 "NonIncrementalOp: NOT EXISTS requires knowing that no matching row arrives in "
                 "a later block");
  ExpectRejected("SELECT * FROM eth_rpc.transactions WHERE tx_hash NOT IN "
                 "(SELECT tx_hash FROM eth_rpc.logs)",
                 "NonIncrementalOp: NOT IN (subquery) requires knowing that no matching row "
                 "arrives in a later block");
  ExpectRejected("SELECT * FROM eth_rpc.blocks WHERE gas_used > ALL (SELECT gas_used FROM "
                 "eth_rpc.transactions)",
                 "NonIncrementalOp: ALL (subquery) requires comparing with every row, including "
                 "those of later blocks");
  ExpectRejected("SELECT block_num, (SELECT hash FROM eth_rpc.blocks b WHERE b.block_num = "
                 "l.block_num) FROM eth_rpc.logs l",
                 "NonIncrementalOp: a scalar subquery over chain tables requires its value over "
                 "all blocks, which a later block may change (in the select list)");
  ExpectRejected("SELECT block_num, EXISTS (SELECT 1 FROM eth_rpc.logs l WHERE l.tx_hash = "
                 "t.tx_hash) FROM eth_rpc.transactions t",
                 "NonIncrementalOp: a subquery over chain tables here (in the select list) "
                 "requires its answer over all blocks, which a later block may change; EXISTS "
                 "and IN (subquery) stream in WHERE, under AND and OR");
  ExpectRejected("SELECT * FROM eth_rpc.blocks b WHERE CASE WHEN EXISTS (SELECT 1 FROM "
                 "eth_rpc.logs) THEN true END",
                 "NonIncrementalOp: a subquery over chain tables here (in WHERE) requires its "
                 "answer over all blocks, which a later block may change; EXISTS and IN "
                 "(subquery) stream in WHERE, under AND and OR");
  ExpectRejected("SELECT block_num, count(*) FROM eth_rpc.blocks b WHERE EXISTS (SELECT 1 FROM "
                 "eth_rpc.logs l WHERE l.block_num = b.block_num + 1) GROUP BY block_num",
                 "NonIncrementalOp: GROUP BY block_num over EXISTS or IN (subquery) requires "
                 "knowing a block's rows when it closes, but a row can qualify when a later "
                 "block adds its match");
}

TEST_F(Incremental, GroupingByTheJoinedRowsBlock) {
  auto info = ExpectAccepted(
      "SELECT block_num(), count(*) FROM eth_rpc.transactions a JOIN eth_rpc.transactions b "
      "ON a.\"from\" = b.\"from\" GROUP BY block_num()");
  EXPECT_TRUE(info.has_block_grouping);
  ExpectAccepted(
      "SELECT DISTINCT ON (block_num()) block_num(), parent_num FROM (SELECT child.block_num, "
      "parent.block_num AS parent_num FROM eth_rpc.blocks child JOIN eth_rpc.blocks parent ON "
      "child.parent_hash = parent.hash UNION ALL SELECT child.block_num, parent.block_num AS "
      "parent_num FROM eth_rpc.blocks child JOIN eth_rpc.blocks parent ON child.parent_hash = "
      "parent.hash)");
  // Through a subquery's column that is its rows' block, by position through UNION ALL.
  ExpectAccepted(
      "SELECT DISTINCT ON (_block_num) _block_num, block_num FROM (SELECT _block_num, block_num "
      "FROM eth_rpc.blocks UNION ALL SELECT _block_num, block_num FROM eth_rpc.blocks)");
  ExpectAccepted("SELECT k, count(*) FROM (SELECT block_num() AS k FROM eth_rpc.blocks a JOIN "
                 "eth_rpc.blocks b ON a.miner = b.miner) GROUP BY k");
  // A subquery's block_num that is one side's block, not the joined row's.
  ExpectRejected(
      "SELECT block_num, count(*) FROM (SELECT a.block_num FROM eth_rpc.blocks a JOIN "
      "eth_rpc.blocks b ON a.miner = b.miner) GROUP BY block_num",
      kGroupByJoin);
  // Columns swapped between UNION ALL branches are not the block.
  ExpectRejected(
      "SELECT DISTINCT ON (x) x FROM (SELECT block_num AS x, gas_used AS y FROM eth_rpc.blocks "
      "UNION ALL SELECT gas_used AS x, block_num AS y FROM eth_rpc.blocks)",
      "NonIncrementalOp: DISTINCT ON requires global deduplication state unless one of its keys "
      "is block_num");
  ExpectRejected("SELECT block_num FROM eth_rpc.blocks UNION ALL SELECT 1",
                 "NonIncrementalOp: a UNION ALL branch that reads no chain table has no block to "
                 "send its rows in");
}

}  // namespace

TEST(IncrementalJoins, BlockAlignedJoinsAreRecognized) {
  auto on = InfoOf("SELECT * FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
                   "ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash");
  EXPECT_TRUE(on.has_join);
  EXPECT_TRUE(on.joins_on_block_num);
  auto usingb = InfoOf("SELECT * FROM eth_rpc.blocks JOIN eth_rpc.logs USING (block_num)");
  EXPECT_TRUE(usingb.joins_on_block_num);
  auto cross = InfoOf("SELECT * FROM eth_rpc.blocks b JOIN eth_rpc.transactions t "
                      "ON t.block_num = b.block_num + 2");
  EXPECT_TRUE(cross.has_join);
  EXPECT_FALSE(cross.joins_on_block_num);
  auto other = InfoOf("SELECT * FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
                      "ON t.tx_hash = l.tx_hash");
  EXPECT_FALSE(other.joins_on_block_num);
}

}  // namespace sluice::sql
