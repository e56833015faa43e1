// BlockStore over shared metadata (PostgreSQL): a query server following what the
// writer publishes (Refresh), and the writer's garbage collection of retired
// objects after a grace period (CollectGarbage).
#include <set>

#include "common/log.h"
#include "storage/block_store.h"

using arrow::Result;
using arrow::Status;

namespace sluice::storage {

Status BlockStore::Refresh() {
  if (!options_.read_only) return Status::Invalid("Refresh is for read-only stores");
  std::lock_guard<std::mutex> refresh_lock(refresh_mu_);
  auto old = snapshot();
  std::optional<uint64_t> head;
  if (old->range) head = old->range->end;
  uint64_t replaced_seen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    replaced_seen = replaced_seen_;
  }
  ARROW_ASSIGN_OR_RAISE(auto change, options_.metadata->Changes(old->version, head, replaced_seen));
  if (!change) return Status::OK();

  auto snap = std::make_shared<Snapshot>();
  snap->version = change->version;
  snap->dataset = old->dataset;
  snap->network = old->network;
  snap->tables = old->tables;
  snap->empty_files = old->empty_files;
  snap->segment_store = old->segment_store;
  // Files the old version lists are the same objects (immutable): reuse them, so
  // the ones no longer listed can be retired (their cached copies dropped once
  // the last reader is done).
  std::map<std::string, std::shared_ptr<SegmentFile>> known;
  for (const auto& seg : old->segments) {
    for (const auto& [t, f] : seg.files) known[f->object()] = f;
  }
  std::set<std::string> listed;
  std::vector<std::string> fresh;  // objects of newly published blocks, fetched ahead
  for (const auto& rec : change->segments) {
    Segment seg;
    seg.range = rec.range;
    seg.seq = rec.seq;
    for (const auto& [table, f] : rec.files) {
      listed.insert(f.object);
      auto it = known.find(f.object);
      if (it != known.end()) {
        seg.files[table] = it->second;
      } else {
        seg.files[table] = MakeFile(f);
        if (!head || rec.range.end > *head) fresh.push_back(f.object);
      }
    }
    snap->segments.push_back(std::move(seg));
  }
  if (!snap->segments.empty()) {
    snap->range = BlockRange{snap->segments.front().range.start, snap->segments.back().range.end};
  }
  if (!change->full) snap->headers = old->headers;
  if (change->headers_after) snap->headers.TruncateAfter(*change->headers_after);
  for (const auto& h : change->headers.value_or(std::vector<BlockHeader>{})) {
    if (!snap->headers.empty() && h.number != *snap->headers.last() + 1) {
      return Status::IOError(options_.metadata->Describe(), ": header of block ", h.number,
                             " does not follow block ", *snap->headers.last());
    }
    snap->headers.Append(h);
  }
  if (snap->range && (snap->headers.first() != snap->range->start ||
                      snap->headers.last() != snap->range->end)) {
    return Status::IOError(options_.metadata->Describe(), ": the headers of ", options_.dataset,
                           " do not cover its segments' blocks ", snap->range->start, "-",
                           snap->range->end);
  }
  // New blocks are fetched into the local cache before streams wake up for them:
  // the stream's microbatch then reads local files. A failure only logs: queries
  // fetch what they need themselves and fail clearly if they cannot.
  if (!fresh.empty() && options_.segments->remote()) {
    auto pin = options_.segments->Fetch(fresh);
    if (!pin.ok()) {
      LOG_WARN("{}: cannot fetch new segments ahead: {}", options_.dataset,
               pin.status().ToString());
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (change->identity) identity_ = change->identity;
    if (change->full) {
      replaced_.clear();
      replaced_order_.clear();
    }
    replaced_seen_ = change->replaced_seen;
  }
  RememberReplaced(change->replaced);
  for (const auto& [object, f] : known) {
    if (!listed.count(object)) f->Retire();
  }
  Install(std::move(snap));
  return Status::OK();
}

Result<size_t> BlockStore::CollectGarbage() {
  if (options_.read_only || !options_.metadata->shared()) return 0;
  ARROW_ASSIGN_OR_RAISE(auto retired, options_.metadata->RetiredObjects(options_.gc_grace));
  // Listed after asking the metadata: an object published since is in `keep` or
  // newer than the grace period.
  ARROW_ASSIGN_OR_RAISE(auto objects, options_.segments->List());
  std::set<std::string> keep(retired.keep.begin(), retired.keep.end());
  {
    auto snap = snapshot();
    for (const auto& seg : snap->segments) {
      for (const auto& [t, f] : seg.files) keep.insert(f->object());
    }
  }
  std::set<std::string> expired(retired.expired.begin(), retired.expired.end());
  const auto cutoff = std::chrono::system_clock::now() - options_.gc_grace;
  std::vector<std::string> doomed(retired.expired.begin(), retired.expired.end());
  for (const auto& o : objects) {
    // Never published (a writer died between upload and commit), and old enough
    // that no writer can still be about to commit it.
    if (!keep.count(o.object) && !expired.count(o.object) && o.written < cutoff) {
      doomed.push_back(o.object);
    }
  }
  if (doomed.empty()) return 0;
  ARROW_RETURN_NOT_OK(options_.segments->Delete(doomed));
  ARROW_RETURN_NOT_OK(options_.metadata->ForgetRetired(retired.expired));
  LOG_INFO("{}: garbage collection deleted {} object(s) from {}", options_.dataset,
           doomed.size(), options_.segments->Describe());
  return doomed.size();
}

}  // namespace sluice::storage
