// QueryCache (sql/query_cache.h): remembered by SQL text, least recently used
// forgotten first, replaced in place, oversized SQL never remembered.
#include <gtest/gtest.h>

#include "sql/query_cache.h"

namespace sluice::sql {
namespace {

std::shared_ptr<const CheckedQuery> Q(const std::string& engine_sql) {
  auto q = std::make_shared<CheckedQuery>();
  q->engine_sql = engine_sql;
  return q;
}

TEST(QueryCache, ForgetsTheLeastRecentlyUsed) {
  QueryCache cache(2);
  cache.Put("a", Q("A"));
  cache.Put("b", Q("B"));
  ASSERT_NE(cache.Find("a"), nullptr);  // a is now the most recently used
  cache.Put("c", Q("C"));               // ...so b goes
  EXPECT_EQ(cache.Find("b"), nullptr);
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.Find("a")->engine_sql, "A");
  EXPECT_EQ(cache.Find("c")->engine_sql, "C");
}

TEST(QueryCache, ReplacesAnEntry) {
  QueryCache cache(2);
  cache.Put("a", Q("A"));
  auto with_scan = std::make_shared<CheckedQuery>(*cache.Find("a"));
  with_scan->scan = PlannedScan{};
  cache.Put("a", with_scan);
  cache.Put("b", Q("B"));
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_TRUE(cache.Find("a")->scan.has_value());
  EXPECT_NE(cache.Find("b"), nullptr);
}

TEST(QueryCache, DoesNotRememberOversizedSql) {
  QueryCache cache;
  const std::string big(QueryCache::kMaxSqlBytes + 1, ' ');
  cache.Put(big, Q("X"));
  EXPECT_EQ(cache.Find(big), nullptr);
  QueryCache none(0);
  none.Put("a", Q("A"));
  EXPECT_EQ(none.Find("a"), nullptr);
}

}  // namespace
}  // namespace sluice::sql
