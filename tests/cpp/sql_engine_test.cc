#include <atomic>
#include <thread>

#include "common/server_metrics.h"
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
  explicit Fixture(int64_t scan_cache_max_mb = 0) {
    storage::StoreOptions o;
    o.data_dir = dir.path();
    o.dataset = "toy";
    o.tables = ToyTables();
    store = *storage::BlockStore::Open(o);
    EngineOptions eo;
    eo.data_dir = dir.path();
    eo.scan_cache_max_mb = scan_cache_max_mb;
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
  // (WHERE true: DuckDB answers, not a direct scan.)
  auto reader = *s->Execute("SELECT * FROM toy.events WHERE true", 10000);
  int64_t total = 0;
  int batches = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> b;
    ASSERT_TRUE(reader->ReadNext(&b).ok());
    if (!b) break;
    total += b->num_rows();
    ++batches;
    EXPECT_LE(b->num_rows(), 10000);
    if (b->num_rows() < 10000) {
      EXPECT_EQ(total, 30000);  // only the last may be short
    }
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
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsInvalid()) << sql << ": " << r.status().ToString();
    }
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

namespace {
uint64_t DirectScans() { return common::ServerMetrics::Get().direct_scans().value(); }
uint64_t CachedSegments() { return common::ServerMetrics::Get().scan_segments(true).value(); }

// The same query answered by DuckDB: a WHERE clause that is not only block_num
// comparisons keeps it off the direct path.
std::string ViaEngine(const std::string& sql) {
  return sql.find(" WHERE ") == std::string::npos ? sql + " WHERE true" : sql + " AND true";
}

void ExpectSameAnswer(Session* s, const std::string& sql, int64_t rows = 65536) {
  const auto before = DirectScans();
  auto direct = RunAll(s, sql, rows);
  EXPECT_EQ(DirectScans(), before + 1) << sql << ": not a direct scan";
  auto engine = RunAll(s, ViaEngine(sql), rows);
  EXPECT_EQ(DirectScans(), before + 1) << ViaEngine(sql) << ": a direct scan";
  ASSERT_TRUE(direct && engine) << sql;
  EXPECT_TRUE(direct->schema()->Equals(*engine->schema(), /*check_metadata=*/true))
      << sql << "\n" << direct->schema()->ToString() << "\n" << engine->schema()->ToString();
  EXPECT_TRUE(direct->Equals(*engine)) << sql;
}
}  // namespace

TEST(DirectScan, SameAnswerAsTheEngine) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 99, {})).ok());
  ASSERT_TRUE(f.store->Append(ToyRange(100, 149, ToyHash(99))).ok());
  ASSERT_TRUE(f.store->Append(ToyRange(150, 150, ToyHash(149))).ok());
  auto s = *f.engine->OpenSession();
  for (const char* sql : {
           "SELECT * FROM toy.blocks",
           "SELECT * FROM toy.events",
           "SELECT payload, block_num AS b, payload FROM toy.events",
           "select HASH, Block_Num from TOY.Blocks",
           "SELECT e.idx, e.block_num FROM memory.toy.events AS e",
           "SELECT * FROM toy.events WHERE block_num BETWEEN 90 AND 120",
           "SELECT * FROM toy.events WHERE block_num > 10 AND block_num <= 100",
           "SELECT * FROM toy.events WHERE 12 >= block_num",
           "SELECT * FROM toy.events WHERE block_num = 150",
           "SELECT * FROM toy.events WHERE block_num < 0",
           "SELECT * FROM toy.events WHERE block_num >= -5",
           "SELECT * FROM toy.events WHERE block_num > 149 AND block_num < 100",
       }) {
    ExpectSameAnswer(s.get(), sql);
  }
  // A microbatch's restriction applies to a direct scan too.
  ASSERT_TRUE(s->SetTableRange("toy", "events", {95, 101}).ok());
  ExpectSameAnswer(s.get(), "SELECT * FROM toy.events");
  ExpectSameAnswer(s.get(), "SELECT * FROM toy.events WHERE block_num >= 100");
}

TEST(DirectScan, OnlyPlainScans) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 9, {})).ok());
  auto s = *f.engine->OpenSession();
  const auto before = DirectScans();
  for (const char* sql : {
           "SELECT * FROM toy.events LIMIT 5", "SELECT * FROM toy.events ORDER BY idx",
           "SELECT DISTINCT block_num FROM toy.events", "SELECT block_num + 1 FROM toy.events",
           "SELECT * FROM toy.events WHERE idx <> 1", "SELECT * FROM toy.events WHERE block_num = 1 OR block_num = 2",
           "SELECT count(*) FROM toy.events", "SELECT * FROM toy.events e JOIN toy.blocks b USING (block_num)",
           "WITH x AS (SELECT * FROM toy.events) SELECT * FROM x", "SELECT * EXCLUDE (idx) FROM toy.events",
           "SELECT * FROM toy.events USING SAMPLE 5", "SELECT 1 FROM toy.events",
           "SELECT * FROM toy.events WHERE block_num = 1.5",
       }) {
    auto t = RunAll(s.get(), sql);
    EXPECT_TRUE(t != nullptr) << sql;
  }
  EXPECT_EQ(DirectScans(), before);
  // The engine still answers them right.
  EXPECT_EQ(RunAll(s.get(), "SELECT * FROM toy.events LIMIT 5")->num_rows(), 5);
  EXPECT_EQ(RunAll(s.get(), "SELECT * FROM toy.events WHERE idx <> 1")->num_rows(), 20);
}

TEST(DirectScan, RangesAndComputedColumns) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 99, {})).ok());
  ASSERT_TRUE(f.store->Append(ToyRange(100, 199, ToyHash(99))).ok());
  auto s = *f.engine->OpenSession();
  const auto before = DirectScans();
  // Each compared with DuckDB's answer (ExpectSameAnswer), none answered by it.
  const std::vector<std::string> queries = {
      "SELECT * FROM toy.events WHERE idx = 1",
      "SELECT block_num, idx FROM toy.events WHERE idx >= 1 AND block_num BETWEEN 50 AND 150",
      "SELECT * FROM toy.events WHERE idx BETWEEN -3 AND 0",
      "SELECT * FROM toy.events WHERE idx > 5",
      "SELECT idx, -CAST(idx AS DOUBLE) * 2.5, CAST(block_num AS DOUBLE) / 3 - 1e3 AS x "
      "FROM toy.events WHERE idx < 2",
  };
  for (const auto& sql : queries) ExpectSameAnswer(s.get(), sql);
  EXPECT_EQ(DirectScans(), before + static_cast<int64_t>(queries.size()));
  EXPECT_EQ(RunAll(s.get(), "SELECT * FROM toy.events WHERE idx > 5")->num_rows(), 0);
}

TEST(DirectScan, LargeSelectiveScanDecodesRowGroupsAhead) {
  // A segment of 80,000 rows (more than kNeedleDecodeRows): a range filter or a
  // computed column decodes its row groups side by side on the thread pool and
  // makes batches on the read-ahead thread; the answer is still DuckDB's, in order,
  // and a cancelled scan stops.
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 7999, {}, /*fork=*/0, /*per_block=*/10)).ok());
  auto s = *f.engine->OpenSession();
  ExpectSameAnswer(s.get(), "SELECT * FROM toy.events WHERE idx >= 3");
  ExpectSameAnswer(s.get(), "SELECT block_num, CAST(idx AS DOUBLE) / 4 AS q FROM toy.events", 1000);
  auto reader = *s->Execute("SELECT * FROM toy.events WHERE idx < 9", 1000);
  std::shared_ptr<arrow::RecordBatch> b;
  ASSERT_TRUE(reader->ReadNext(&b).ok());
  s->Interrupt();
  arrow::Status st;
  do {
    st = reader->ReadNext(&b);
  } while (st.ok() && b);
  EXPECT_TRUE(st.IsCancelled()) << st.ToString();
}

TEST(DirectScan, FetchSizeIsExact) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 9, {})).ok());
  ASSERT_TRUE(f.store->Append(ToyRange(10, 19, ToyHash(9))).ok());
  auto s = *f.engine->OpenSession();
  auto reader = *s->Execute("SELECT * FROM toy.events", 7, nullptr, /*soft_batch_bytes=*/0);
  int64_t total = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> b;
    ASSERT_TRUE(reader->ReadNext(&b).ok());
    if (!b) break;
    total += b->num_rows();
    if (total < 60) {
      EXPECT_EQ(b->num_rows(), 7);  // across the two segments too
    }
  }
  EXPECT_EQ(total, 60);
}

TEST(DirectScan, InterruptStops) {
  Fixture f;
  ASSERT_TRUE(f.store->Append(ToyRange(0, 999, {})).ok());
  auto s = *f.engine->OpenSession();
  const auto before = DirectScans();
  auto reader = *s->Execute("SELECT * FROM toy.events", 10);
  EXPECT_EQ(DirectScans(), before + 1);
  std::shared_ptr<arrow::RecordBatch> b;
  ASSERT_TRUE(reader->ReadNext(&b).ok());
  s->Interrupt();
  auto st = reader->ReadNext(&b);
  EXPECT_TRUE(st.IsCancelled()) << st.ToString();
}

TEST(DirectScan, CacheServesTheSameRows) {
  Fixture f(/*scan_cache_max_mb=*/64);
  ASSERT_TRUE(f.store->Append(ToyRange(0, 99, {})).ok());
  ASSERT_TRUE(f.store->Append(ToyRange(100, 199, ToyHash(99))).ok());
  auto s1 = *f.engine->OpenSession();
  auto first = RunAll(s1.get(), "SELECT * FROM toy.events");
  const auto cached = CachedSegments();
  // The first full read only marks the segments; the second caches them.
  EXPECT_TRUE(first->Equals(*RunAll(s1.get(), "SELECT * FROM toy.events")));
  EXPECT_EQ(CachedSegments(), cached);
  // Read again: from the cache, every column or some, whole or a block range.
  auto s2 = *f.engine->OpenSession();
  ExpectSameAnswer(s2.get(), "SELECT * FROM toy.events");
  EXPECT_EQ(CachedSegments(), cached + 2);
  ExpectSameAnswer(s2.get(), "SELECT payload, block_num FROM toy.events WHERE block_num >= 150");
  EXPECT_GT(CachedSegments(), cached + 2);
  EXPECT_TRUE(first->Equals(*RunAll(s2.get(), "SELECT * FROM toy.events")));
  // A reorg replaces segments: the cache never answers for the old ones.
  ASSERT_TRUE(f.store->TruncateAfter(149).ok());
  ASSERT_TRUE(f.store->Append(ToyRange(150, 160, ToyHash(149), /*fork=*/1, /*per_block=*/5)).ok());
  auto s3 = *f.engine->OpenSession();
  ExpectSameAnswer(s3.get(), "SELECT * FROM toy.events");
  ExpectSameAnswer(s3.get(), "SELECT * FROM toy.blocks");
  auto after = RunAll(s3.get(), "SELECT * FROM toy.events");
  EXPECT_EQ(after->num_rows(), 150 * 3 + 11 * 5);
}

TEST(DirectScan, ConcurrentScansShareTheCache) {
  Fixture f(/*scan_cache_max_mb=*/64);
  ASSERT_TRUE(f.store->Append(ToyRange(0, 499, {})).ok());
  ASSERT_TRUE(f.store->Append(ToyRange(500, 999, ToyHash(499))).ok());
  auto s = *f.engine->OpenSession();
  auto want = RunAll(s.get(), "SELECT * FROM toy.events WHERE true");  // DuckDB's answer
  const auto cached = CachedSegments();
  std::vector<std::thread> threads;
  std::atomic<int> equal{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto session = *f.engine->OpenSession();
      for (int i = 0; i < 4; ++i) {
        auto got = RunAll(session.get(), "SELECT * FROM toy.events", 100);
        if (got && got->Equals(*want)) ++equal;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(equal.load(), 16);
  EXPECT_GT(CachedSegments(), cached);  // some were read from the cache meanwhile
}

TEST(DirectScan, CacheEntryOfAChangedFileIsNotUsed) {
  Fixture f(/*scan_cache_max_mb=*/64);
  ASSERT_TRUE(f.store->Append(ToyRange(0, 99, {})).ok());
  auto s = *f.engine->OpenSession();
  auto first = RunAll(s.get(), "SELECT * FROM toy.events");
  RunAll(s.get(), "SELECT * FROM toy.events");  // (cached on the second read)
  {
    const auto cached = CachedSegments();
    EXPECT_TRUE(first->Equals(*RunAll(s.get(), "SELECT * FROM toy.events")));
    EXPECT_EQ(CachedSegments(), cached + 1);
  }
  // Every entry's source identity is checked: touch the segment file.
  int touched = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(f.dir.path() / "toy" / "events")) {
    if (e.path().extension() != ".parquet" || e.path().filename() == "empty.parquet") continue;
    std::filesystem::last_write_time(e.path(), std::filesystem::last_write_time(e.path()) + std::chrono::seconds(5));
    ++touched;
  }
  ASSERT_EQ(touched, 1);
  const auto cached = CachedSegments();
  EXPECT_TRUE(first->Equals(*RunAll(s.get(), "SELECT * FROM toy.events")));
  EXPECT_EQ(CachedSegments(), cached);  // read from Parquet again
}

}  // namespace sluice::sql
