#include "storage/snapshot.h"

#include <algorithm>
#include <charconv>

#include "common/hex.h"
#include "fmt/format.h"
#include "storage/segment_store.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

// ---- SegmentFile ------------------------------------------------------------------

SegmentFile::SegmentFile(std::shared_ptr<SegmentStore> store, std::string object, int64_t rows,
                         int64_t bytes)
    : store_(std::move(store)), object_(std::move(object)), rows_(rows), bytes_(bytes) {
  path_ = store_ ? store_->LocalPath(object_) : fs::path(object_);
}

SegmentFile::~SegmentFile() {
  if (retired_ && store_) store_->Released(object_);
}

// ---- HeaderIndex ------------------------------------------------------------------

const BlockHeader* HeaderIndex::Find(uint64_t number) const {
  if (count_ == 0 || number < first_ || number >= first_ + count_) return nullptr;
  uint64_t off = number - first_;
  return &(*chunks_[off / kChunk])[off % kChunk];
}

void HeaderIndex::Append(const BlockHeader& h) {
  if (count_ == 0) {
    first_ = h.number;
    chunks_.clear();
  }
  uint64_t off = count_;
  if (off % kChunk == 0) {
    auto chunk = std::make_shared<std::vector<BlockHeader>>();
    chunk->reserve(kChunk);
    chunks_.push_back(std::move(chunk));
  } else if (chunks_.back().use_count() > 1) {
    // Shared with a snapshot: copy on write so the snapshot never changes.
    auto copy = std::make_shared<std::vector<BlockHeader>>(*chunks_.back());
    copy->reserve(kChunk);
    chunks_.back() = std::move(copy);
  }
  chunks_.back()->push_back(h);
  ++count_;
}

void HeaderIndex::TruncateAfter(uint64_t number) {
  if (count_ == 0) return;
  if (number < first_) {
    count_ = 0;
    chunks_.clear();
    return;
  }
  uint64_t keep = std::min(count_, number - first_ + 1);
  size_t nchunks = (keep + kChunk - 1) / kChunk;
  chunks_.resize(nchunks);
  size_t in_last = keep - (nchunks - 1) * kChunk;
  if (chunks_.back()->size() != in_last) {
    auto copy = std::make_shared<std::vector<BlockHeader>>(chunks_.back()->begin(),
                                                           chunks_.back()->begin() + in_last);
    copy->reserve(kChunk);
    chunks_.back() = std::move(copy);
  }
  count_ = keep;
}

// ---- Snapshot ---------------------------------------------------------------------

std::vector<fs::path> Snapshot::FilesFor(const std::string& table, uint64_t lo,
                                         uint64_t hi) const {
  std::vector<fs::path> out;
  auto it = empty_files.find(table);
  if (it != empty_files.end()) out.push_back(it->second);
  if (lo > hi) return out;  // an empty range
  for (const auto& seg : segments) {
    if (seg.range.end < lo || seg.range.start > hi) continue;
    auto f = seg.files.find(table);
    if (f != seg.files.end()) out.push_back(f->second->path());
  }
  return out;
}

Result<std::shared_ptr<void>> Snapshot::Fetch(const std::string& table, uint64_t lo,
                                              uint64_t hi) const {
  if (!segment_store || !segment_store->remote() || lo > hi) return std::shared_ptr<void>();
  std::vector<std::string> objects;
  for (const auto& seg : segments) {
    if (seg.range.end < lo || seg.range.start > hi) continue;
    auto f = seg.files.find(table);
    if (f != seg.files.end()) objects.push_back(f->second->object());
  }
  if (objects.empty()) return std::shared_ptr<void>();
  return segment_store->Fetch(objects);
}

// ---- hashes, names ----------------------------------------------------------------

std::string HashToHex(const Hash32& h) { return common::ToHex(h.data(), h.size()); }

Result<Hash32> HashFromHex(std::string_view hex) {
  Hash32 h{};
  ARROW_ASSIGN_OR_RAISE(auto bytes, common::FromHex(hex));
  if (bytes.size() != 32) {
    return Status::Invalid("expected a 32-byte hash, got ", bytes.size(), " bytes: ", hex);
  }
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

std::string SegmentFileName(const BlockRange& r, uint64_t seq) {
  return fmt::format("{:012}-{:012}.{}.parquet", r.start, r.end, seq);
}

std::optional<uint64_t> SeqOfObject(std::string_view object) {
  // `[<table>/]<first>-<last>.<seq>.parquet`
  constexpr std::string_view kExt = ".parquet";
  if (object.size() <= kExt.size() || object.substr(object.size() - kExt.size()) != kExt) {
    return std::nullopt;
  }
  object.remove_suffix(kExt.size());
  const auto dot = object.rfind('.');
  const auto slash = object.rfind('/');
  const auto name_start = slash == std::string_view::npos ? 0 : slash + 1;
  if (dot == std::string_view::npos || object.find('-', name_start) >= dot) return std::nullopt;
  const std::string_view digits = object.substr(dot + 1);
  uint64_t seq = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    return std::nullopt;
  }
  return seq;
}

}  // namespace sluice::storage
