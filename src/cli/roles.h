// What the distributed roles share on the command line (docs/deploy.md):
// settings as flags, building a dataset's store for a role, the extractor's
// options; and the commands `sluice extract` and `sluice migrate`.
#pragma once

#include <functional>
#include <memory>

#include "CLI/CLI.hpp"
#include "arrow/result.h"
#include "common/config.h"
#include "ingest/extractor.h"
#include "storage/backends.h"
#include "storage/block_store.h"

namespace sluice::cli {

/// \brief Declare every setting as a flag of `cmd` (`--key-with-dashes`) and
/// return the function that builds the validated Config: defaults <
/// .amp/config.toml or --config FILE < environment < flags.
std::function<arrow::Result<Config>()> AddSettingFlags(CLI::App* cmd);

/// \brief The storage backends' options from the settings.
storage::BackendOptions BackendOptionsOf(const Config& config);

/// \brief Open the store of `config.dataset` for `role`; `backends` receives its
/// backends (the writer takes its lease through them).
arrow::Result<std::unique_ptr<storage::BlockStore>> OpenDatasetStore(
    const Config& config, storage::StoreRole role, storage::Backends* backends = nullptr);

/// \brief The extractor's options from the settings.
ingest::ExtractorOptions ExtractorOptionsOf(const Config& config);

/// \brief Register `extract`: an extract worker (active or standby under the
/// dataset's PostgreSQL lease) until SIGINT/SIGTERM.
void AddExtractCommand(CLI::App& app, int* exit_code);

/// \brief Register `migrate`: apply the PostgreSQL schema's pending migrations.
void AddMigrateCommand(CLI::App& app, int* exit_code);

}  // namespace sluice::cli
