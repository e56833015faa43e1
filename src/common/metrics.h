// A small metrics registry: counters, gauges and histograms with labels, and
// the one place that renders them in the Prometheus text exposition format
// (version 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// A metric family is a name, a help text and a type; its samples differ by their
// labels. Updating a metric is one relaxed atomic operation, so the hot paths
// (a record batch sent, a microbatch done) pay nothing else; looking a metric up
// takes the registry's lock, so callers look up once and keep the reference.
// Metrics live as long as their registry (the process's, for Default()).
//
//   auto& sent = Registry::Default().GetCounter("sluice_rows_sent_total",
//                                               "Rows sent to clients", {{"kind", "jsonl"}});
//   sent.Increment(batch->num_rows());
//
// Values owned elsewhere (an extractor's counters, a store's head) are callback
// metrics, read when rendered.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::common {

/// \brief Label names and values of one sample, in the order rendered, e.g.
/// {{"kind", "batch"}, {"outcome", "ok"}}. Names match [a-zA-Z_][a-zA-Z0-9_]*.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// \brief The Prometheus type of a metric family.
enum class MetricType { kCounter, kGauge, kHistogram };

/// \brief A monotonically increasing count (names end in `_total`). Thread-safe.
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

/// \brief A value that goes up and down. Thread-safe.
class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

/// \brief Observations counted in buckets of fixed upper bounds (plus +Inf),
/// with their sum and count. Thread-safe.
class Histogram {
 public:
  /// \brief `bounds`: the buckets' inclusive upper bounds, strictly increasing.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  /// \brief Observations <= bounds()[i]; i == bounds().size() is +Inf (= count()).
  uint64_t cumulative_count(size_t i) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

class Registry;

/// \brief Keeps a callback metric registered; destroying it removes the sample.
class CallbackRegistration {
 public:
  CallbackRegistration() = default;
  CallbackRegistration(CallbackRegistration&& other) noexcept;
  CallbackRegistration& operator=(CallbackRegistration&& other) noexcept;
  ~CallbackRegistration();

 private:
  friend class Registry;
  CallbackRegistration(Registry* registry, uint64_t id) : registry_(registry), id_(id) {}
  Registry* registry_ = nullptr;
  uint64_t id_ = 0;
};

/// \brief Metric families by name. Thread-safe.
///
/// Get* return the metric of (name, labels), creating it (and its family) on
/// first use; the reference stays valid for the registry's life. A name is
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`; asking for a name with another type than it was
/// registered with is a programming error and aborts.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// \brief The process's registry, the one the admin API's /metrics renders.
  static Registry& Default();

  Counter& GetCounter(const std::string& name, const std::string& help,
                      const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  /// \brief `bounds` apply when the histogram is created (see Histogram).
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, const Labels& labels = {});

  /// \brief A counter or gauge sample whose value `read` returns at each
  /// rendering; nullopt renders no sample. `read` runs under the registry's lock:
  /// it must be quick and must not use this registry. Registered while the
  /// returned object lives.
  [[nodiscard]] CallbackRegistration AddCallback(MetricType type, const std::string& name,
                                                 const std::string& help, const Labels& labels,
                                                 std::function<std::optional<double>()> read);

  /// \brief Every family in the Prometheus text format, families sorted by
  /// name, each with its `# HELP` and `# TYPE` lines, samples in the order they
  /// were created. Integral values are written as integers.
  std::string RenderPrometheus() const;

 private:
  friend class CallbackRegistration;
  struct Sample {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    uint64_t callback_id = 0;  // > 0: a callback sample
    std::function<std::optional<double>()> read;
  };
  struct Family {
    std::string help;
    MetricType type;
    std::vector<std::unique_ptr<Sample>> samples;
  };
  Sample& GetSample(const std::string& name, const std::string& help, MetricType type,
                    const Labels& labels);
  void RemoveCallback(uint64_t id);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  uint64_t next_callback_id_ = 1;
};

/// \brief `value` as Prometheus writes a sample value: an integer without a
/// fraction when it is one, "+Inf", "-Inf", "NaN", else the shortest form that
/// reads back exactly.
std::string FormatMetricValue(double value);

}  // namespace sluice::common
