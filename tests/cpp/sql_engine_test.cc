#include "gtest/gtest.h"
#include "sql/engine.h"
#include "test_util.h"

namespace sluice::sql {

using sluice::testing::TempDir;
using sluice::testing::ToyHash;
using sluice::testing::ToyRange;
using sluice::testing::ToyTables;

namespace {

struct Fixture {
  TempDir dir;
  std::unique_ptr<storage::BlockStore> store;
  std::unique_ptr<Engine> engine;
  Fixture() {
    storage::StoreOptions o;
    o.data_dir = dir.path();
    o.dataset = "toy";
    o.tables = ToyTables();
    store = *storage::BlockStore::Open(o);
    EngineOptions eo;
    eo.data_dir = dir.path();
    engine = *Engine::Make(eo);
    EXPECT_TRUE(engine->AddDataset(store.get()).ok());
  }
};

std::shared_ptr<arrow::Table> RunAll(Session* s, const std::string& sql, int64_t rows = 65536) {
  auto reader = s->Execute(sql, rows);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return nullptr;
  auto table = (*reader)->ToTable();
  EXPECT_TRUE(table.ok()) << table.status().ToString();
  return table.ok() ? *table : nullptr;
}

uint64_t Scalar(Session* s, const std::string& sql) {
  auto t = RunAll(s, sql);
  auto a = std::static_pointer_cast<arrow::Int64Array>(t->column(0)->chunk(0));
  return a->Value(0);
}

}  // namespace

TEST(Engine, EmptyDatasetQueries) {
  Fixture f;
  auto s = *f.engine->OpenSession();
  EXPECT_EQ(Scalar(s.get(), "SELECT count(*) FROM toy.events"), 0u);
}

TEST(Engine, SessionSeesItsSnapshotOnly) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 9, {})).ok());
  auto s1 = *f.engine->OpenSession();
  ASSERT_TRUE(f.store->Append(ToyRange(10, 19, ToyHash(9))).ok());
  auto s2 = *f.engine->OpenSession();
  EXPECT_EQ(Scalar(s1.get(), "SELECT count(*) FROM toy.events"), 30u);
  EXPECT_EQ(Scalar(s2.get(), "SELECT count(*) FROM toy.events"), 60u);
  EXPECT_EQ(Scalar(s2.get(), "SELECT max(block_num)::BIGINT FROM toy.blocks"), 19u);
}

TEST(Engine, TableRangeRestricts) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 19, {})).ok());
  auto s = *f.engine->OpenSession();
  ASSERT_TRUE(s->SetTableRange("toy", "events", {5, 7}).ok());
  EXPECT_EQ(Scalar(s.get(), "SELECT count(*) FROM toy.events"), 9u);
  EXPECT_EQ(Scalar(s.get(), "SELECT count(*) FROM toy.blocks"), 20u);
}

TEST(Engine, CoalescesIntoLargeBatches) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 9999, {}, 0, 3)).ok());
  auto s = *f.engine->OpenSession();
  auto reader = *s->Execute("SELECT * FROM toy.events", 10000);
  int64_t total = 0;
  int batches = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> b;
    ASSERT_TRUE(reader->ReadNext(&b).ok());
    if (!b) break;
    total += b->num_rows();
    ++batches;
    EXPECT_LE(b->num_rows(), 10000);
    if (b->num_rows() < 10000) EXPECT_EQ(total, 30000);  // only the last may be short
  }
  EXPECT_EQ(total, 30000);
  EXPECT_EQ(batches, 3);
}

TEST(Engine, SandboxRefusals) {
  Fixture f;
  auto s = *f.engine->OpenSession();
  for (const char* sql : {
           "CREATE TABLE t (x INT)", "INSERT INTO toy.events VALUES (1, 1, 'x')",
           "DROP VIEW toy.events", "COPY (SELECT 1) TO '/tmp/sluice_escape.csv'",
           "ATTACH '/tmp/sluice_escape.db'", "INSTALL httpfs", "LOAD httpfs", "SET threads = 1",
           "PRAGMA version", "SELECT * FROM read_csv('/etc/passwd')",
           "SELECT * FROM read_parquet('/etc/passwd')", "SELECT * FROM '/etc/passwd'",
           "SELECT * FROM glob('/*')", "SELECT 1; SELECT 2", "EXPORT DATABASE '/tmp/x'",
           "SELECT * FROM read_text('/etc/hostname')",
           "SELECT (SELECT count(*) FROM read_csv_auto('/etc/passwd'))",
       }) {
    auto r = s->Prepare(sql);
    EXPECT_FALSE(r.ok()) << sql;
    if (!r.ok()) EXPECT_TRUE(r.status().IsInvalid()) << sql << ": " << r.status().ToString();
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/sluice_escape.csv"));
  EXPECT_FALSE(std::filesystem::exists("/tmp/sluice_escape.db"));
  // Allowed table functions still work.
  EXPECT_EQ(Scalar(s.get(), "SELECT count(*) FROM range(5)"), 5u);
}

TEST(Engine, InterruptStopsQuery) {
  Fixture f;
  auto s = *f.engine->OpenSession();
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    s->Interrupt();
  });
  // Cancellation lands while the engine is still computing (Execute) or fetching.
  arrow::Status st;
  auto reader = s->Execute("SELECT count(*) FROM range(100000000000) a", 1000);
  if (!reader.ok()) {
    st = reader.status();
  } else {
    std::shared_ptr<arrow::RecordBatch> b;
    st = (*reader)->ReadNext(&b);
  }
  t.join();
  EXPECT_TRUE(st.IsCancelled()) << st.ToString();
}

}  // namespace sluice::sql
