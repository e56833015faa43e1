// The delta rewrite (sql/delta_rewrite.h) against DuckDB itself: for each query,
// the rows of its delta over consecutive microbatches — split at random, one block
// at a time, all at once — must add up to exactly the rows of the query itself
// over all blocks (a multiset), and each microbatch's rows must come in block
// order. The tables are small chain-shaped tables in an in-memory DuckDB, with
// join keys drawn from small domains so that matches span blocks.
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sql/block_names.h"
#include "sql/delta_rewrite.h"
#include "sql/duckdb_handles.h"
#include "sql/incremental.h"
#include "sql/parse_tree.h"
#include "sql/query_normalize.h"
#include "sql/sandbox.h"

namespace sluice::sql {

namespace {

using json = nlohmann::json;
constexpr uint64_t kBlocks = 24;

class DeltaRewrite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new Database();
    conn_ = new Connection();
    ASSERT_EQ(duckdb_open(nullptr, db_->out()), DuckDBSuccess);
    ASSERT_EQ(duckdb_connect(db_->get(), conn_->out()), DuckDBSuccess);
    auto names = AggregateFunctionNames(conn_->get());
    ASSERT_TRUE(names.ok());
    aggregates_ = new std::set<std::string>(*names);
    Run("CREATE SCHEMA eth_rpc; CREATE SCHEMA derived; CREATE SCHEMA sluice_stream;");
    // blocks: a chain; transactions: senders and receivers from 5 addresses;
    // logs: 0-2 per transaction, from 4 contracts.
    Run("CREATE TABLE eth_rpc.blocks AS SELECT range::UBIGINT AS block_num, "
        "md5(range::VARCHAR) AS hash, CASE WHEN range = 0 THEN 'genesis' ELSE "
        "md5((range - 1)::VARCHAR) END AS parent_hash, 'm' || (range % 3) AS miner, "
        "(range * 7919 % 13)::UBIGINT AS gas_used FROM range(" + std::to_string(kBlocks) + ")");
    Run("CREATE TABLE eth_rpc.transactions AS SELECT b.range::UBIGINT AS block_num, "
        "i::UINTEGER AS tx_index, md5(b.range || '/' || i) AS tx_hash, "
        "'a' || ((b.range * 3 + i * 5) % 5) AS \"from\", 'a' || ((b.range + i * 2) % 5) AS \"to\", "
        "((b.range * 31 + i) % 7)::VARCHAR AS value FROM range(" + std::to_string(kBlocks) +
        ") b, range(0, (b.range % 3)::BIGINT) t(i)");
    Run("CREATE TABLE eth_rpc.logs AS SELECT t.block_num, (t.tx_index * 2 + j)::UINTEGER AS "
        "log_index, t.tx_hash, 'c' || ((t.block_num + j) % 4) AS address FROM "
        "eth_rpc.transactions t, range(0, ((t.block_num + t.tx_index) % 3)::BIGINT) l(j)");
    for (const char* table : {"blocks", "transactions", "logs"}) {
      for (auto state : {RangeState::kDelta, RangeState::kHistory, RangeState::kNew}) {
        const char* lo = state == RangeState::kDelta ? "getvariable('s')::BIGINT" : "0";
        const char* hi = state == RangeState::kHistory ? "getvariable('s')::BIGINT - 1"
                                                       : "getvariable('e')::BIGINT";
        Run(std::string("SET VARIABLE s = 0::UBIGINT; SET VARIABLE e = 0::UBIGINT; ") +
            "CREATE VIEW sluice_stream." + StateViewName("eth_rpc", table, state) +
            " AS SELECT * FROM eth_rpc." + table + " WHERE block_num::BIGINT BETWEEN " + lo +
            " AND " + hi);
      }
    }
    views_ = new std::map<std::string, std::string>{
        {"derived.transfers",
         "SELECT t.block_num, t.tx_hash, t.\"from\", l.address FROM eth_rpc.transactions t "
         "JOIN eth_rpc.logs l ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash"},
    };
    for (const auto& [name, sql] : *views_) Run("CREATE VIEW " + name + " AS " + sql);
  }
  static void TearDownTestSuite() {
    delete views_;
    delete aggregates_;
    delete conn_;
    delete db_;
  }

  static void Run(const std::string& sql) {
    Result res;
    ASSERT_EQ(duckdb_query(conn_->get(), sql.c_str(), res.out()), DuckDBSuccess)
        << sql << ": " << duckdb_result_error(res.out());
  }

  static Relations TestRelations() {
    Relations r;
    r.chain_table = [](const std::string& catalog, const std::string& schema,
                       const std::string& table) -> std::optional<ChainTable> {
      if (!catalog.empty() || tree::Lower(schema) != "eth_rpc") return std::nullopt;
      for (const char* t : {"blocks", "transactions", "logs"}) {
        if (tree::Lower(table) == t) return ChainTable{"eth_rpc", t};
      }
      return std::nullopt;
    };
    r.view_tree = [](const std::string& schema, const std::string& table) -> std::optional<json> {
      auto it = views_->find(tree::Lower(schema + "." + table));
      if (it == views_->end()) return std::nullopt;
      auto t = ParseTree(conn_->get(), it->second);
      return t.ok() ? std::optional<json>(*t) : std::nullopt;
    };
    return r;
  }

  // The rows of a query as text, one string per row (columns joined); with
  // `drop_last`, without its last column, and the last column's values in `blocks`.
  static std::vector<std::string> Rows(const std::string& sql, bool drop_last = false,
                                       std::vector<int64_t>* blocks = nullptr) {
    Result res;
    EXPECT_EQ(duckdb_query(conn_->get(), sql.c_str(), res.out()), DuckDBSuccess)
        << sql << ": " << duckdb_result_error(res.out());
    std::vector<std::string> rows;
    const idx_t cols = duckdb_column_count(res.out());
    const idx_t keep = drop_last ? cols - 1 : cols;
    for (idx_t r = 0; r < duckdb_row_count(res.out()); ++r) {
      std::string row;
      for (idx_t c = 0; c < keep; ++c) {
        char* v = duckdb_value_varchar(res.out(), c, r);
        row += (v ? v : "NULL") + std::string("|");
        duckdb_free(v);
      }
      if (blocks != nullptr && drop_last) blocks->push_back(duckdb_value_int64(res.out(), cols - 1, r));
      rows.push_back(row);
    }
    return rows;
  }

  // The delta query of `sql`, as the engine builds it.
  static std::string DeltaSql(const std::string& sql, bool* ordered) {
    auto parsed = ParseTree(conn_->get(), sql);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    IncrementalContext ctx;
    ctx.is_aggregate = [](const std::string& n) { return aggregates_->count(n) > 0; };
    Relations relations = TestRelations();
    ctx.view_tree = relations.view_tree;
    auto st = CheckIncremental(*parsed, ctx);
    EXPECT_TRUE(st.ok()) << sql << ": " << st.ToString();
    json tree = *parsed;
    json* root = *tree::MutableRootNode(tree);
    NormalizeOptions normalize;
    normalize.predicates_to_where = true;
    EXPECT_TRUE(NormalizeQuery(root, relations, normalize).ok());
    BlockNameOptions names;
    names.is_aggregate = ctx.is_aggregate;
    names.top_block = true;
    st = RewriteBlockNames(root, relations, names, ordered);
    EXPECT_TRUE(st.ok()) << sql << ": " << st.ToString();
    DeltaOptions options;
    options.is_aggregate = ctx.is_aggregate;
    options.ordered = *ordered;
    auto delta = DeltaQuery(*root, relations, options);
    EXPECT_TRUE(delta.ok()) << sql << ": " << delta.status().ToString();
    *root = *delta;
    auto text = tree::Deparse(conn_->get(), tree);
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    return text.ValueOr("");
  }

  // The batch query as the engine runs it: `_block_num` and `block_num()` rewritten
  // (checked in tests/python/test_streaming_sql.py against the rows' own columns).
  static std::string BatchSql(const std::string& sql) {
    auto parsed = ParseTree(conn_->get(), sql);
    if (!parsed.ok() || !UsesBlockNames(*parsed)) return sql;
    json tree = *parsed;
    json* root = *tree::MutableRootNode(tree);
    Relations relations = TestRelations();
    EXPECT_TRUE(NormalizeQuery(root, relations, NormalizeOptions{}).ok());
    BlockNameOptions names;
    names.is_aggregate = [](const std::string& n) { return aggregates_->count(n) > 0; };
    auto st = RewriteBlockNames(root, relations, names);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return tree::Deparse(conn_->get(), tree).ValueOr(sql);
  }

  // Stream `sql` over microbatches of the given sizes; compare with the batch answer.
  static void ExpectDeltasAddUp(const std::string& sql, const std::vector<uint64_t>& sizes) {
    bool ordered = false;
    const std::string delta = DeltaSql(sql, &ordered);
    ASSERT_FALSE(delta.empty());
    std::multiset<std::string> streamed;
    uint64_t s = 0;
    for (size_t i = 0; s < kBlocks; ++i) {
      const uint64_t e = std::min(kBlocks - 1, s + sizes[i % sizes.size()] - 1);
      Run("SET VARIABLE s = " + std::to_string(s) + "::UBIGINT; SET VARIABLE e = " +
          std::to_string(e) + "::UBIGINT;");
      std::vector<int64_t> blocks;
      for (auto& r : Rows(delta, ordered, &blocks)) streamed.insert(r);
      for (size_t k = 1; k < blocks.size(); ++k) {
        ASSERT_LE(blocks[k - 1], blocks[k]) << "rows in block order: " << delta;
      }
      s = e + 1;
    }
    auto want_rows = Rows(BatchSql(sql));
    std::multiset<std::string> want(want_rows.begin(), want_rows.end());
    ASSERT_FALSE(want.empty()) << "the test data must exercise " << sql;
    EXPECT_EQ(streamed, want) << sql << "\ndelta: " << delta;
  }

  static void ExpectAllSplitsAddUp(const std::string& sql) {
    ExpectDeltasAddUp(sql, {1});
    ExpectDeltasAddUp(sql, {kBlocks});
    ExpectDeltasAddUp(sql, {3, 1, 5, 2});
  }

  static Database* db_;
  static Connection* conn_;
  static std::set<std::string>* aggregates_;
  static std::map<std::string, std::string>* views_;
};

Database* DeltaRewrite::db_ = nullptr;
Connection* DeltaRewrite::conn_ = nullptr;
std::set<std::string>* DeltaRewrite::aggregates_ = nullptr;
std::map<std::string, std::string>* DeltaRewrite::views_ = nullptr;

}  // namespace

TEST_F(DeltaRewrite, OneTable) {
  ExpectAllSplitsAddUp("SELECT block_num, hash FROM eth_rpc.blocks WHERE gas_used > 3");
}

TEST_F(DeltaRewrite, SelfJoins) {
  ExpectAllSplitsAddUp(
      "SELECT child.block_num, parent.block_num AS parent_num FROM eth_rpc.blocks child "
      "JOIN eth_rpc.blocks parent ON child.parent_hash = parent.hash");
  ExpectAllSplitsAddUp(
      "SELECT a.block_num, b.block_num AS other, a.\"from\" FROM eth_rpc.transactions a "
      "JOIN eth_rpc.transactions b ON a.\"from\" = b.\"from\" AND a.tx_hash <> b.tx_hash");
  ExpectAllSplitsAddUp(  // three references of one table
      "SELECT a.block_num, b.block_num, c.block_num FROM eth_rpc.blocks a, eth_rpc.blocks b, "
      "eth_rpc.blocks c WHERE a.miner = b.miner AND b.miner = c.miner AND a.gas_used < b.gas_used "
      "AND b.gas_used < c.gas_used");
}

TEST_F(DeltaRewrite, CtesAndViewsReadTwice) {
  ExpectAllSplitsAddUp(
      "WITH l AS (SELECT block_num, address, log_index FROM eth_rpc.logs) SELECT x.block_num, "
      "x.log_index, y.block_num AS other FROM l x JOIN l y ON x.address = y.address "
      "AND x.block_num < y.block_num");
  ExpectAllSplitsAddUp(
      "SELECT a.tx_hash, b.tx_hash FROM derived.transfers a JOIN derived.transfers b "
      "ON a.address = b.address AND a.\"from\" = b.\"from\"");
}

TEST_F(DeltaRewrite, UnionAllOfATableWithItself) {
  ExpectAllSplitsAddUp(
      "SELECT block_num, hash FROM eth_rpc.blocks UNION ALL SELECT block_num, hash FROM "
      "eth_rpc.blocks WHERE gas_used > 5");
  ExpectAllSplitsAddUp(
      "SELECT block_num, tx_hash FROM eth_rpc.transactions UNION ALL SELECT l.block_num, "
      "t.tx_hash FROM eth_rpc.logs l JOIN eth_rpc.transactions t ON l.address = 'c' || t.\"to\"[2:]");
}

TEST_F(DeltaRewrite, ExistsAndInWithMatchesEarlierAndLater) {
  ExpectAllSplitsAddUp(  // the match in an earlier block
      "SELECT b.block_num FROM eth_rpc.blocks b WHERE EXISTS (SELECT 1 FROM eth_rpc.logs l "
      "WHERE l.block_num + 2 = b.block_num)");
  ExpectAllSplitsAddUp(  // ... in a later one
      "SELECT b.block_num FROM eth_rpc.blocks b WHERE EXISTS (SELECT 1 FROM eth_rpc.logs l "
      "WHERE l.block_num = b.block_num + 2)");
  ExpectAllSplitsAddUp(  // anywhere, several matches: the row once
      "SELECT t.block_num, t.tx_hash FROM eth_rpc.transactions t WHERE t.\"from\" IN "
      "(SELECT \"to\" FROM eth_rpc.transactions WHERE value <> '0')");
  ExpectAllSplitsAddUp(
      "SELECT block_num, tx_hash FROM eth_rpc.transactions t WHERE t.value = '3' OR EXISTS "
      "(SELECT 1 FROM eth_rpc.logs l WHERE l.tx_hash = t.tx_hash AND l.address = 'c1')");
  ExpectAllSplitsAddUp(
      "SELECT b.block_num, b.miner FROM eth_rpc.blocks b SEMI JOIN eth_rpc.logs l "
      "ON l.block_num = b.block_num + 1");
  ExpectAllSplitsAddUp(  // nested, and joined
      "SELECT t.block_num, l.log_index FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
      "ON l.tx_hash = t.tx_hash WHERE t.\"to\" IN (SELECT \"from\" FROM eth_rpc.transactions u "
      "WHERE EXISTS (SELECT 1 FROM eth_rpc.blocks b WHERE b.block_num = u.block_num + 3))");
  ExpectAllSplitsAddUp(  // in a FROM subquery under a join
      "SELECT x.block_num, y.block_num FROM (SELECT * FROM eth_rpc.blocks b WHERE EXISTS "
      "(SELECT 1 FROM eth_rpc.logs l WHERE l.block_num = b.block_num + 1)) x JOIN "
      "eth_rpc.blocks y ON x.miner = y.miner AND y.gas_used = 0");
}

TEST_F(DeltaRewrite, GroupingKeyedByTheRowsBlock) {
  ExpectAllSplitsAddUp("SELECT block_num, count(*) FROM eth_rpc.logs GROUP BY block_num");
  ExpectAllSplitsAddUp(
      "SELECT DISTINCT ON (_block_num) _block_num, block_num, gas_used FROM (SELECT _block_num, "
      "block_num, gas_used FROM eth_rpc.blocks UNION ALL SELECT _block_num, block_num, gas_used "
      "FROM eth_rpc.blocks)");
  ExpectAllSplitsAddUp(
      "SELECT DISTINCT ON (block_num()) block_num(), parent_num FROM (SELECT child.block_num, "
      "parent.block_num AS parent_num FROM eth_rpc.blocks child JOIN eth_rpc.blocks parent ON "
      "child.parent_hash = parent.hash UNION ALL SELECT child.block_num, parent.block_num AS "
      "parent_num FROM eth_rpc.blocks child JOIN eth_rpc.blocks parent ON child.parent_hash = "
      "parent.hash)");
  ExpectAllSplitsAddUp(
      "SELECT COUNT(*) AS cnt FROM (SELECT _block_num, block_num FROM eth_rpc.blocks UNION ALL "
      "SELECT _block_num, block_num FROM eth_rpc.blocks) GROUP BY _block_num, block_num");
  ExpectAllSplitsAddUp(  // a join on something else, grouped by the joined row's block
      "SELECT block_num() AS b, count(*), min(a.tx_hash), max(b.\"to\") FROM "
      "eth_rpc.transactions a JOIN eth_rpc.transactions b ON a.\"from\" = b.\"from\" "
      "GROUP BY block_num() HAVING count(*) > 1");
  ExpectAllSplitsAddUp(
      "SELECT DISTINCT ON (block_num()) block_num(), parent.hash, child.* FROM eth_rpc.blocks "
      "child JOIN eth_rpc.blocks parent ON child.parent_hash = parent.hash");
  ExpectAllSplitsAddUp(  // an aligned join: one term
      "SELECT t.block_num, count(*) FROM eth_rpc.transactions t JOIN eth_rpc.logs l "
      "ON t.block_num = l.block_num AND t.tx_hash = l.tx_hash GROUP BY t.block_num");
}

TEST_F(DeltaRewrite, BlockNamesOfJoinedRows) {
  ExpectAllSplitsAddUp(
      "SELECT a.block_num, b.block_num, block_num(), a._block_num FROM eth_rpc.blocks a "
      "JOIN eth_rpc.logs b ON a.miner = 'm' || (b.log_index % 3)");
}

}  // namespace sluice::sql
