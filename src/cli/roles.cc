#include "cli/roles.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "common/log.h"
#include "ingest/evm_schema.h"

namespace sluice::cli {

namespace {

std::string Dashed(std::string s) {
  for (auto& c : s) {
    if (c == '_') c = '-';
  }
  return s;
}

std::chrono::milliseconds Millis(double secs) {
  return std::chrono::milliseconds(static_cast<int64_t>(secs * 1000.0 + 0.5));
}

}  // namespace

std::function<arrow::Result<Config>()> AddSettingFlags(CLI::App* cmd, bool no_extract_flag) {
  auto config_file = std::make_shared<std::string>();
  auto flags = std::make_shared<std::map<std::string, std::string>>();
  cmd->add_option("--config", *config_file,
                  "TOML configuration file (default: .amp/config.toml when present)");
  if (no_extract_flag) {
    cmd->add_flag_callback(
        "--no-extract", [flags] { (*flags)["extract"] = "false"; },
        "Serve only: a query server following the shared store (same as --extract false)");
  }
  for (const auto& s : Settings()) {
    auto* opt = cmd->add_option_function<std::string>(
        "--" + Dashed(s.name), [flags, name = s.name](const std::string& v) { (*flags)[name] = v; },
        (s.per_dataset ? "(dataset) " : "") + s.description + " [" + s.type + ", default " +
            s.default_str + "]");
    opt->type_name(s.type == "string"    ? "TEXT"
                   : s.type == "list"    ? "TEXT,..."
                   : s.type == "boolean" ? "BOOL"
                                         : "NUMBER");
  }
  return [config_file, flags]() -> arrow::Result<Config> {
    Config config;
    std::string path = *config_file;
    if (path.empty() && std::filesystem::exists(".amp/config.toml")) path = ".amp/config.toml";
    if (!path.empty()) ARROW_RETURN_NOT_OK(ApplyTomlFile(&config, path));
    ARROW_RETURN_NOT_OK(ApplyEnvironment(&config));
    for (const auto& [name, value] : *flags) {
      ARROW_RETURN_NOT_OK(SetFromString(&config, name, value));
    }
    ARROW_RETURN_NOT_OK(config.Validate());
    return config;
  };
}

arrow::Result<std::filesystem::path> AbsoluteDataDir(const Config& config) {
  std::error_code ec;
  auto dir = std::filesystem::absolute(config.data_dir, ec).lexically_normal();
  if (ec) {
    return arrow::Status::IOError("setting data_dir: cannot resolve '", config.data_dir,
                                  "': ", ec.message());
  }
  return dir;
}

storage::BackendOptions BackendOptionsOf(const Config& config) {
  storage::BackendOptions o;
  o.postgres_url = config.postgres_url;
  o.object_store_url = config.object_store_url;
  o.object_store_access_key = config.object_store_access_key;
  o.object_store_secret_key = config.object_store_secret_key;
  o.segment_cache_max_mb = config.segment_cache_max_mb;
  o.gc_grace = std::chrono::seconds(config.gc_grace_secs);
  o.gc_interval = std::chrono::seconds(std::clamp<int64_t>(config.gc_grace_secs / 4, 1, 30));
  o.testing_commit_pause = std::chrono::milliseconds(config.testing_commit_pause_ms);
  return o;
}

storage::StoreOptions StoreOptionsOf(const std::filesystem::path& data_dir,
                                     const DatasetConfig& dataset) {
  storage::StoreOptions o;
  o.data_dir = data_dir;
  o.dataset = dataset.dataset;
  o.network = dataset.network;
  o.tables = ingest::EvmTables();
  return o;
}

arrow::Result<std::unique_ptr<storage::BlockStore>> OpenDatasetStore(
    const Config& config, const std::filesystem::path& data_dir, const DatasetConfig& dataset,
    storage::StoreRole role, storage::Backends* backends) {
  auto open = [&]() -> arrow::Result<std::unique_ptr<storage::BlockStore>> {
    auto store_options = StoreOptionsOf(data_dir, dataset);
    ARROW_ASSIGN_OR_RAISE(auto made,
                          storage::MakeBackends(BackendOptionsOf(config), role, &store_options));
    if (backends) *backends = made;
    return storage::BlockStore::Open(std::move(store_options));
  };
  auto store = open();
  if (!store.ok()) {
    return store.status().WithMessage("dataset ", dataset.dataset, ": ", store.status().message());
  }
  return store;
}

ingest::ExtractorOptions ExtractorOptionsOf(const DatasetConfig& d) {
  ingest::ExtractorOptions ex;
  ex.node.urls = d.rpc_url;
  ex.node.request_timeout = Millis(d.rpc_timeout_secs);
  ex.node.failback = Millis(d.rpc_failback_secs);
  ex.node.retry_after_max = Millis(d.rpc_retry_after_max_secs);
  ex.node.max_batch_calls = static_cast<uint32_t>(d.rpc_batch_max_calls);
  ex.node.max_requests_per_sec = d.rpc_max_requests_per_sec;
  ex.receipts = d.rpc_receipts == "block"         ? ingest::ReceiptsMode::kBlock
                : d.rpc_receipts == "transaction" ? ingest::ReceiptsMode::kTransaction
                                                  : ingest::ReceiptsMode::kAuto;
  const std::string tag = d.EffectiveFinalityTag();
  ex.finality = tag == "finalized" ? ingest::FinalityTag::kFinalized
                : tag == "safe"    ? ingest::FinalityTag::kSafe
                                   : ingest::FinalityTag::kLatest;
  ex.start_block = static_cast<uint64_t>(d.start_block);
  ex.batch_blocks = static_cast<uint32_t>(d.rpc_batch_blocks);
  ex.max_in_flight = static_cast<uint32_t>(d.rpc_max_in_flight);
  ex.finality_depth = static_cast<uint64_t>(d.finality_depth);
  ex.max_reorg_depth = static_cast<uint32_t>(d.max_reorg_depth);
  ex.verify = d.verify;
  ex.poll_interval = Millis(d.poll_interval_secs);
  return ex;
}

void AddMigrateCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "migrate", "Create or upgrade sluice's tables in PostgreSQL (postgres_url); every role "
                 "also does this at start");
  auto make_config = AddSettingFlags(cmd);
  cmd->callback([=] {
    auto run = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto config, make_config());
      if (config.postgres_url.empty()) {
        return arrow::Status::Invalid("set postgres_url (--postgres-url URL)");
      }
      ARROW_ASSIGN_OR_RAISE(int version,
                            storage::MigratePostgres(config.postgres_url, std::chrono::seconds(10)));
      std::cout << "sluice: PostgreSQL schema at version " << version << std::endl;
      return arrow::Status::OK();
    };
    auto st = run();
    if (!st.ok()) {
      std::cerr << "sluice migrate: " << st.message() << std::endl;
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
