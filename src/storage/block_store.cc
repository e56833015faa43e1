#include "storage/block_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <set>

#include "arrow/api.h"
#include "arrow/io/file.h"
#include "common/hex.h"
#include "common/log.h"
#include "nlohmann/json.hpp"
#include "parquet/arrow/reader.h"
#include "parquet/arrow/writer.h"
#include "parquet/properties.h"
#include "storage/segment_format.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

constexpr int kManifestFormat = 1;

Status FsyncPath(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open ", path.string(), " for fsync: ", strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("fsync ", path.string(), ": ", strerror(err));
  return Status::OK();
}

// Runs fn(0) … fn(n-1) at once, fn(0) on this thread and each other on a thread
// of its own, and returns the first error. For the few independent writes and
// fsyncs of one commit: their waits for the disk overlap instead of adding up.
Status ParallelFor(size_t n, const std::function<Status(size_t)>& fn) {
  std::vector<std::future<Status>> others;
  others.reserve(n > 0 ? n - 1 : 0);
  for (size_t i = 1; i < n; ++i) others.push_back(std::async(std::launch::async, fn, i));
  Status st = n > 0 ? fn(0) : Status::OK();
  for (auto& f : others) {
    Status other = f.get();
    if (st.ok()) st = std::move(other);
  }
  return st;
}

std::string SegmentFileName(const BlockRange& r, uint64_t seq) {
  return fmt::format("{:012}-{:012}.{}.parquet", r.start, r.end, seq);
}

Status WriteParquet(const fs::path& path, const std::shared_ptr<arrow::Table>& table,
                    int64_t row_group_rows, bool sync,
                    const std::vector<std::string>& bloom_filter_columns = {}) {
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path.string()));
  auto props = SegmentWriterProperties(*table->schema(), row_group_rows, bloom_filter_columns);
  ARROW_RETURN_NOT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out,
                                                 row_group_rows, props,
                                                 SegmentArrowWriterProperties()));
  ARROW_RETURN_NOT_OK(out->Close());
  if (sync) ARROW_RETURN_NOT_OK(FsyncPath(path));
  return Status::OK();
}

Result<std::shared_ptr<arrow::Table>> ReadParquet(const fs::path& path,
                                                  std::vector<int> columns = {}) {
  ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(path.string()));
  ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(in, arrow::default_memory_pool()));
  if (columns.empty()) return reader->ReadTable();
  return reader->ReadTable(columns);
}

}  // namespace

// ---- SegmentFile ------------------------------------------------------------------

SegmentFile::~SegmentFile() {
  if (retired_) {
    std::error_code ec;
    fs::remove(path_, ec);
  }
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
  for (const auto& seg : segments) {
    if (seg.range.end < lo || seg.range.start > hi) continue;
    auto f = seg.files.find(table);
    if (f != seg.files.end()) out.push_back(f->second->path());
  }
  return out;
}

// ---- hashes -----------------------------------------------------------------------

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

// ---- BlockStore -------------------------------------------------------------------

BlockStore::BlockStore(StoreOptions options)
    : options_(std::move(options)), dir_(options_.data_dir / options_.dataset) {}

BlockStore::~BlockStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (compactor_.joinable()) compactor_.join();
}

Result<std::unique_ptr<BlockStore>> BlockStore::Open(StoreOptions options) {
  for (const auto& t : options.tables) {
    auto f = t.schema->GetFieldByName("block_num");
    if (!f || f->type()->id() != arrow::Type::UINT64) {
      return Status::Invalid("table ", t.name, " has no UInt64 column block_num");
    }
  }
  std::unique_ptr<BlockStore> store(new BlockStore(std::move(options)));
  ARROW_RETURN_NOT_OK(store->Load());
  store->compactor_ = std::thread([s = store.get()] { s->CompactorLoop(); });
  return store;
}

Status BlockStore::Load() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::IOError("cannot create ", dir_.string(), ": ", ec.message());

  auto snap = std::make_shared<Snapshot>();
  snap->dataset = options_.dataset;
  snap->network = options_.network;
  snap->tables = options_.tables;

  // Empty files: one per table with its schema, so a table always has a file to read.
  for (const auto& t : options_.tables) {
    fs::path tdir = dir_ / t.name;
    fs::create_directories(tdir, ec);
    if (ec) return Status::IOError("cannot create ", tdir.string(), ": ", ec.message());
    fs::path empty = tdir / "empty.parquet";
    bool rewrite = true;
    if (fs::exists(empty)) {
      auto existing = ReadParquet(empty);
      if (existing.ok()) {
        if (!(*existing)->schema()->Equals(*t.schema, /*check_metadata=*/false)) {
          return Status::Invalid("stored table ", options_.dataset, ".", t.name,
                                 " has a different schema than this version of sluice writes; "
                                 "use a new data_dir. stored: ",
                                 (*existing)->schema()->ToString(), " expected: ",
                                 t.schema->ToString());
        }
        rewrite = false;
      }
    }
    if (rewrite) {
      ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::MakeEmpty(t.schema));
      fs::path tmp = tdir / "empty.parquet.tmp";
      ARROW_RETURN_NOT_OK(WriteParquet(tmp, table, options_.row_group_rows, options_.fsync));
      fs::rename(tmp, empty, ec);
      if (ec) return Status::IOError("rename ", tmp.string(), ": ", ec.message());
    }
    snap->empty_files[t.name] = empty;
  }

  // Manifest.
  fs::path manifest = dir_ / "manifest.json";
  std::set<fs::path> referenced;
  if (fs::exists(manifest)) {
    std::ifstream in(manifest);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      return Status::IOError("corrupt manifest ", manifest.string(), ": ", e.what());
    }
    if (j.value("format", 0) != kManifestFormat) {
      return Status::Invalid("manifest ", manifest.string(), " has unknown format ",
                             j.value("format", 0));
    }
    if (j.contains("identity") && !j["identity"].is_null()) {
      ChainIdentity id;
      id.chain_id = j["identity"]["chain_id"].get<uint64_t>();
      ARROW_ASSIGN_OR_RAISE(id.genesis_hash,
                            HashFromHex(j["identity"]["genesis_hash"].get<std::string>()));
      identity_ = id;
    }
    snap->version = j.value("version", uint64_t{0});
    next_seq_ = j.value("next_seq", uint64_t{1});
    for (const auto& js : j["segments"]) {
      Segment seg;
      seg.range = {js["start"].get<uint64_t>(), js["end"].get<uint64_t>()};
      seg.seq = js["seq"].get<uint64_t>();
      for (const auto& [table, jf] : js["files"].items()) {
        fs::path p = dir_ / table / jf["file"].get<std::string>();
        if (!fs::exists(p)) {
          return Status::IOError("manifest names missing file ", p.string());
        }
        referenced.insert(p);
        seg.files[table] = std::make_shared<SegmentFile>(p, jf["rows"].get<int64_t>());
      }
      snap->segments.push_back(std::move(seg));
    }
  }

  // Delete what a crash left unpublished.
  for (const auto& t : options_.tables) {
    for (const auto& entry : fs::directory_iterator(dir_ / t.name)) {
      const auto& p = entry.path();
      if (p.filename() == "empty.parquet") continue;
      if (!referenced.count(p)) {
        LOG_INFO("removing unpublished file {}", p.string());
        fs::remove(p, ec);
      }
    }
  }

  // Header index from the blocks table's hash columns (the first table holds the
  // block rows; every segment has one row per block there).
  if (!snap->segments.empty()) {
    const std::string& blocks_table = options_.tables.front().name;
    const auto& schema = options_.tables.front().schema;
    std::vector<int> cols = {schema->GetFieldIndex("block_num"), schema->GetFieldIndex("hash"),
                             schema->GetFieldIndex("parent_hash"),
                             schema->GetFieldIndex("timestamp")};
    for (int c : cols) {
      if (c < 0) return Status::Invalid("first table must be the blocks table");
    }
    for (const auto& seg : snap->segments) {
      auto f = seg.files.find(blocks_table);
      if (f == seg.files.end()) {
        return Status::IOError("segment ", seg.range.start, "-", seg.range.end,
                               " has no blocks file");
      }
      ARROW_ASSIGN_OR_RAISE(auto t, ReadParquet(f->second->path(), cols));
      ARROW_ASSIGN_OR_RAISE(t, t->CombineChunks());
      auto num = std::static_pointer_cast<arrow::UInt64Array>(t->column(0)->chunk(0));
      auto hash = std::static_pointer_cast<arrow::FixedSizeBinaryArray>(t->column(1)->chunk(0));
      auto parent = std::static_pointer_cast<arrow::FixedSizeBinaryArray>(t->column(2)->chunk(0));
      auto ts = std::static_pointer_cast<arrow::TimestampArray>(t->column(3)->chunk(0));
      if (static_cast<uint64_t>(t->num_rows()) != seg.range.size()) {
        return Status::IOError("segment ", seg.range.start, "-", seg.range.end, " has ",
                               t->num_rows(), " block rows");
      }
      for (int64_t i = 0; i < t->num_rows(); ++i) {
        BlockHeader h;
        h.number = num->Value(i);
        std::memcpy(h.hash.data(), hash->GetValue(i), 32);
        std::memcpy(h.parent_hash.data(), parent->GetValue(i), 32);
        h.timestamp = ts->Value(i) / 1000000000LL;
        snap->headers.Append(h);
      }
    }
    snap->range = BlockRange{snap->segments.front().range.start, snap->segments.back().range.end};
  }
  current_ = std::move(snap);

  // Blocks removed by earlier reorgs.
  fs::path replaced = dir_ / "replaced.json";
  if (fs::exists(replaced)) {
    std::ifstream in(replaced);
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_array()) {
      for (const auto& e : j) {
        auto hash = HashFromHex(e.value("hash", ""));
        auto parent = HashFromHex(e.value("parent_hash", ""));
        if (!hash.ok() || !parent.ok()) continue;
        BlockHeader h{e.value("number", uint64_t{0}), *hash, *parent, e.value("timestamp", int64_t{0})};
        replaced_[{h.number, h.hash}] = h;
        replaced_order_.push_back({h.number, h.hash});
      }
    } else {
      LOG_WARN("ignoring unreadable {}", replaced.string());
    }
  }
  return Status::OK();
}

Status BlockStore::SaveReplaced() {
  // Caller holds write_mu_.
  nlohmann::json j = nlohmann::json::array();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& key : replaced_order_) {
      const auto& h = replaced_.at(key);
      j.push_back({{"number", h.number},
                   {"hash", HashToHex(h.hash)},
                   {"parent_hash", HashToHex(h.parent_hash)},
                   {"timestamp", h.timestamp}});
    }
  }
  fs::path tmp = dir_ / "replaced.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump();
    if (!out) return Status::IOError("cannot write ", tmp.string());
  }
  if (options_.fsync) ARROW_RETURN_NOT_OK(FsyncPath(tmp));
  std::error_code ec;
  fs::rename(tmp, dir_ / "replaced.json", ec);
  if (ec) return Status::IOError("rename ", tmp.string(), ": ", ec.message());
  return Status::OK();
}

std::optional<uint64_t> BlockStore::CommonAncestor(const Snapshot& snapshot, uint64_t number,
                                                   const Hash32& hash) const {
  std::lock_guard<std::mutex> lock(mu_);
  Hash32 h = hash;
  for (uint64_t n = number;; --n) {
    const auto* canonical = snapshot.Header(n);
    if (canonical != nullptr && canonical->hash == h) return n;
    auto it = replaced_.find({n, h});
    if (it == replaced_.end() || n == 0) return std::nullopt;
    h = it->second.parent_hash;
  }
}

std::optional<ChainIdentity> BlockStore::identity() const {
  std::lock_guard<std::mutex> lock(mu_);
  return identity_;
}

Status BlockStore::SetIdentity(const ChainIdentity& identity) {
  std::lock_guard<std::mutex> wlock(write_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (identity_) {
      if (*identity_ == identity) return Status::OK();
      return Status::Invalid("data directory ", dir_.string(), " holds chain id ",
                             identity_->chain_id, " with genesis ",
                             HashToHex(identity_->genesis_hash), ", not chain id ",
                             identity.chain_id, " with genesis ", HashToHex(identity.genesis_hash));
    }
    identity_ = identity;
  }
  auto snap = snapshot();
  return WriteManifest(snap->segments, snap->version);
}

std::shared_ptr<const Snapshot> BlockStore::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::optional<BlockHeader> BlockStore::head() const {
  auto snap = snapshot();
  if (!snap->range) return std::nullopt;
  return *snap->Header(snap->range->end);
}

uint64_t BlockStore::WaitForVersion(uint64_t version, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return current_->version > version || stopping_; });
  return current_->version;
}

void BlockStore::Subscribe(std::function<void(const Snapshot&)> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.push_back(std::move(callback));
}

Result<std::shared_ptr<SegmentFile>> BlockStore::WriteFile(
    const std::string& table, const BlockRange& range, uint64_t seq,
    const std::shared_ptr<arrow::Table>& rows) {
  fs::path p = dir_ / table / SegmentFileName(range, seq);
  std::vector<std::string> bloom;
  for (const auto& t : options_.tables) {
    if (t.name == table) bloom = t.bloom_filter_columns;
  }
  ARROW_RETURN_NOT_OK(WriteParquet(p, rows, options_.row_group_rows, options_.fsync, bloom));
  return std::make_shared<SegmentFile>(p, rows->num_rows());
}

Status BlockStore::WriteManifest(const std::vector<Segment>& segments, uint64_t version,
                                 bool sync_dirs) {
  nlohmann::json j;
  j["format"] = kManifestFormat;
  j["dataset"] = options_.dataset;
  j["network"] = options_.network;
  j["version"] = version;
  {
    std::lock_guard<std::mutex> lock(mu_);
    j["next_seq"] = next_seq_;
    if (identity_) {
      j["identity"] = {{"chain_id", identity_->chain_id},
                       {"genesis_hash", HashToHex(identity_->genesis_hash)}};
    } else {
      j["identity"] = nullptr;
    }
  }
  auto& jsegs = j["segments"] = nlohmann::json::array();
  for (const auto& seg : segments) {
    nlohmann::json js;
    js["start"] = seg.range.start;
    js["end"] = seg.range.end;
    js["seq"] = seg.seq;
    js["files"] = nlohmann::json::object();
    for (const auto& [table, f] : seg.files) {
      js["files"][table] = {{"file", f->path().filename().string()}, {"rows", f->rows()}};
    }
    jsegs.push_back(std::move(js));
  }
  fs::path tmp = dir_ / "manifest.json.tmp";
  fs::path dst = dir_ / "manifest.json";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump();
    out.flush();
    if (!out) return Status::IOError("cannot write ", tmp.string());
  }
  // The new files' directory entries are made durable beside the temporary
  // manifest (nothing names it before the rename below), the rename only after both.
  if (options_.fsync) {
    ARROW_RETURN_NOT_OK(ParallelFor(1 + (sync_dirs ? options_.tables.size() : 0), [&](size_t i) {
      return FsyncPath(i == 0 ? tmp : dir_ / options_.tables[i - 1].name);
    }));
  }
  std::error_code ec;
  fs::rename(tmp, dst, ec);
  if (ec) return Status::IOError("rename ", tmp.string(), ": ", ec.message());
  if (options_.fsync) ARROW_RETURN_NOT_OK(FsyncPath(dir_));
  return Status::OK();
}

Status BlockStore::Publish(std::vector<Segment> segments, HeaderIndex headers,
                           std::vector<std::shared_ptr<SegmentFile>> retired) {
  // Caller holds write_mu_. New files are already durable; WriteManifest makes
  // the table directories' entries durable, then swaps the manifest.
  auto old = snapshot();
  auto snap = std::make_shared<Snapshot>();
  snap->version = old->version + 1;
  snap->dataset = old->dataset;
  snap->network = old->network;
  snap->tables = old->tables;
  snap->empty_files = old->empty_files;
  snap->segments = std::move(segments);
  snap->headers = std::move(headers);
  if (!snap->segments.empty()) {
    snap->range = BlockRange{snap->segments.front().range.start, snap->segments.back().range.end};
  }
  ARROW_RETURN_NOT_OK(WriteManifest(snap->segments, snap->version, /*sync_dirs=*/true));
  for (auto& f : retired) f->Retire();
  std::vector<std::function<void(const Snapshot&)>> subs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = snap;
    subs = subscribers_;
  }
  changed_.notify_all();
  for (auto& cb : subs) cb(*snap);
  return Status::OK();
}

Status BlockStore::Append(const BlockRangeData& data) {
  if (data.headers.empty()) return Status::Invalid("Append of an empty block range");
  std::lock_guard<std::mutex> wlock(write_mu_);
  auto snap = snapshot();
  const BlockRange range{data.headers.front().number, data.headers.back().number};
  // Continuity: consecutive numbers, each parent is the previous hash.
  for (size_t i = 1; i < data.headers.size(); ++i) {
    if (data.headers[i].number != data.headers[i - 1].number + 1) {
      return Status::Invalid("Append: block ", data.headers[i].number, " follows ",
                             data.headers[i - 1].number);
    }
    if (data.headers[i].parent_hash != data.headers[i - 1].hash) {
      return Status::Invalid("Append: block ", data.headers[i].number,
                             " does not extend block ", data.headers[i - 1].number);
    }
  }
  if (snap->range) {
    if (range.start != snap->range->end + 1) {
      return Status::Invalid("Append: expected block ", snap->range->end + 1, ", got ",
                             range.start);
    }
    if (data.headers.front().parent_hash != snap->Header(snap->range->end)->hash) {
      return Status::Invalid("Append: block ", range.start, " parent ",
                             HashToHex(data.headers.front().parent_hash),
                             " is not the stored block ", snap->range->end, " ",
                             HashToHex(snap->Header(snap->range->end)->hash));
    }
  }
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
  }
  Segment seg;
  seg.range = range;
  seg.seq = seq;
  std::vector<std::pair<const TableDef*, std::shared_ptr<arrow::Table>>> writes;
  for (const auto& t : options_.tables) {
    auto it = data.tables.find(t.name);
    if (it == data.tables.end() || it->second->num_rows() == 0) continue;
    if (!it->second->schema()->Equals(*t.schema, false)) {
      return Status::Invalid("Append: table ", t.name, " schema mismatch: ",
                             it->second->schema()->ToString());
    }
    writes.emplace_back(&t, it->second);
  }
  // One file per table, written and fsync'ed side by side (the head's commit
  // is on the path of every new block to the streams).
  std::vector<std::shared_ptr<SegmentFile>> files(writes.size());
  ARROW_RETURN_NOT_OK(ParallelFor(writes.size(), [&](size_t i) -> Status {
    ARROW_ASSIGN_OR_RAISE(files[i], WriteFile(writes[i].first->name, range, seq, writes[i].second));
    return Status::OK();
  }));
  for (size_t i = 0; i < writes.size(); ++i) seg.files[writes[i].first->name] = files[i];
  std::vector<Segment> segments = snap->segments;
  segments.push_back(std::move(seg));
  HeaderIndex headers = snap->headers;
  for (const auto& h : data.headers) headers.Append(h);
  return Publish(std::move(segments), std::move(headers), {});
}

Status BlockStore::TruncateAfter(uint64_t number) {
  std::lock_guard<std::mutex> wlock(write_mu_);
  auto snap = snapshot();
  if (!snap->range || snap->range->end <= number) return Status::OK();
  std::vector<Segment> segments;
  std::vector<std::shared_ptr<SegmentFile>> retired;
  for (const auto& seg : snap->segments) {
    if (seg.range.end <= number) {
      segments.push_back(seg);
      continue;
    }
    for (const auto& [t, f] : seg.files) retired.push_back(f);
    if (seg.range.start > number) continue;
    // The segment straddles the cut: rewrite its rows at or below `number`.
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seq = next_seq_++;
    }
    Segment cut;
    cut.range = {seg.range.start, number};
    cut.seq = seq;
    for (const auto& [t, f] : seg.files) {
      ARROW_ASSIGN_OR_RAISE(auto rows, ReadParquet(f->path()));
      ARROW_ASSIGN_OR_RAISE(auto combined, rows->CombineChunks());
      auto nums = std::static_pointer_cast<arrow::UInt64Array>(
          combined->GetColumnByName("block_num")->chunk(0));
      int64_t keep = 0;
      while (keep < nums->length() && nums->Value(keep) <= number) ++keep;
      if (keep == 0) continue;
      ARROW_ASSIGN_OR_RAISE(cut.files[t], WriteFile(t, cut.range, seq, combined->Slice(0, keep)));
    }
    segments.push_back(std::move(cut));
  }
  // Remember the removed blocks first: a crash after this leaves them both
  // canonical and logged, which is harmless.
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint64_t n = number + 1; n <= snap->range->end; ++n) {
      const auto* h = snap->Header(n);
      if (replaced_.emplace(std::make_pair(n, h->hash), *h).second) {
        replaced_order_.push_back({n, h->hash});
      }
    }
    while (replaced_order_.size() > options_.replaced_log_blocks) {
      replaced_.erase(replaced_order_.front());
      replaced_order_.pop_front();
    }
  }
  ARROW_RETURN_NOT_OK(SaveReplaced());
  HeaderIndex headers = snap->headers;
  headers.TruncateAfter(number);
  LOG_INFO("{}: removed blocks above {} (was head {})", options_.dataset, number,
           snap->range->end);
  return Publish(std::move(segments), std::move(headers), std::move(retired));
}

Status BlockStore::CompactOnce() {
  // Choose and write without holding the writer lock (appends go on meanwhile),
  // then publish under it if the chosen segments are still there.
  auto snap = snapshot();
  // Tiered merging: a segment's level is floor(log8(blocks)); a run of
  // compact_min_segments adjacent segments of one level is merged into one of the
  // next level, as long as the result stays under the size targets. Each row is
  // thus rewritten about log8(blocks) times.
  auto rows_of = [](const Segment& s) {
    int64_t rows = 0;
    for (const auto& [t, f] : s.files) rows = std::max(rows, f->rows());
    return rows;
  };
  auto level_of = [](const Segment& s) {
    int level = 0;
    for (uint64_t b = s.range.size(); b >= 8; b /= 8) ++level;
    return level;
  };
  const auto& segs = snap->segments;
  size_t best_begin = 0, best_end = 0;
  for (size_t i = 0; i < segs.size() && best_end == 0;) {
    int64_t rows = 0;
    uint64_t blocks = 0;
    size_t j = i;
    const int level = level_of(segs[i]);
    while (j < segs.size() && j - i < options_.compact_min_segments &&
           level_of(segs[j]) == level && rows + rows_of(segs[j]) <= options_.compact_target_rows &&
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

  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
  }
  Segment merged;
  merged.range = {segs[best_begin].range.start, segs[best_end - 1].range.end};
  merged.seq = seq;
  std::vector<std::shared_ptr<SegmentFile>> retired;
  for (const auto& t : options_.tables) {
    std::vector<std::shared_ptr<arrow::Table>> parts;
    for (size_t i = best_begin; i < best_end; ++i) {
      auto f = segs[i].files.find(t.name);
      if (f == segs[i].files.end()) continue;
      ARROW_ASSIGN_OR_RAISE(auto part, ReadParquet(f->second->path()));
      parts.push_back(std::move(part));
      retired.push_back(f->second);
    }
    if (parts.empty()) continue;
    ARROW_ASSIGN_OR_RAISE(auto all, arrow::ConcatenateTables(parts));
    ARROW_ASSIGN_OR_RAISE(merged.files[t.name], WriteFile(t.name, merged.range, seq, all));
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
    for (auto& [t, f] : merged.files) f->Retire();
    return Status::OK();
  }
  std::vector<Segment> segments(now.begin(), now.begin() + at);
  segments.push_back(std::move(merged));
  segments.insert(segments.end(), now.begin() + at + (best_end - best_begin), now.end());
  LOG_DEBUG("{}: compacted {} segments into blocks {}-{}", options_.dataset,
            best_end - best_begin, segments[at].range.start, segments[at].range.end);
  return Publish(std::move(segments), cur->headers, std::move(retired));
}

void BlockStore::CompactorLoop() {
  uint64_t seen = 0;
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
  }
}

}  // namespace sluice::storage
