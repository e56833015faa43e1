// BlockStore: opening, appending, truncating and publishing. Compaction is in
// storage/compaction.cc, following shared metadata and garbage collection in
// storage/shared_store.cc.
#include "storage/block_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "arrow/api.h"
#include "common/log.h"
#include "storage/io_util.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

std::vector<std::string> TableNames(const std::vector<TableDef>& tables) {
  std::vector<std::string> out;
  for (const auto& t : tables) out.push_back(t.name);
  return out;
}

// The columns by which `stored` and `expected` differ, for the message that
// refuses a data directory written by another version.
std::string SchemaDifference(const arrow::Schema& stored, const arrow::Schema& expected) {
  std::string missing, extra, changed;
  auto add = [](std::string* list, const std::string& name) {
    if (!list->empty()) *list += ", ";
    *list += name;
  };
  for (const auto& f : expected.fields()) {
    auto g = stored.GetFieldByName(f->name());
    if (!g) {
      add(&missing, f->name());
    } else if (!g->Equals(*f)) {
      add(&changed, f->name());
    }
  }
  for (const auto& g : stored.fields()) {
    if (!expected.GetFieldByName(g->name())) add(&extra, g->name());
  }
  std::string out;
  if (!missing.empty()) out += "it lacks the columns " + missing + "; ";
  if (!extra.empty()) out += "it has columns this version does not: " + extra + "; ";
  if (!changed.empty()) out += "these columns differ in type: " + changed + "; ";
  if (out.empty()) out = "its columns are in another order; ";
  return out;
}

SegmentRecord ToRecord(const Segment& seg) {
  SegmentRecord r;
  r.range = seg.range;
  r.seq = seg.seq;
  for (const auto& [table, f] : seg.files) r.files[table] = {f->object(), f->rows(), f->bytes()};
  return r;
}

}  // namespace

BlockStore::BlockStore(StoreOptions options)
    : options_(std::move(options)), dir_(options_.data_dir / options_.dataset) {}

BlockStore::~BlockStore() {
  if (options_.read_only && options_.metadata) options_.metadata->StopWatching();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (background_.joinable()) background_.join();
}

Result<std::unique_ptr<BlockStore>> BlockStore::Open(StoreOptions options) {
  for (const auto& t : options.tables) {
    auto f = t.schema->GetFieldByName("block_num");
    if (!f || f->type()->id() != arrow::Type::UINT64) {
      return Status::Invalid("table ", t.name, " has no UInt64 column block_num");
    }
  }
  const fs::path dir = options.data_dir / options.dataset;
  const bool shared = options.metadata && options.metadata->shared();
  if (!options.segments) {
    LocalSegmentStoreOptions local;
    local.root = dir;
    local.fsync = options.fsync;
    // The single process's manifest fsyncs the table directories itself.
    local.sync_dirs_on_put = shared;
    local.delete_on_release = !shared;
    ARROW_ASSIGN_OR_RAISE(options.segments, MakeLocalSegmentStore(std::move(local)));
  }
  if (!options.metadata) {
    ManifestOptions manifest;
    manifest.dir = dir;
    manifest.dataset = options.dataset;
    manifest.network = options.network;
    manifest.table_dirs = TableNames(options.tables);
    manifest.fsync = options.fsync;
    manifest.replaced_log_blocks = options.replaced_log_blocks;
    ARROW_ASSIGN_OR_RAISE(options.metadata, MakeManifestMetadata(std::move(manifest)));
  }
  if (options.read_only && !options.metadata->shared()) {
    return Status::Invalid("a read-only store needs shared metadata (postgres_url)");
  }
  std::unique_ptr<BlockStore> store(new BlockStore(std::move(options)));
  ARROW_RETURN_NOT_OK(store->Load());
  BlockStore* s = store.get();
  if (s->options_.read_only) {
    ARROW_RETURN_NOT_OK(s->options_.metadata->Watch(
        [s] { return s->Refresh(); },
        [s](const Status& state) {
          std::lock_guard<std::mutex> lock(s->mu_);
          s->available_ = state;
        }));
  } else {
    s->background_ = std::thread([s] { s->BackgroundLoop(); });
  }
  return store;
}

Status BlockStore::WriteEmptyFiles(Snapshot* snap) {
  // One per table with its schema, so a table always has a file to read. Local
  // to each process (never in an object store).
  const bool shared = options_.metadata->shared();
  std::error_code ec;
  for (const auto& t : options_.tables) {
    fs::path tdir = dir_ / t.name;
    fs::create_directories(tdir, ec);
    if (ec) return Status::IOError("cannot create ", tdir.string(), ": ", ec.message());
    fs::path empty = tdir / "empty.parquet";
    bool rewrite = true;
    if (fs::exists(empty)) {
      auto existing = ReadParquet(empty);
      if (existing.ok()) {
        const bool same = (*existing)->schema()->Equals(*t.schema, /*check_metadata=*/false);
        if (!same && !shared) {
          // Stored rows cannot gain the columns of a newer version without
          // fetching their blocks again: refuse, and say how to go on.
          return Status::Invalid(
              "stored table ", options_.dataset, ".", t.name, " in ", dir_.string(),
              " was written by another version of sluice: ",
              SchemaDifference(*(*existing)->schema(), *t.schema),
              "extract into a new data_dir (or delete ", dir_.string(),
              ") to store this version's columns");
        }
        rewrite = !same;  // shared metadata checks the schemas (CheckTables)
      }
    }
    if (rewrite) {
      ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::MakeEmpty(t.schema));
      fs::path tmp = tdir / ("empty.parquet.tmp-" + std::to_string(::getpid()));
      ARROW_RETURN_NOT_OK(WriteParquet(tmp, table, options_.row_group_rows, options_.fsync));
      fs::rename(tmp, empty, ec);
      if (ec) return Status::IOError("rename ", tmp.string(), ": ", ec.message());
    }
    snap->empty_files[t.name] = empty;
  }
  return Status::OK();
}

std::shared_ptr<SegmentFile> BlockStore::MakeFile(const FileRecord& record) {
  return std::make_shared<SegmentFile>(options_.segments, record.object, record.rows, record.bytes);
}

Status BlockStore::Load() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::IOError("cannot create ", dir_.string(), ": ", ec.message());

  auto snap = std::make_shared<Snapshot>();
  snap->dataset = options_.dataset;
  snap->network = options_.network;
  snap->tables = options_.tables;
  snap->segment_store = options_.segments;
  ARROW_RETURN_NOT_OK(WriteEmptyFiles(snap.get()));
  ARROW_RETURN_NOT_OK(options_.metadata->CheckTables(options_.tables));

  ARROW_ASSIGN_OR_RAISE(auto state, options_.metadata->Load());
  identity_ = state.identity;
  snap->version = state.version;
  next_seq_ = state.next_seq;
  if (!options_.read_only && options_.metadata->shared()) {
    // A writer taking over a shared store: never reuse the seq of an object a
    // previous writer uploaded but did not publish (its commit failed or its
    // outcome is unknown). Garbage collection deletes such an object by name once
    // it is old enough; a new segment of the same name uploaded meanwhile would be
    // deleted with it, after its commit named it.
    ARROW_ASSIGN_OR_RAISE(auto objects, options_.segments->List());
    for (const auto& o : objects) {
      if (auto seq = SeqOfObject(o.object)) next_seq_ = std::max(next_seq_, *seq + 1);
    }
  }
  for (const auto& rec : state.segments) {
    Segment seg;
    seg.range = rec.range;
    seg.seq = rec.seq;
    for (const auto& [table, f] : rec.files) {
      seg.files[table] = MakeFile(f);
      if (!options_.segments->remote() && !fs::exists(seg.files[table]->path())) {
        return Status::IOError("manifest names missing file ", seg.files[table]->path().string());
      }
    }
    snap->segments.push_back(std::move(seg));
  }
  if (!options_.read_only && !options_.metadata->shared()) {
    ARROW_RETURN_NOT_OK(DeleteUnpublished(snap->segments));
  }
  if (!snap->segments.empty()) {
    snap->range = BlockRange{snap->segments.front().range.start, snap->segments.back().range.end};
  }
  if (state.headers) {
    for (const auto& h : *state.headers) snap->headers.Append(h);
    if (snap->range && (snap->headers.first() != snap->range->start ||
                        snap->headers.last() != snap->range->end)) {
      return Status::IOError(options_.metadata->Describe(), ": the headers of ", options_.dataset,
                             " do not cover its segments' blocks ", snap->range->start, "-",
                             snap->range->end);
    }
  } else {
    ARROW_RETURN_NOT_OK(LoadHeadersFromFiles(snap.get()));
  }
  RememberReplaced(state.replaced);
  replaced_seen_ = state.replaced_seen;
  current_ = std::move(snap);
  return Status::OK();
}

Status BlockStore::DeleteUnpublished(const std::vector<Segment>& segments) {
  std::set<std::string> referenced;
  for (const auto& seg : segments) {
    for (const auto& [t, f] : seg.files) referenced.insert(f->object());
  }
  ARROW_ASSIGN_OR_RAISE(auto objects, options_.segments->List());
  std::vector<std::string> unpublished;
  for (const auto& o : objects) {
    if (referenced.count(o.object)) continue;
    LOG_INFO("removing unpublished file {}", o.object);
    unpublished.push_back(o.object);
  }
  return options_.segments->Delete(unpublished);
}

Status BlockStore::LoadHeadersFromFiles(Snapshot* snap) {
  // The header index from the blocks table's hash columns (the first table holds
  // the block rows; every segment has one row per block there).
  if (snap->segments.empty()) return Status::OK();
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
    ARROW_ASSIGN_OR_RAISE(auto pin, options_.segments->Fetch({f->second->object()}));
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
  return Status::OK();
}

void BlockStore::RememberReplaced(const std::vector<BlockHeader>& headers) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& h : headers) {
    if (replaced_.emplace(std::make_pair(h.number, h.hash), h).second) {
      replaced_order_.push_back({h.number, h.hash});
    }
  }
  while (replaced_order_.size() > options_.replaced_log_blocks) {
    replaced_.erase(replaced_order_.front());
    replaced_order_.pop_front();
  }
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

Status BlockStore::CheckWritable() const {
  if (options_.read_only) {
    return Status::Invalid("store ", options_.dataset, " is read-only (a query server)");
  }
  return Status::OK();
}

Status BlockStore::SetIdentity(const ChainIdentity& identity) {
  ARROW_RETURN_NOT_OK(CheckWritable());
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
  }
  ARROW_RETURN_NOT_OK(options_.metadata->SetIdentity(identity));
  std::lock_guard<std::mutex> lock(mu_);
  identity_ = identity;
  return Status::OK();
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

Status BlockStore::Available() const {
  std::lock_guard<std::mutex> lock(mu_);
  return available_;
}

uint64_t BlockStore::NextSeq() {
  std::lock_guard<std::mutex> lock(mu_);
  return next_seq_++;
}

Result<std::shared_ptr<SegmentFile>> BlockStore::WriteFile(
    const std::string& table, const BlockRange& range, uint64_t seq,
    const std::shared_ptr<arrow::Table>& rows) {
  const std::string object = table + "/" + SegmentFileName(range, seq);
  const fs::path p = options_.segments->StagingPath(object);
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  std::vector<std::string> bloom;
  for (const auto& t : options_.tables) {
    if (t.name == table) bloom = t.bloom_filter_columns;
  }
  ARROW_RETURN_NOT_OK(WriteParquet(p, rows, options_.row_group_rows,
                                   options_.fsync && options_.segments->sync_staged(), bloom));
  const auto bytes = static_cast<int64_t>(fs::file_size(p, ec));
  return std::make_shared<SegmentFile>(options_.segments, object, rows->num_rows(), bytes);
}

Status BlockStore::PutFiles(const std::vector<const Segment*>& segments) {
  std::vector<std::string> objects;
  for (const auto* seg : segments) {
    for (const auto& [t, f] : seg->files) objects.push_back(f->object());
  }
  if (objects.empty()) return Status::OK();
  return options_.segments->Put(objects);
}

void BlockStore::Install(std::shared_ptr<const Snapshot> snap) {
  std::vector<std::function<void(const Snapshot&)>> subs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = snap;
    subs = subscribers_;
  }
  changed_.notify_all();
  for (auto& cb : subs) cb(*snap);
}

Status BlockStore::Publish(Change change) {
  // Caller holds write_mu_. New files are written and Put (durable / uploaded);
  // the metadata commit makes them the published version.
  auto old = snapshot();
  auto snap = std::make_shared<Snapshot>();
  snap->version = old->version + 1;
  snap->dataset = old->dataset;
  snap->network = old->network;
  snap->tables = old->tables;
  snap->empty_files = old->empty_files;
  snap->segment_store = old->segment_store;
  snap->segments = std::move(change.segments);
  snap->headers = std::move(change.headers);
  if (!snap->segments.empty()) {
    snap->range = BlockRange{snap->segments.front().range.start, snap->segments.back().range.end};
  }
  CommitRecord rec;
  rec.base_version = old->version;
  rec.version = snap->version;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rec.next_seq = next_seq_;
  }
  std::set<uint64_t> added(change.added.begin(), change.added.end());
  std::set<uint64_t> now;
  for (const auto& seg : snap->segments) {
    rec.segments.push_back(ToRecord(seg));
    if (added.count(seg.seq)) rec.added.push_back(rec.segments.back());
    now.insert(seg.seq);
  }
  for (const auto& seg : old->segments) {
    if (!now.count(seg.seq)) rec.removed.push_back(seg.seq);
  }
  rec.truncate_after = change.truncate_after;
  rec.appended = std::move(change.appended);
  rec.replaced = std::move(change.replaced);
  for (const auto& f : change.retired) rec.retired.push_back(f->object());
  ARROW_RETURN_NOT_OK(options_.metadata->Commit(rec));
  RememberReplaced(rec.replaced);
  for (auto& f : change.retired) f->Retire();
  Install(std::move(snap));
  return Status::OK();
}

Status BlockStore::Append(const BlockRangeData& data) {
  ARROW_RETURN_NOT_OK(CheckWritable());
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
  Segment seg;
  seg.range = range;
  seg.seq = NextSeq();
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
    ARROW_ASSIGN_OR_RAISE(files[i], WriteFile(writes[i].first->name, range, seg.seq, writes[i].second));
    return Status::OK();
  }));
  for (size_t i = 0; i < writes.size(); ++i) seg.files[writes[i].first->name] = files[i];
  ARROW_RETURN_NOT_OK(PutFiles({&seg}));
  Change change;
  change.segments = snap->segments;
  change.added.push_back(seg.seq);
  change.segments.push_back(std::move(seg));
  change.headers = snap->headers;
  for (const auto& h : data.headers) change.headers.Append(h);
  change.appended = data.headers;
  return Publish(std::move(change));
}

Status BlockStore::TruncateAfter(uint64_t number) {
  ARROW_RETURN_NOT_OK(CheckWritable());
  std::lock_guard<std::mutex> wlock(write_mu_);
  auto snap = snapshot();
  if (!snap->range || snap->range->end <= number) return Status::OK();
  Change change;
  for (const auto& seg : snap->segments) {
    if (seg.range.end <= number) {
      change.segments.push_back(seg);
      continue;
    }
    for (const auto& [t, f] : seg.files) change.retired.push_back(f);
    if (seg.range.start > number) continue;
    // The segment straddles the cut: rewrite its rows at or below `number`.
    Segment cut;
    cut.range = {seg.range.start, number};
    cut.seq = NextSeq();
    for (const auto& [t, f] : seg.files) {
      ARROW_ASSIGN_OR_RAISE(auto pin, options_.segments->Fetch({f->object()}));
      ARROW_ASSIGN_OR_RAISE(auto rows, ReadParquet(f->path()));
      ARROW_ASSIGN_OR_RAISE(auto combined, rows->CombineChunks());
      auto nums = std::static_pointer_cast<arrow::UInt64Array>(
          combined->GetColumnByName("block_num")->chunk(0));
      int64_t keep = 0;
      while (keep < nums->length() && nums->Value(keep) <= number) ++keep;
      if (keep == 0) continue;
      ARROW_ASSIGN_OR_RAISE(cut.files[t], WriteFile(t, cut.range, cut.seq, combined->Slice(0, keep)));
    }
    ARROW_RETURN_NOT_OK(PutFiles({&cut}));
    change.added.push_back(cut.seq);
    change.segments.push_back(std::move(cut));
  }
  for (uint64_t n = number + 1; n <= snap->range->end; ++n) {
    change.replaced.push_back(*snap->Header(n));
  }
  change.headers = snap->headers;
  change.headers.TruncateAfter(number);
  change.truncate_after = number;
  LOG_INFO("{}: removed blocks above {} (was head {})", options_.dataset, number,
           snap->range->end);
  return Publish(std::move(change));
}

}  // namespace sluice::storage
