#include "http/admin_server.h"

#include <ctime>

#include "common/server_metrics.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace sluice::http {

namespace {

using json = nlohmann::ordered_json;

std::string IsoTime(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::optional<uint64_t> StoredHead(const storage::BlockStore& store) {
  auto head = store.head();
  return head ? std::optional<uint64_t>(head->number) : std::nullopt;
}

std::optional<uint64_t> Lag(std::optional<uint64_t> node, std::optional<uint64_t> stored) {
  if (!node || !stored) return std::nullopt;
  return *node > *stored ? *node - *stored : 0;
}

template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// Observes the store's published versions: a version whose head is below the
// previous one is a truncation (a reorg); its depth is the blocks it removed.
void ObserveReorgDepths(storage::BlockStore* store, common::Histogram* depths) {
  struct Last {
    std::optional<storage::BlockRange> range;
  };
  auto last = std::make_shared<Last>();
  last->range = store->snapshot()->range;
  store->Subscribe([last, depths](const storage::Snapshot& snapshot) {
    // Runs on the store's writer thread, one version at a time.
    const auto& before = last->range;
    const auto& now = snapshot.range;
    if (before && (!now || now->end < before->end)) {
      depths->Observe(static_cast<double>(now ? before->end - now->end : before->size()));
    }
    last->range = now;
  });
}

}  // namespace

arrow::Result<std::unique_ptr<AdminServer>> AdminServer::Make(AdminOptions options,
                                                              std::vector<AdminDataset> datasets) {
  if (options.registry == nullptr) options.registry = &common::Registry::Default();
  if (options.streams == nullptr) options.streams = &common::StreamRegistry::Default();
  std::unique_ptr<AdminServer> s(new AdminServer());
  s->options_ = options;
  s->datasets_ = std::move(datasets);
  ListenOptions listen = options.listen;
  listen.open_paths = {"/health", "/ready", "/ready/"};  // probes need no credentials
  ARROW_ASSIGN_OR_RAISE(s->http_, HttpServer::Bind("admin", listen));

  auto& registry = *options.registry;
  for (const auto& d : s->datasets_) {
    if (d.store == nullptr) return arrow::Status::Invalid("admin: a dataset without a store");
    storage::BlockStore* store = d.store;
    const common::Labels labels = {{"dataset", store->options().dataset}};
    auto extraction = d.extraction;
    using common::MetricType;
    s->callbacks_.push_back(registry.AddCallback(
        MetricType::kGauge, common::kStoredHeadBlock, common::kStoredHeadBlockHelp, labels,
        [store]() -> std::optional<double> {
          auto h = StoredHead(*store);
          return h ? std::optional<double>(static_cast<double>(*h)) : std::nullopt;
        }));
    if (extraction) {
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kGauge, common::kNodeHeadBlock, common::kNodeHeadBlockHelp, labels,
          [extraction]() -> std::optional<double> {
            auto h = extraction().node_head;
            return h ? std::optional<double>(static_cast<double>(*h)) : std::nullopt;
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kGauge, common::kHeadLagBlocks, common::kHeadLagBlocksHelp, labels,
          [extraction, store]() -> std::optional<double> {
            auto lag = Lag(extraction().node_head, StoredHead(*store));
            return lag ? std::optional<double>(static_cast<double>(*lag)) : std::nullopt;
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kCounter, common::kReorgsTotal, common::kReorgsTotalHelp, labels,
          [extraction]() -> std::optional<double> {
            return static_cast<double>(extraction().reorgs);
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kCounter, common::kRpcErrorsTotal, common::kRpcErrorsTotalHelp, labels,
          [extraction]() -> std::optional<double> {
            return static_cast<double>(extraction().rpc_errors);
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kCounter, common::kRpcFailoversTotal, common::kRpcFailoversTotalHelp,
          labels, [extraction]() -> std::optional<double> {
            return static_cast<double>(extraction().failovers);
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kCounter, common::kRpcRateLimitedTotal, common::kRpcRateLimitedTotalHelp,
          labels, [extraction]() -> std::optional<double> {
            return static_cast<double>(extraction().rate_limited);
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kCounter, common::kRpcBatchSplitsTotal, common::kRpcBatchSplitsTotalHelp,
          labels, [extraction]() -> std::optional<double> {
            return static_cast<double>(extraction().batch_splits);
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kCounter, common::kVerifiedBlocksTotal, common::kVerifiedBlocksTotalHelp,
          labels, [extraction]() -> std::optional<double> {
            return static_cast<double>(extraction().verified_blocks);
          }));
      s->callbacks_.push_back(registry.AddCallback(
          MetricType::kCounter, common::kVerificationFailuresTotal,
          common::kVerificationFailuresTotalHelp, labels, [extraction]() -> std::optional<double> {
            return static_cast<double>(extraction().verification_failures);
          }));
    }
    ObserveReorgDepths(store, &registry.GetHistogram(common::kReorgDepthBlocks,
                                                     common::kReorgDepthBlocksHelp,
                                                     common::ReorgDepthBuckets(), labels));
  }

  auto& svr = s->http_->server();
  AdminServer* self = s.get();
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200,
             {{"endpoints", {"/health", "/ready", "/ready/<dataset>", "/metrics", "/datasets",
                             "/datasets/<dataset>", "/streams"}}});
  });
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"status", "ok"}});
  });
  // /ready and /ready/<dataset>: open to probes; the reason (the node's errors)
  // only with credentials when keys are configured.
  auto ready = [self](const httplib::Request& req, httplib::Response& res,
                      const AdminDataset* only) {
    json datasets = json::object();
    std::optional<std::string> reason;
    for (const auto& d : self->datasets_) {
      if (only && only != &d) continue;
      auto r = self->NotReadyReason(d);
      datasets[d.store->options().dataset] = r ? "not_ready" : "ready";
      if (r && !reason) reason = r;
    }
    // Probes without credentials (when keys are configured) get the verdict only.
    const bool authenticated = self->http_->Authenticated(req);
    json body = {{"status", reason ? "not_ready" : "ready"}};
    if (reason && authenticated) body["reason"] = *reason;
    if (authenticated) body["datasets"] = std::move(datasets);
    SendJson(res, reason ? 503 : 200, body);
  };
  svr.Get("/ready", [ready](const httplib::Request& req, httplib::Response& res) {
    ready(req, res, nullptr);
  });
  svr.Get(R"(/ready/([A-Za-z0-9_]+))",
          [self, ready](const httplib::Request& req, httplib::Response& res) {
            const AdminDataset* d = self->Find(req.matches[1]);
            if (d == nullptr) {
              SetError(&res, 404, "NOT_FOUND", "no dataset " + std::string(req.matches[1]));
              return;
            }
            ready(req, res, d);
          });
  svr.Get("/metrics", [self](const httplib::Request&, httplib::Response& res) {
    res.set_content(self->options_.registry->RenderPrometheus(),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/datasets", [self](const httplib::Request&, httplib::Response& res) {
    res.set_content(self->DatasetsJson(), "application/json");
  });
  svr.Get(R"(/datasets/([A-Za-z0-9_]+))",
          [self](const httplib::Request& req, httplib::Response& res) {
            const AdminDataset* d = self->Find(req.matches[1]);
            if (d == nullptr) {
              SetError(&res, 404, "NOT_FOUND", "no dataset " + std::string(req.matches[1]));
              return;
            }
            SendJson(res, 200, self->DatasetJson(*d));
          });
  svr.Get("/streams", [self](const httplib::Request&, httplib::Response& res) {
    res.set_content(self->StreamsJson(), "application/json");
  });
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    SetError(&res, res.status, res.status == 404 ? "NOT_FOUND" : "INVALID_ARGUMENT",
             "no such endpoint: " + req.method + " " + req.path +
                 " (GET /health, /ready, /ready/<dataset>, /metrics, /datasets, "
                 "/datasets/<dataset>, /streams)");
    return httplib::Server::HandlerResponse::Handled;
  }));
  return s;
}

AdminServer::~AdminServer() {
  if (http_) http_->Stop();
}

const AdminDataset* AdminServer::Find(const std::string& name) const {
  for (const auto& d : datasets_) {
    if (d.store->options().dataset == name) return &d;
  }
  return nullptr;
}

std::optional<std::string> AdminServer::NotReadyReason(const AdminDataset& d) const {
  const std::string& name = d.store->options().dataset;
  // A query server that lost its metadata (PostgreSQL) refuses new queries.
  if (auto st = d.store->Available(); !st.ok()) return "dataset " + name + ": " + st.message();
  if (!d.extraction) return std::nullopt;  // serves what is stored: ready
  auto e = d.extraction();
  auto with_error = [&](std::string what) {
    if (!e.last_error.empty()) what += ": " + e.last_error;
    return what;
  };
  if (e.failed) return with_error("dataset " + name + ": extraction stopped");
  if (!e.running) return "dataset " + name + ": extraction is not running";
  if (!e.node_head) return with_error("dataset " + name + ": the node has not answered yet");
  if (e.consecutive_failures >= options_.max_consecutive_failures) {
    return with_error("dataset " + name + ": the node is failing (" +
                      std::to_string(e.consecutive_failures) + " attempts in a row)");
  }
  return std::nullopt;
}

std::optional<std::string> AdminServer::NotReadyReason() const {
  for (const auto& d : datasets_) {
    if (auto reason = NotReadyReason(d)) return reason;
  }
  return std::nullopt;
}

json AdminServer::DatasetJson(const AdminDataset& d) const {
  auto snapshot = d.store->snapshot();
  json tables = json::array();
  for (const auto& t : snapshot->tables) tables.push_back(t.name);
  json j = {{"name", snapshot->dataset}, {"network", snapshot->network}, {"tables", tables}};
  std::optional<uint64_t> stored;
  if (snapshot->range) {
    stored = snapshot->range->end;
    j["blocks"] = {{"start", snapshot->range->start}, {"end", snapshot->range->end}};
    const auto* h = snapshot->Header(snapshot->range->end);
    j["head"] = {{"number", snapshot->range->end},
                 {"hash", h ? storage::HashToHex(h->hash) : std::string()},
                 {"timestamp", h ? h->timestamp : 0}};
  } else {
    j["blocks"] = nullptr;
    j["head"] = nullptr;
  }
  j["ready"] = !NotReadyReason(d).has_value();
  j["extracting"] = static_cast<bool>(d.extraction);
  if (d.extraction) {
    auto e = d.extraction();
    j["node_head"] = OrNull(e.node_head);
    j["lag"] = OrNull(Lag(e.node_head, stored));
    j["reorgs"] = e.reorgs;
    j["rpc_errors"] = e.rpc_errors;
    j["last_error"] = e.last_error.empty() ? json(nullptr) : json(e.last_error);
    j["receipts"] = e.receipts;
    j["failovers"] = e.failovers;
    j["rate_limited"] = e.rate_limited;
    j["batch_splits"] = e.batch_splits;
    json endpoints = json::array();
    for (const auto& ep : e.endpoints) {
      endpoints.push_back({{"url", ep.url},
                           {"state", ep.state},
                           {"batch_limit", ep.batch_limit ? json(ep.batch_limit) : json(nullptr)},
                           {"requests", ep.requests},
                           {"failures", ep.failures},
                           {"rate_limited", ep.rate_limited},
                           {"last_error", ep.last_error.empty() ? json(nullptr)
                                                                : json(ep.last_error)}});
    }
    j["endpoints"] = std::move(endpoints);
  } else {
    j["node_head"] = nullptr;
    j["lag"] = nullptr;
  }
  return j;
}

std::string AdminServer::DatasetsJson() const {
  json list = json::array();
  for (const auto& d : datasets_) list.push_back(DatasetJson(d));
  return json({{"datasets", list}}).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string AdminServer::StreamsJson() const {
  json list = json::array();
  for (const auto& s : options_.streams->List()) {
    json j = {{"id", s.id},
              {"query", s.query},
              {"dataset", s.dataset},
              {"started_at", IsoTime(s.started)},
              {"rows_sent", s.rows_sent},
              {"bytes_sent", s.bytes_sent},
              {"microbatches", s.microbatches}};
    j["cursor"] = s.cursor_block ? json{{"block_number", *s.cursor_block}, {"hash", s.cursor_hash}}
                                 : json(nullptr);
    j["microbatch"] = s.microbatch
                          ? json{{"start", s.microbatch->first}, {"end", s.microbatch->second}}
                          : json(nullptr);
    list.push_back(std::move(j));
  }
  return json({{"streams", list}}).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace sluice::http
