// `sluice verify`: recompute stored blocks' hashes, roots and blooms from the
// stored rows (verify/stored_verifier.h, docs/datasets.md#verification), of a
// local data directory (manifest.json) or, with postgres_url, of the shared store
// of extract workers and query servers (docs/deploy.md): segments in the object
// store are read through data_dir/.segment_cache.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/roles.h"
#include "common/config.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "verify/stored_verifier.h"

namespace sluice::cli {

namespace {

struct VerifyOptions {
  std::string config_file;
  std::string data_dir;
  std::string dataset;
  std::string postgres_url;
  std::string object_store_url;
  std::optional<uint64_t> from, to;
};

// "verifying blocks A..B: n/N (p%), r blocks/s[, m differ]" on stderr: on a
// terminal rewritten in place (at most 4 times a second) and erased at the end;
// elsewhere (a log) one line every 10 seconds.
class ProgressLine {
 public:
  ProgressLine() : tty_(isatty(STDERR_FILENO) != 0), start_(Clock::now()), last_(start_) {}

  void Update(const verify::StoredProgress& p) {
    const auto now = Clock::now();
    const auto every = tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000);
    if (now - last_ < every) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const uint64_t total = p.range.size();
    std::fprintf(stderr, "%sverifying blocks %llu..%llu: %llu/%llu (%.0f%%), %.0f blocks/s",
                 tty_ ? "\r" : "", static_cast<unsigned long long>(p.range.start),
                 static_cast<unsigned long long>(p.range.end),
                 static_cast<unsigned long long>(p.blocks_done),
                 static_cast<unsigned long long>(total), 100.0 * p.blocks_done / total,
                 secs > 0 ? p.blocks_done / secs : 0.0);
    if (p.mismatches > 0) {
      std::fprintf(stderr, ", %llu differ", static_cast<unsigned long long>(p.mismatches));
    }
    std::fprintf(stderr, tty_ ? "\033[K" : "\n");
    std::fflush(stderr);
    shown_ = tty_;
  }
  void Clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }
  double Seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool tty_;
  bool shown_ = false;
  Clock::time_point start_, last_;
};

// The dataset to verify: `named` when given, else the one dataset configured
// (the shorthand's, or the only [[datasets]] table). Each dataset's storage is
// <data_dir>/<name>, as `sluice serve` lays it out. A name that is not configured
// is taken when its storage exists (a dataset stored, then removed from the
// config) or the store is shared (PostgreSQL answers); otherwise Invalid,
// listing the configured datasets.
arrow::Result<std::string> DatasetToVerify(const Config& config, const std::string& data_dir,
                                           const std::string& named) {
  std::vector<std::string> names;
  for (const auto& d : config.Datasets()) names.push_back(d.dataset);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  if (named.empty()) {
    if (names.size() == 1) return names.front();
    return arrow::Status::Invalid("several datasets are configured (", list,
                                  "): name one with --dataset");
  }
  if (std::find(names.begin(), names.end(), named) != names.end() ||
      std::filesystem::exists(std::filesystem::path(data_dir) / named) ||
      !config.postgres_url.empty()) {  // a shared store: PostgreSQL says what it holds
    return named;
  }
  return arrow::Status::Invalid("dataset ", named, " is not configured (configured: ", list,
                                ") and nothing is stored at ",
                                (std::filesystem::path(data_dir) / named).string());
}

// Where `dataset` is stored, read-only: its manifest and directory under data_dir,
// or (with postgres_url) its rows in PostgreSQL and its segments in the shared
// directory or the object store.
arrow::Result<verify::StoredVerifyOptions> OpenStored(const Config& config,
                                                      const std::string& data_dir,
                                                      const std::string& dataset) {
  DatasetConfig d;
  for (const auto& c : config.Datasets()) {
    if (c.dataset == dataset) d = c;
  }
  d.dataset = dataset;
  const bool shared = !config.postgres_url.empty();
  const auto dir = std::filesystem::path(data_dir) / dataset;
  if (!shared && !std::filesystem::exists(dir / "manifest.json")) {
    return arrow::Status::IOError("no dataset in ", dir.string(), " (no manifest.json)");
  }
  auto store = StoreOptionsOf(data_dir, d);
  ARROW_ASSIGN_OR_RAISE(
      auto backends,
      storage::MakeBackends(BackendOptionsOf(config),
                            shared ? storage::StoreRole::kReader : storage::StoreRole::kSingle,
                            &store));
  verify::StoredVerifyOptions options;
  options.metadata = backends.metadata;
  options.segments = backends.segments;
  options.tables = store.tables;
  options.name = shared ? backends.metadata->Describe() : dir.string();
  return options;
}

// 0: every block verified; 1: a block differs; 2: could not verify.
int RunVerify(const VerifyOptions& o) {
  // Warnings and errors of the storage layer on stderr; stdout is the report.
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  spdlog::set_level(spdlog::level::warn);
  Config config;
  auto load = [&]() -> arrow::Status {
    std::string path = o.config_file;
    if (path.empty() && std::filesystem::exists(".amp/config.toml")) path = ".amp/config.toml";
    if (!path.empty()) ARROW_RETURN_NOT_OK(ApplyTomlFile(&config, path));
    ARROW_RETURN_NOT_OK(ApplyEnvironment(&config));
    if (!o.postgres_url.empty()) config.postgres_url = o.postgres_url;
    if (!o.object_store_url.empty()) config.object_store_url = o.object_store_url;
    return arrow::Status::OK();
  };
  if (auto st = load(); !st.ok()) {
    std::cerr << "error: " << st.message() << std::endl;
    return 2;
  }
  const std::string data_dir = o.data_dir.empty() ? config.data_dir : o.data_dir;
  auto dataset = DatasetToVerify(config, data_dir, o.dataset);
  if (!dataset.ok()) {
    std::cerr << "error: " << dataset.status().message() << std::endl;
    return 2;
  }

  auto source = OpenStored(config, data_dir, *dataset);
  if (!source.ok()) {
    std::cerr << "error: dataset " << *dataset << ": " << source.status().message() << std::endl;
    return 2;
  }

  ProgressLine progress;
  verify::StoredVerifyOptions options = std::move(*source);
  options.from = o.from;
  options.to = o.to;
  options.on_progress = [&](const verify::StoredProgress& p) { progress.Update(p); };
  options.on_mismatch = [&](const verify::BlockMismatch& m) {
    progress.Clear();
    std::cout << "MISMATCH " << m.ToString() << std::endl;
  };
  auto report = verify::VerifyStored(options);
  progress.Clear();
  if (!report.ok()) {
    std::cerr << "error: dataset " << *dataset << ": " << report.status().message() << std::endl;
    return 2;
  }
  const double secs = progress.Seconds();
  std::printf("%s: verified %llu blocks (%llu transactions, %llu logs) in %.1f s, %.0f blocks/s: ",
              dataset->c_str(), static_cast<unsigned long long>(report->blocks),
              static_cast<unsigned long long>(report->transactions),
              static_cast<unsigned long long>(report->logs), secs,
              secs > 0 ? report->blocks / secs : 0.0);
  if (report->all_match()) {
    std::printf("every block matches its hash, roots and bloom\n");
    return 0;
  }
  std::printf("%zu blocks differ (first: block %llu)\n", report->mismatches.size(),
              static_cast<unsigned long long>(report->mismatches.front().number));
  return 1;
}

}  // namespace

void AddVerifyCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "verify",
      "Recompute stored blocks' hashes, transactions and receipts roots and logs blooms from "
      "the stored rows; exit 0 when all match, 1 when a block differs, 2 when it cannot verify");
  auto o = std::make_shared<VerifyOptions>();
  cmd->add_option("--config", o->config_file,
                  "TOML configuration file for data_dir and the datasets (default: "
                  ".amp/config.toml when present)");
  cmd->add_option("--data-dir", o->data_dir, "Data directory (default: the configuration's)");
  cmd->add_option("--dataset", o->dataset,
                  "Dataset to verify, stored in <data_dir>/<dataset> (default: the "
                  "configuration's one dataset)");
  cmd->add_option("--postgres-url", o->postgres_url,
                  "PostgreSQL of a shared store (docs/deploy.md): verify what extract workers "
                  "published (default: the configuration's postgres_url; empty: data_dir)");
  cmd->add_option("--object-store-url", o->object_store_url,
                  "Object store of the shared store's segments, read through "
                  "data_dir/.segment_cache (default: the configuration's object_store_url)");
  cmd->add_option("--from", o->from, "First block (default: the first stored)");
  cmd->add_option("--to", o->to, "Last block (default: the last stored)");
  cmd->callback([=] { *exit_code = RunVerify(*o); });
}

}  // namespace sluice::cli
