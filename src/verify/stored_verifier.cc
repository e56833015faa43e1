#include "verify/stored_verifier.h"

#include <algorithm>
#include <map>

#include "storage/io_util.h"

namespace sluice::verify {

using arrow::Status;

namespace {

// Times the metadata is read again after a file vanished under the reader.
constexpr int kMetadataRereads = 3;

// The tables a segment's verification reads.
constexpr const char* kTables[] = {"blocks", "transactions", "logs"};

// One table's rows of a segment: its file (fetched), or no rows of the table's
// schema when the segment has none.
arrow::Result<std::shared_ptr<arrow::Table>> ReadTable(const StoredVerifyOptions& options,
                                                       const storage::SegmentRecord& seg,
                                                       const std::string& table) {
  auto f = seg.files.find(table);
  if (f == seg.files.end()) {
    auto def = std::find_if(options.tables.begin(), options.tables.end(),
                            [&](const storage::TableDef& t) { return t.name == table; });
    if (def == options.tables.end()) return Status::Invalid("no table ", table, " to verify");
    return arrow::Table::MakeEmpty(def->schema);
  }
  const auto path = options.segments->LocalPath(f->second.object);
  auto read = storage::ReadParquet(path);
  if (!read.ok()) {
    return Status::IOError("reading ", path.string(), ": ", read.status().message());
  }
  return read;
}

std::optional<storage::BlockRange> RangeOf(const storage::MetadataState& state) {
  if (state.segments.empty()) return std::nullopt;
  return storage::BlockRange{state.segments.front().range.start,
                             state.segments.back().range.end};
}

}  // namespace

arrow::Result<VerifyReport> VerifyStored(const StoredVerifyOptions& options) {
  const std::string& name = options.name;
  VerifyReport total;
  std::optional<storage::BlockRange> range;  // fixed at the first read of the metadata
  uint64_t next = 0;                         // first block not yet verified
  for (int reads = 0;; ++reads) {
    ARROW_ASSIGN_OR_RAISE(auto state, options.metadata->Load());
    if (state.version == 0) return Status::IOError("no dataset in ", name, " (nothing published)");
    auto stored = RangeOf(state);
    if (!range) {
      if (!stored) return Status::IOError("dataset ", name, " holds no block");
      range = storage::BlockRange{options.from.value_or(stored->start),
                                  options.to.value_or(stored->end)};
      if (range->start > range->end) {
        return Status::Invalid("blocks ", range->start, "..", range->end, " is an empty range");
      }
      if (range->start < stored->start || range->end > stored->end) {
        return Status::Invalid("blocks ", range->start, "..", range->end,
                               " are not all stored: ", name, " holds blocks ", stored->start,
                               "..", stored->end);
      }
      next = range->start;
    } else if (!stored || next < stored->start || range->end > stored->end) {
      return Status::IOError("the stored blocks changed under verification (", name,
                             " now holds ",
                             stored ? std::to_string(stored->start) + ".." +
                                          std::to_string(stored->end)
                                    : std::string("none"),
                             ")");
    }
    Status vanished;
    for (const auto& seg : state.segments) {
      if (seg.range.end < next || seg.range.start > range->end) continue;
      // Local for the time it is read (an object store: in the segment cache).
      std::vector<std::string> objects;
      for (const char* t : kTables) {
        auto f = seg.files.find(t);
        if (f != seg.files.end()) objects.push_back(f->second.object);
      }
      auto pin = options.segments->Fetch(objects);
      if (!pin.ok()) {
        vanished = pin.status();
        break;
      }
      std::map<std::string, std::shared_ptr<arrow::Table>> read;
      for (const char* t : kTables) {
        auto table = ReadTable(options, seg, t);
        if (!table.ok()) {
          vanished = table.status();
          break;
        }
        read[t] = std::move(*table);
      }
      if (!vanished.ok()) break;
      const BlockRows rows{read["blocks"], read["transactions"], read["logs"]};
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
      return Status::IOError("the metadata of ", name, " has no segment for block ", next);
    }
    if (reads + 1 >= kMetadataRereads) return vanished;
  }
}

}  // namespace sluice::verify
