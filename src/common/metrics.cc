#include "common/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace sluice::common {

namespace {

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "metrics registry misuse: %s\n", what.c_str());
  std::abort();
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

bool ValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// HELP text escapes backslash and newline; label values also the double quote.
void AppendEscaped(std::string* out, const std::string& s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

void AppendLabels(std::string* out, const Labels& labels, const char* extra_name = nullptr,
                  const std::string& extra_value = {}) {
  if (labels.empty() && extra_name == nullptr) return;
  out->push_back('{');
  bool first = true;
  auto one = [&](const std::string& name, const std::string& value) {
    if (!first) out->push_back(',');
    first = false;
    out->append(name);
    out->append("=\"");
    AppendEscaped(out, value, true);
    out->push_back('"');
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (extra_name != nullptr) one(extra_name, extra_value);
  out->push_back('}');
}

void AppendSample(std::string* out, const std::string& name, const Labels& labels,
                  const std::string& value, const char* extra_name = nullptr,
                  const std::string& extra_value = {}) {
  out->append(name);
  AppendLabels(out, labels, extra_name, extra_value);
  out->push_back(' ');
  out->append(value);
  out->push_back('\n');
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 9.007199254740992e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, end);
}

// ---- Histogram ----------------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
  for (size_t i = 1; i < bounds_.size(); ++i) {
    if (!(bounds_[i] > bounds_[i - 1])) Misuse("histogram bounds must increase strictly");
  }
}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Histogram::cumulative_count(size_t i) const {
  uint64_t n = 0;
  for (size_t k = 0; k <= i && k <= bounds_.size(); ++k) {
    n += buckets_[k].load(std::memory_order_relaxed);
  }
  return n;
}

// ---- CallbackRegistration -----------------------------------------------------------

CallbackRegistration::CallbackRegistration(CallbackRegistration&& other) noexcept
    : registry_(other.registry_), id_(other.id_) {
  other.registry_ = nullptr;
}

CallbackRegistration& CallbackRegistration::operator=(CallbackRegistration&& other) noexcept {
  if (this != &other) {
    if (registry_ != nullptr) registry_->RemoveCallback(id_);
    registry_ = other.registry_;
    id_ = other.id_;
    other.registry_ = nullptr;
  }
  return *this;
}

CallbackRegistration::~CallbackRegistration() {
  if (registry_ != nullptr) registry_->RemoveCallback(id_);
}

// ---- Registry -----------------------------------------------------------------------

Registry::Registry() = default;
Registry::~Registry() = default;

Registry& Registry::Default() {
  static Registry* registry = new Registry();  // never destroyed: metrics outlive every user
  return *registry;
}

Registry::Sample& Registry::GetSample(const std::string& name, const std::string& help,
                                      MetricType type, const Labels& labels) {
  // Caller holds mu_.
  if (!ValidName(name, true)) Misuse("invalid metric name '" + name + "'");
  for (const auto& [k, v] : labels) {
    if (!ValidName(k, false) || k == "le") Misuse("invalid label name '" + k + "'");
  }
  auto [it, created] = families_.try_emplace(name);
  Family& family = it->second;
  if (created) {
    family.help = help;
    family.type = type;
  } else if (family.type != type) {
    Misuse("metric '" + name + "' is a " + TypeName(family.type) + ", not a " + TypeName(type));
  }
  for (auto& s : family.samples) {
    if (s->callback_id == 0 && s->labels == labels) return *s;
  }
  auto sample = std::make_unique<Sample>();
  sample->labels = labels;
  family.samples.push_back(std::move(sample));
  return *family.samples.back();
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = GetSample(name, help, MetricType::kCounter, labels);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help,
                          const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = GetSample(name, help, MetricType::kGauge, labels);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = GetSample(name, help, MetricType::kHistogram, labels);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

CallbackRegistration Registry::AddCallback(MetricType type, const std::string& name,
                                           const std::string& help, const Labels& labels,
                                           std::function<std::optional<double>()> read) {
  if (type == MetricType::kHistogram) Misuse("callback histograms are not supported");
  std::lock_guard<std::mutex> lock(mu_);
  if (!ValidName(name, true)) Misuse("invalid metric name '" + name + "'");
  auto [it, created] = families_.try_emplace(name);
  Family& family = it->second;
  if (created) {
    family.help = help;
    family.type = type;
  } else if (family.type != type) {
    Misuse("metric '" + name + "' is a " + TypeName(family.type) + ", not a " + TypeName(type));
  }
  auto sample = std::make_unique<Sample>();
  sample->labels = labels;
  sample->callback_id = next_callback_id_++;
  sample->read = std::move(read);
  uint64_t id = sample->callback_id;
  family.samples.push_back(std::move(sample));
  return CallbackRegistration(this, id);
}

void Registry::RemoveCallback(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, family] : families_) {
    auto& v = family.samples;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if ((*it)->callback_id == id) {
        v.erase(it);
        return;
      }
    }
  }
}

std::string Registry::RenderPrometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    out.append("# HELP ").append(name).push_back(' ');
    AppendEscaped(&out, family.help, false);
    out.append("\n# TYPE ").append(name).push_back(' ');
    out.append(TypeName(family.type)).push_back('\n');
    for (const auto& s : family.samples) {
      if (s->callback_id != 0) {
        if (auto v = s->read()) AppendSample(&out, name, s->labels, FormatMetricValue(*v));
      } else if (s->counter) {
        AppendSample(&out, name, s->labels, std::to_string(s->counter->value()));
      } else if (s->gauge) {
        AppendSample(&out, name, s->labels, std::to_string(s->gauge->value()));
      } else if (s->histogram) {
        const auto& h = *s->histogram;
        for (size_t i = 0; i <= h.bounds().size(); ++i) {
          std::string le = i < h.bounds().size() ? FormatMetricValue(h.bounds()[i]) : "+Inf";
          AppendSample(&out, name + "_bucket", s->labels, std::to_string(h.cumulative_count(i)),
                       "le", le);
        }
        AppendSample(&out, name + "_sum", s->labels, FormatMetricValue(h.sum()));
        AppendSample(&out, name + "_count", s->labels,
                     std::to_string(h.cumulative_count(h.bounds().size())));
      }
    }
  }
  return out;
}

}  // namespace sluice::common
