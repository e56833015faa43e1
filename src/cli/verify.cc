// `sluice verify`: recompute stored blocks' hashes, roots and blooms from the
// stored rows (verify/stored_verifier.h, docs/datasets.md#verification).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/config.h"
#include "verify/stored_verifier.h"

namespace sluice::cli {

namespace {

struct VerifyOptions {
  std::string config_file;
  std::string data_dir;
  std::string dataset;
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
// config); otherwise Invalid, listing the configured datasets.
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
      std::filesystem::exists(std::filesystem::path(data_dir) / named)) {
    return named;
  }
  return arrow::Status::Invalid("dataset ", named, " is not configured (configured: ", list,
                                ") and nothing is stored at ",
                                (std::filesystem::path(data_dir) / named).string());
}

// 0: every block verified; 1: a block differs; 2: could not verify.
int RunVerify(const VerifyOptions& o) {
  Config config;
  auto load = [&]() -> arrow::Status {
    std::string path = o.config_file;
    if (path.empty() && std::filesystem::exists(".amp/config.toml")) path = ".amp/config.toml";
    if (!path.empty()) ARROW_RETURN_NOT_OK(ApplyTomlFile(&config, path));
    return ApplyEnvironment(&config);
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

  ProgressLine progress;
  verify::StoredVerifyOptions options;
  options.dataset_dir = std::filesystem::path(data_dir) / *dataset;
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
  cmd->add_option("--from", o->from, "First block (default: the first stored)");
  cmd->add_option("--to", o->to, "Last block (default: the last stored)");
  cmd->callback([=] { *exit_code = RunVerify(*o); });
}

}  // namespace sluice::cli
