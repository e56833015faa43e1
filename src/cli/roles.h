// What the roles share on the command line (docs/deploy.md, docs/datasets.md):
// settings as flags, the data directory, building a dataset's store for a role,
// a dataset's extractor options; and the commands `sluice extract` and
// `sluice migrate`.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "CLI/CLI.hpp"
#include "arrow/result.h"
#include "common/config.h"
#include "ingest/extractor.h"
#include "storage/backends.h"
#include "storage/block_store.h"

namespace sluice::cli {

/// \brief Declare every setting as a flag of `cmd` (`--key-with-dashes`; dataset
/// settings marked "(dataset)"), `--config FILE` and, with `no_extract_flag`,
/// `--no-extract` (= `--extract false`); return the function that builds the
/// validated Config: defaults < .amp/config.toml or --config FILE < environment <
/// flags.
std::function<arrow::Result<Config>()> AddSettingFlags(CLI::App* cmd,
                                                       bool no_extract_flag = false);

/// \brief data_dir made absolute (relative to the working directory, not to the
/// config file): the engine's sandbox allows exactly this directory, so every path
/// a store hands the engine must be under it as written. IOError when it cannot
/// be resolved.
arrow::Result<std::filesystem::path> AbsoluteDataDir(const Config& config);

/// \brief The storage backends' options from the settings.
storage::BackendOptions BackendOptionsOf(const Config& config);

/// \brief The options of `dataset`'s store under `data_dir` (no backends yet).
storage::StoreOptions StoreOptionsOf(const std::filesystem::path& data_dir,
                                     const DatasetConfig& dataset);

/// \brief Open the store of `dataset` under `data_dir` for `role`: its metadata
/// in manifest.json or in PostgreSQL (rows keyed by the dataset's name), its
/// segments in `<data_dir>/<dataset>/` or under `<object store prefix>/<dataset>/`.
/// `backends` receives the backends (a writer takes its lease through them).
/// Errors name the dataset.
arrow::Result<std::unique_ptr<storage::BlockStore>> OpenDatasetStore(
    const Config& config, const std::filesystem::path& data_dir, const DatasetConfig& dataset,
    storage::StoreRole role, storage::Backends* backends = nullptr);

/// \brief The extractor options of a dataset's settings (common/config.h).
ingest::ExtractorOptions ExtractorOptionsOf(const DatasetConfig& dataset);

/// \brief Register `extract`: an extract worker for every dataset with extract =
/// true, each active or standby under its own PostgreSQL lease, until
/// SIGINT/SIGTERM.
void AddExtractCommand(CLI::App& app, int* exit_code);

/// \brief Register `migrate`: apply the PostgreSQL schema's pending migrations.
void AddMigrateCommand(CLI::App& app, int* exit_code);

}  // namespace sluice::cli
