#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/stream_registry.h"
#include "gtest/gtest.h"

namespace sluice::common {

TEST(Metrics, RendersPrometheusTextSortedByName) {
  Registry r;
  r.GetCounter("b_requests_total", "Requests", {{"kind", "batch"}, {"outcome", "ok"}}).Increment(3);
  r.GetCounter("b_requests_total", "Requests", {{"kind", "jsonl"}, {"outcome", "error"}});
  r.GetGauge("a_streams", "Open streams").Set(-2);
  EXPECT_EQ(r.RenderPrometheus(),
            "# HELP a_streams Open streams\n"
            "# TYPE a_streams gauge\n"
            "a_streams -2\n"
            "# HELP b_requests_total Requests\n"
            "# TYPE b_requests_total counter\n"
            "b_requests_total{kind=\"batch\",outcome=\"ok\"} 3\n"
            "b_requests_total{kind=\"jsonl\",outcome=\"error\"} 0\n");
}

TEST(Metrics, SameNameAndLabelsIsTheSameMetric) {
  Registry r;
  auto& a = r.GetCounter("x_total", "X", {{"k", "v"}});
  auto& b = r.GetCounter("x_total", "X", {{"k", "v"}});
  auto& c = r.GetCounter("x_total", "X", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  a.Increment();
  b.Increment(2);
  EXPECT_EQ(a.value(), 3u);
}

TEST(Metrics, EscapesHelpAndLabelValues) {
  Registry r;
  r.GetGauge("g", "line\\one\ntwo", {{"q", "say \"hi\"\\\n"}}).Set(1);
  EXPECT_EQ(r.RenderPrometheus(),
            "# HELP g line\\\\one\\ntwo\n"
            "# TYPE g gauge\n"
            "g{q=\"say \\\"hi\\\"\\\\\\n\"} 1\n");
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.GetHistogram("depth_blocks", "Depths", {1, 2, 4}, {{"dataset", "eth"}});
  for (double v : {1.0, 1.0, 3.0, 100.0}) h.Observe(v);
  EXPECT_EQ(r.RenderPrometheus(),
            "# HELP depth_blocks Depths\n"
            "# TYPE depth_blocks histogram\n"
            "depth_blocks_bucket{dataset=\"eth\",le=\"1\"} 2\n"
            "depth_blocks_bucket{dataset=\"eth\",le=\"2\"} 2\n"
            "depth_blocks_bucket{dataset=\"eth\",le=\"4\"} 3\n"
            "depth_blocks_bucket{dataset=\"eth\",le=\"+Inf\"} 4\n"
            "depth_blocks_sum{dataset=\"eth\"} 105\n"
            "depth_blocks_count{dataset=\"eth\"} 4\n");
}

TEST(Metrics, CallbacksAreReadAtRenderingAndRemovedWithTheirRegistration) {
  Registry r;
  double head = 7;
  std::optional<double> node;
  {
    auto reg = r.AddCallback(MetricType::kGauge, "head_block", "Head", {{"dataset", "eth"}},
                             [&] { return std::optional<double>(head); });
    auto reg2 = r.AddCallback(MetricType::kGauge, "node_block", "Node", {},
                              [&] { return node; });
    head = 9;
    EXPECT_EQ(r.RenderPrometheus(),
              "# HELP head_block Head\n# TYPE head_block gauge\nhead_block{dataset=\"eth\"} 9\n"
              "# HELP node_block Node\n# TYPE node_block gauge\n");  // nullopt: no sample
    node = 12345678901.0;
    EXPECT_NE(r.RenderPrometheus().find("node_block 12345678901\n"), std::string::npos);
  }
  EXPECT_EQ(r.RenderPrometheus(),
            "# HELP head_block Head\n# TYPE head_block gauge\n"
            "# HELP node_block Node\n# TYPE node_block gauge\n");
}

TEST(Metrics, FormatsValues) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(0.25), "0.25");
  EXPECT_EQ(FormatMetricValue(1e300), "1e+300");
  EXPECT_EQ(FormatMetricValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatMetricValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatMetricValue(0.0 / 0.0), "NaN");
}

TEST(Metrics, CountersAreThreadSafe) {
  Registry r;
  auto& c = r.GetCounter("n_total", "N");
  auto& g = r.GetGauge("g", "G");
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Increment();
        g.Add(1);
        g.Add(-1);
        r.GetCounter("n_total", "N");  // lookups race with updates and renders
        if (i % 1000 == 0) r.RenderPrometheus();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 80000u);
  EXPECT_EQ(g.value(), 0);
}

TEST(StreamRegistry, ListsStreamsWhileTheyLiveAndKeepsTheGauge) {
  Gauge active;
  StreamRegistry registry(&active);
  auto a = registry.Register("SELECT 1", "eth");
  auto b = registry.Register("SELECT 2", "eth");
  EXPECT_EQ(active.value(), 2);
  a->StartMicrobatch(5, 9);
  a->AddSent(10, 100);
  auto list = registry.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].query, "SELECT 1");
  ASSERT_TRUE(list[0].microbatch.has_value());
  EXPECT_EQ(list[0].microbatch->second, 9u);
  EXPECT_FALSE(list[0].cursor_block.has_value());
  a->FinishMicrobatch(9, "0xab");
  list = registry.List();
  EXPECT_EQ(*list[0].cursor_block, 9u);
  EXPECT_EQ(list[0].cursor_hash, "0xab");
  EXPECT_FALSE(list[0].microbatch.has_value());
  EXPECT_EQ(list[0].rows_sent, 10u);
  EXPECT_EQ(list[0].microbatches, 1u);
  EXPECT_LT(list[0].id, list[1].id);
  a.reset();
  EXPECT_EQ(active.value(), 1);
  list = registry.List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].query, "SELECT 2");
  b.reset();
  EXPECT_EQ(active.value(), 0);
  EXPECT_TRUE(registry.List().empty());
}

}  // namespace sluice::common
