// BlockStore compaction: merging runs of small adjacent segments into larger ones,
// and the writer's background thread that runs it (and garbage collection).
#include <algorithm>

#include "arrow/api.h"
#include "common/log.h"
#include "storage/block_store.h"
#include "storage/io_util.h"

using arrow::Status;

namespace sluice::storage {

Status BlockStore::CompactOnce() {
  ARROW_RETURN_NOT_OK(CheckWritable());
  // Choose and write without holding the writer lock (appends go on meanwhile),
  // then publish under it if the chosen segments are still there.
  auto snap = snapshot();
  // Size-tiered merging: a run of compact_min_segments adjacent segments of
  // similar size (each within a factor of 2 of the run's first, in blocks) is
  // merged into one, as long as the result stays under the size targets. Merged
  // segments are about compact_min_segments times larger than their parts, so each
  // row is rewritten about log8(blocks) times. Similar, not equal: a backfill's
  // commits of 400 to 600 blocks merge too (fixed size classes split such runs at
  // a class boundary and left them unmerged).
  auto rows_of = [](const Segment& s) {
    int64_t rows = 0;
    for (const auto& [t, f] : s.files) rows = std::max(rows, f->rows());
    return rows;
  };
  auto similar = [](const Segment& first, const Segment& s) {
    const uint64_t a = first.range.size(), b = s.range.size();
    return b <= 2 * a && a <= 2 * b;
  };
  const auto& segs = snap->segments;
  size_t best_begin = 0, best_end = 0;
  for (size_t i = 0; i < segs.size() && best_end == 0;) {
    int64_t rows = 0;
    uint64_t blocks = 0;
    size_t j = i;
    while (j < segs.size() && j - i < options_.compact_min_segments &&
           similar(segs[i], segs[j]) && rows + rows_of(segs[j]) <= options_.compact_target_rows &&
           blocks + segs[j].range.size() <= options_.compact_target_blocks) {
      rows += rows_of(segs[j]);
      blocks += segs[j].range.size();
      ++j;
    }
    if (j - i >= options_.compact_min_segments) {
      best_begin = i;
      best_end = j;
    }
    i = std::max(j, i + 1);
  }
  if (best_end - best_begin < 2) return Status::OK();

  Segment merged;
  merged.range = {segs[best_begin].range.start, segs[best_end - 1].range.end};
  merged.seq = NextSeq();
  std::vector<std::shared_ptr<SegmentFile>> retired;
  for (const auto& t : options_.tables) {
    std::vector<std::shared_ptr<arrow::Table>> parts;
    std::vector<std::string> objects;
    for (size_t i = best_begin; i < best_end; ++i) {
      auto f = segs[i].files.find(t.name);
      if (f != segs[i].files.end()) objects.push_back(f->second->object());
    }
    if (objects.empty()) continue;
    ARROW_ASSIGN_OR_RAISE(auto pin, options_.segments->Fetch(objects));
    for (size_t i = best_begin; i < best_end; ++i) {
      auto f = segs[i].files.find(t.name);
      if (f == segs[i].files.end()) continue;
      ARROW_ASSIGN_OR_RAISE(auto part, ReadParquet(f->second->path()));
      parts.push_back(std::move(part));
      retired.push_back(f->second);
    }
    ARROW_ASSIGN_OR_RAISE(auto all, arrow::ConcatenateTables(parts));
    ARROW_ASSIGN_OR_RAISE(merged.files[t.name], WriteFile(t.name, merged.range, merged.seq, all));
  }
  auto discard = [&] {
    for (auto& [t, f] : merged.files) f->Retire();
  };
  Status put = PutFiles({&merged});
  if (!put.ok()) {
    discard();
    return put;
  }
  std::lock_guard<std::mutex> wlock(write_mu_);
  auto cur = snapshot();
  const auto& now = cur->segments;
  size_t at = 0;
  while (at < now.size() && now[at].seq != segs[best_begin].seq) ++at;
  bool intact = at + (best_end - best_begin) <= now.size();
  for (size_t i = 0; intact && i < best_end - best_begin; ++i) {
    intact = now[at + i].seq == segs[best_begin + i].seq;
  }
  if (!intact) {  // a truncation or another compaction got there first
    discard();
    return Status::OK();
  }
  Change change;
  change.segments.assign(now.begin(), now.begin() + at);
  change.added.push_back(merged.seq);
  change.segments.push_back(std::move(merged));
  change.segments.insert(change.segments.end(), now.begin() + at + (best_end - best_begin),
                         now.end());
  change.headers = cur->headers;
  change.retired = std::move(retired);
  LOG_DEBUG("{}: compacted {} segments into blocks {}-{}", options_.dataset,
            best_end - best_begin, change.segments[at].range.start,
            change.segments[at].range.end);
  // A failed publish leaves the merged files unpublished (deleted at the next
  // start or by garbage collection): a commit of unknown outcome may name them.
  return Publish(std::move(change));
}

void BlockStore::BackgroundLoop() {
  uint64_t seen = 0;
  const bool gc = options_.metadata->shared();
  auto next_gc = std::chrono::steady_clock::now();  // at start: what a crash left
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait_for(lock, std::chrono::seconds(5),
                        [&] { return stopping_ || current_->version != seen; });
      if (stopping_) return;
      seen = current_->version;
    }
    auto st = CompactOnce();
    if (!st.ok()) LOG_WARN("{}: compaction failed: {}", options_.dataset, st.ToString());
    if (gc && std::chrono::steady_clock::now() >= next_gc) {
      auto deleted = CollectGarbage();
      if (!deleted.ok()) {
        LOG_WARN("{}: garbage collection failed: {}", options_.dataset,
                 deleted.status().ToString());
      }
      next_gc = std::chrono::steady_clock::now() + options_.gc_interval;
    }
  }
}

}  // namespace sluice::storage
