#include "verify/stored_verifier.h"

#include "storage/manifest.h"

namespace sluice::verify {

namespace fs = std::filesystem;
using arrow::Status;

namespace {

// Times the manifest is read again after a file vanished under the reader.
constexpr int kManifestRereads = 3;

// One table's rows of a segment: its file, or the table's empty file when the
// segment has no rows of it.
arrow::Result<std::shared_ptr<arrow::Table>> ReadTable(const fs::path& dir,
                                                       const storage::Segment& seg,
                                                       const std::string& table) {
  auto f = seg.files.find(table);
  const fs::path path =
      f != seg.files.end() ? f->second->path() : dir / table / "empty.parquet";
  auto read = storage::ReadParquetFile(path);
  if (!read.ok()) {
    return Status::IOError("reading ", path.string(), ": ", read.status().message());
  }
  return read;
}

}  // namespace

arrow::Result<VerifyReport> VerifyStored(const StoredVerifyOptions& options) {
  const fs::path& dir = options.dataset_dir;
  VerifyReport total;
  std::optional<storage::BlockRange> range;  // fixed at the first manifest read
  uint64_t next = 0;                         // first block not yet verified
  for (int reads = 0;; ++reads) {
    ARROW_ASSIGN_OR_RAISE(auto manifest, storage::ReadManifest(dir));
    if (!manifest) return Status::IOError("no dataset in ", dir.string(), " (no manifest.json)");
    auto stored = manifest->range();
    if (!range) {
      if (!stored) return Status::IOError("dataset ", dir.string(), " holds no block");
      range = storage::BlockRange{options.from.value_or(stored->start),
                                  options.to.value_or(stored->end)};
      if (range->start > range->end) {
        return Status::Invalid("blocks ", range->start, "..", range->end, " is an empty range");
      }
      if (range->start < stored->start || range->end > stored->end) {
        return Status::Invalid("blocks ", range->start, "..", range->end,
                               " are not all stored: ", dir.string(), " holds blocks ",
                               stored->start, "..", stored->end);
      }
      next = range->start;
    } else if (!stored || next < stored->start || range->end > stored->end) {
      return Status::IOError("the stored blocks changed under verification (", dir.string(),
                             " now holds ",
                             stored ? std::to_string(stored->start) + ".." +
                                          std::to_string(stored->end)
                                    : std::string("none"),
                             ")");
    }
    Status vanished;
    for (const auto& seg : manifest->segments) {
      if (seg.range.end < next || seg.range.start > range->end) continue;
      auto blocks = ReadTable(dir, seg, "blocks");
      auto txs = blocks.ok() ? ReadTable(dir, seg, "transactions") : blocks;
      auto logs = txs.ok() ? ReadTable(dir, seg, "logs") : txs;
      if (!logs.ok()) {
        vanished = logs.status();
        break;
      }
      const BlockRows rows{*blocks, *txs, *logs};
      const storage::BlockRange part{std::max(next, seg.range.start),
                                     std::min(range->end, seg.range.end)};
      auto report = VerifyBlocks(rows, part);
      if (!report.ok()) {
        return report.status().WithMessage("blocks ", seg.range.start, "..", seg.range.end, ": ",
                                           report.status().message());
      }
      total.blocks += report->blocks;
      total.transactions += report->transactions;
      total.logs += report->logs;
      for (auto& m : report->mismatches) {
        if (options.on_mismatch) options.on_mismatch(m);
        total.mismatches.push_back(std::move(m));
      }
      next = part.end + 1;
      if (options.on_progress) {
        options.on_progress({*range, total.blocks, total.mismatches.size()});
      }
      if (part.end == range->end) return total;
    }
    if (vanished.ok()) {
      if (next > range->end) return total;
      return Status::IOError("the manifest of ", dir.string(), " has no segment for block ", next);
    }
    if (reads + 1 >= kManifestRereads) return vanished;
  }
}

}  // namespace sluice::verify
