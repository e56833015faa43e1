// `sluice extract`: an extract worker (docs/deploy.md). It extracts one dataset
// into the shared store (PostgreSQL metadata, local or S3 segments) while it
// holds the dataset's lease, a PostgreSQL advisory lock; any number of workers
// run as standbys, trying to take the lease every lease_poll_secs. A worker that
// loses its lease's connection stops writing at once and becomes a standby.
#include <signal.h>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

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

void Say(const std::string& line) { std::cout << "sluice: " << line << std::endl; }

// One term as the active writer: open the store, extract until the lease or the
// process ends. OK when the lease was lost (the caller goes back to standby).
arrow::Status ActiveTerm(const Config& config, storage::Backends* backends,
                         storage::StoreOptions store_options, StopSignal* stop) {
  ARROW_ASSIGN_OR_RAISE(auto store, storage::BlockStore::Open(std::move(store_options)));
  auto head = store->head();
  Say("extract worker active for dataset " + config.dataset + " (stored head " +
      (head ? std::to_string(head->number) : std::string("none")) + ")");
  ARROW_ASSIGN_OR_RAISE(auto extractor, ingest::Extractor::Make(ExtractorOptionsOf(config),
                                                               store.get()));
  ARROW_RETURN_NOT_OK(extractor->Start());
  arrow::Status outcome;
  while (stop->Wait(std::chrono::milliseconds(500))) {
    if (extractor->failed()) {
      outcome = arrow::Status::Invalid("extraction stopped: ", extractor->last_error());
      break;
    }
    auto lease = backends->postgres->CheckLease();
    if (!lease.ok()) {
      LOG_WARN("{}: lost the lease: {}", config.dataset, lease.ToString());
      Say("extract worker lost the lease for dataset " + config.dataset);
      break;
    }
  }
  extractor->Stop();
  return outcome;
}

arrow::Status Extract(const Config& config) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (config.postgres_url.empty()) {
    return arrow::Status::Invalid("sluice extract needs postgres_url (--postgres-url URL): the "
                                  "metadata it shares with query servers and standby workers");
  }
  StopSignal stop;
  const auto poll = std::chrono::milliseconds(
      static_cast<int64_t>(config.lease_poll_secs * 1000.0 + 0.5));
  auto backoff = std::chrono::milliseconds(200);
  bool said_standby = false;
  while (!stop.stopped()) {
    storage::StoreOptions probe;
    probe.data_dir = config.data_dir;
    probe.dataset = config.dataset;
    probe.network = config.network;
    probe.tables = ingest::EvmTables();
    auto backends = storage::MakeBackends(BackendOptionsOf(config), storage::StoreRole::kWriter,
                                          &probe);
    if (!backends.ok()) {
      if (!backends.status().IsIOError()) return backends.status();
      LOG_WARN("{}: {}; retrying", config.dataset, backends.status().ToString());
      if (!stop.Wait(backoff)) break;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    backoff = std::chrono::milliseconds(200);
    // Standby: try the lease until it is ours (or the connection fails).
    arrow::Result<bool> lease = false;
    while (!stop.stopped()) {
      lease = backends->postgres->TryAcquireLease();
      if (!lease.ok() || *lease) break;
      if (!said_standby) {
        Say("extract worker standby for dataset " + config.dataset);
        said_standby = true;
      }
      if (!stop.Wait(poll)) break;
    }
    if (stop.stopped()) break;
    if (!lease.ok()) {
      LOG_WARN("{}: {}; reconnecting", config.dataset, lease.status().ToString());
      continue;
    }
    said_standby = false;
    auto term = ActiveTerm(config, &*backends, probe, &stop);
    if (!term.ok()) {
      if (term.IsInvalid()) return term;  // e.g. another chain, too deep a reorg
      LOG_WARN("{}: {}; back to standby", config.dataset, term.ToString());
    }
  }
  LOG_INFO("shutting down");
  return arrow::Status::OK();
}

}  // namespace

void AddExtractCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "extract",
      "Extract a dataset into the shared store (PostgreSQL + object store) as the active "
      "worker, or wait as a standby (docs/deploy.md)");
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
