// `sluice extract`: an extract worker (docs/deploy.md). It extracts every
// configured dataset (docs/datasets.md; those with extract = true) into the shared
// store (PostgreSQL metadata, local or S3 segments), each while it holds that
// dataset's lease, a PostgreSQL advisory lock; any number of workers run as
// standbys, trying to take each lease every lease_poll_secs. A worker that loses
// a lease's connection stops writing that dataset at once and becomes its standby.
#include <signal.h>

#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/roles.h"
#include "common/log.h"
#include "ingest/evm_schema.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace sluice::cli {

namespace {

// SIGINT/SIGTERM, waited for on a thread of their own.
class StopSignal {
 public:
  StopSignal() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // before any other thread starts
    thread_ = std::thread([this] {
      int sig = 0;
      sigwait(&set_, &sig);
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopped_ = true;
      }
      cv_.notify_all();
    });
  }
  ~StopSignal() {
    if (!stopped()) pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }
  /// Wait up to `d`; false once stopped.
  bool Wait(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, d, [&] { return stopped_; });
    return !stopped_;
  }

 private:
  sigset_t set_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// A role line on stdout (scripts and tests read them), whole, from any thread.
void Say(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::cout << "sluice: " << line << std::endl;
}

// One term as the active writer of a dataset: open its store, extract until the
// lease or the process ends. OK when the lease was lost (the caller goes back to
// standby).
arrow::Status ActiveTerm(const DatasetConfig& dataset, storage::Backends* backends,
                         storage::StoreOptions store_options, StopSignal* stop) {
  const std::string& name = dataset.dataset;
  ARROW_ASSIGN_OR_RAISE(auto store, storage::BlockStore::Open(std::move(store_options)));
  auto head = store->head();
  Say("extract worker active for dataset " + name + " (stored head " +
      (head ? std::to_string(head->number) : std::string("none")) + ")");
  ARROW_ASSIGN_OR_RAISE(auto extractor,
                        ingest::Extractor::Make(ExtractorOptionsOf(dataset), store.get()));
  ARROW_RETURN_NOT_OK(extractor->Start());
  arrow::Status outcome;
  while (stop->Wait(std::chrono::milliseconds(500))) {
    if (extractor->failed()) {
      outcome = arrow::Status::Invalid("extraction stopped: ", extractor->last_error());
      break;
    }
    auto lease = backends->postgres->CheckLease();
    if (!lease.ok()) {
      LOG_WARN("{}: lost the lease: {}", name, lease.ToString());
      Say("extract worker lost the lease for dataset " + name);
      break;
    }
  }
  extractor->Stop();
  return outcome;
}

// A worker of one dataset: standby until its lease is taken, then active, again
// and again until the process stops. Returns an error only for what another try
// cannot mend (Invalid: another chain, an unknown finality tag, too deep a reorg).
arrow::Status WorkDataset(const Config& config, const std::filesystem::path& data_dir,
                          const DatasetConfig& dataset, StopSignal* stop) {
  const std::string& name = dataset.dataset;
  const auto poll = std::chrono::milliseconds(
      static_cast<int64_t>(config.lease_poll_secs * 1000.0 + 0.5));
  auto backoff = std::chrono::milliseconds(200);
  bool said_standby = false;
  while (!stop->stopped()) {
    storage::StoreOptions probe = StoreOptionsOf(data_dir, dataset);
    auto backends = storage::MakeBackends(BackendOptionsOf(config), storage::StoreRole::kWriter,
                                          &probe);
    if (!backends.ok()) {
      if (!backends.status().IsIOError()) return backends.status();
      LOG_WARN("{}: {}; retrying", name, backends.status().ToString());
      if (!stop->Wait(backoff)) break;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    backoff = std::chrono::milliseconds(200);
    // Standby: try the lease until it is ours (or the connection fails).
    arrow::Result<bool> lease = false;
    while (!stop->stopped()) {
      lease = backends->postgres->TryAcquireLease();
      if (!lease.ok() || *lease) break;
      if (!said_standby) {
        Say("extract worker standby for dataset " + name);
        said_standby = true;
      }
      if (!stop->Wait(poll)) break;
    }
    if (stop->stopped()) break;
    if (!lease.ok()) {
      LOG_WARN("{}: {}; reconnecting", name, lease.status().ToString());
      continue;
    }
    said_standby = false;
    auto term = ActiveTerm(dataset, &*backends, probe, stop);
    if (!term.ok()) {
      if (term.IsInvalid()) return term;  // e.g. another chain, too deep a reorg
      LOG_WARN("{}: {}; back to standby", name, term.ToString());
    }
  }
  return arrow::Status::OK();
}

arrow::Status Extract(const Config& config) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (config.postgres_url.empty()) {
    return arrow::Status::Invalid("sluice extract needs postgres_url (--postgres-url URL): the "
                                  "metadata it shares with query servers and standby workers");
  }
  ARROW_ASSIGN_OR_RAISE(const auto data_dir, AbsoluteDataDir(config));
  std::vector<DatasetConfig> datasets;
  for (const auto& d : config.Datasets()) {
    if (d.extract) {
      datasets.push_back(d);
    } else {
      LOG_INFO("dataset {}: extract = false, not extracted by this worker", d.dataset);
    }
  }
  if (datasets.empty()) {
    return arrow::Status::Invalid("no dataset to extract: every dataset has extract = false");
  }
  // One worker per dataset, each under its own lease: a dataset that cannot be
  // extracted (another chain, too deep a reorg) stops alone, the others go on.
  StopSignal stop;
  std::vector<arrow::Status> results(datasets.size());
  std::vector<std::thread> workers;
  for (size_t i = 0; i < datasets.size(); ++i) {
    workers.emplace_back([&, i] {
      results[i] = WorkDataset(config, data_dir, datasets[i], &stop);
      if (!results[i].ok()) {
        LOG_ERROR("dataset {}: extraction stopped: {}", datasets[i].dataset,
                  results[i].ToString());
        Say("extract worker stopped for dataset " + datasets[i].dataset);
      }
    });
  }
  for (auto& w : workers) w.join();
  LOG_INFO("shutting down");
  for (size_t i = 0; i < datasets.size(); ++i) {
    if (!results[i].ok()) {
      return results[i].WithMessage("dataset ", datasets[i].dataset, ": ",
                                    results[i].message());
    }
  }
  return arrow::Status::OK();
}

}  // namespace

void AddExtractCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "extract",
      "Extract every dataset into the shared store (PostgreSQL + object store) as its active "
      "worker, or wait as a standby, one lease per dataset (docs/deploy.md)");
  auto make_config = AddSettingFlags(cmd);
  cmd->callback([=] {
    auto run = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto config, make_config());
      return Extract(config);
    };
    auto st = run();
    if (!st.ok()) {
      std::cerr << "sluice extract: " << st.message() << std::endl;
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
