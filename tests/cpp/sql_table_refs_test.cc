// ChainTablesRead (sql/table_refs.h) on DuckDB's own parse trees of queries:
// which chain tables must be fetched before a query runs.
#include "gtest/gtest.h"
#include "sql/duckdb_handles.h"
#include "sql/sandbox.h"
#include "sql/table_refs.h"

namespace sluice::sql {

namespace {

class TableRefs : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(duckdb_open(nullptr, db_.out()), DuckDBSuccess);
    ASSERT_EQ(duckdb_connect(db_.get(), conn_.out()), DuckDBSuccess);
  }
  std::set<std::string> Read(const std::string& sql,
                             const std::map<std::string, nlohmann::json>& views = {}) {
    auto tree = ParseTree(conn_.get(), sql);
    EXPECT_TRUE(tree.ok()) << tree.status().ToString();
    return ChainTablesRead(*tree, views, tables_);
  }
  Database db_;
  Connection conn_;
  std::map<std::string, std::vector<std::string>> tables_ = {
      {"eth_rpc", {"blocks", "transactions", "logs"}}};
};

}  // namespace

TEST_F(TableRefs, QualifiedReferencesJoinsAndSubqueries) {
  EXPECT_EQ(Read("SELECT * FROM eth_rpc.blocks"), std::set<std::string>{"eth_rpc.blocks"});
  EXPECT_EQ(Read("SELECT b.hash FROM eth_rpc.blocks b JOIN ETH_RPC.Logs l USING (block_num) "
                 "WHERE l.tx_hash IN (SELECT tx_hash FROM eth_rpc.transactions)"),
            (std::set<std::string>{"eth_rpc.blocks", "eth_rpc.logs", "eth_rpc.transactions"}));
  EXPECT_TRUE(Read("SELECT 1").empty());
}

TEST_F(TableRefs, DerivedTablesAreExpanded) {
  auto view = ParseTree(conn_.get(), "SELECT * FROM eth_rpc.logs WHERE topic0 IS NOT NULL");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(Read("SELECT count(*) FROM eth.transfers", {{"eth.transfers", *view}}),
            std::set<std::string>{"eth_rpc.logs"});
}

TEST_F(TableRefs, UnqualifiedNamesCountInEveryDataset) {
  EXPECT_EQ(Read("WITH blocks AS (SELECT 1 AS x) SELECT * FROM blocks"),
            std::set<std::string>{"eth_rpc.blocks"});
}

}  // namespace sluice::sql
