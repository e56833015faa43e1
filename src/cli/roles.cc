#include "cli/roles.h"

#include <filesystem>
#include <iostream>

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

}  // namespace

std::function<arrow::Result<Config>()> AddSettingFlags(CLI::App* cmd) {
  auto config_file = std::make_shared<std::string>();
  auto flags = std::make_shared<std::map<std::string, std::string>>();
  cmd->add_option("--config", *config_file,
                  "TOML configuration file (default: .amp/config.toml when present)");
  for (const auto& s : Settings()) {
    auto* opt = cmd->add_option_function<std::string>(
        "--" + Dashed(s.name), [flags, name = s.name](const std::string& v) { (*flags)[name] = v; },
        s.description + " [" + s.type + ", default " + s.default_str + "]");
    opt->type_name(s.type == "string" ? "TEXT" : s.type == "boolean" ? "BOOL" : "NUMBER");
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

arrow::Result<std::unique_ptr<storage::BlockStore>> OpenDatasetStore(const Config& config,
                                                                     storage::StoreRole role,
                                                                     storage::Backends* backends) {
  storage::StoreOptions store_options;
  store_options.data_dir = config.data_dir;
  store_options.dataset = config.dataset;
  store_options.network = config.network;
  store_options.tables = ingest::EvmTables();
  ARROW_ASSIGN_OR_RAISE(auto made,
                        storage::MakeBackends(BackendOptionsOf(config), role, &store_options));
  if (backends) *backends = made;
  return storage::BlockStore::Open(std::move(store_options));
}

ingest::ExtractorOptions ExtractorOptionsOf(const Config& config) {
  ingest::ExtractorOptions ex;
  ex.rpc_url = config.rpc_url;
  ex.start_block = static_cast<uint64_t>(config.start_block);
  ex.batch_blocks = static_cast<uint32_t>(config.rpc_batch_blocks);
  ex.max_in_flight = static_cast<uint32_t>(config.rpc_max_in_flight);
  ex.finality_depth = static_cast<uint64_t>(config.finality_depth);
  ex.finalized_only = config.finalized_only;
  ex.max_reorg_depth = static_cast<uint32_t>(config.max_reorg_depth);
  ex.poll_interval =
      std::chrono::milliseconds(static_cast<int64_t>(config.poll_interval_secs * 1000.0 + 0.5));
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
