// The single process's metadata (storage/metadata.h): `manifest.json` (segments,
// chain identity, version) and `replaced.json` (the log of replaced blocks) in the
// dataset's directory, each replaced atomically (write temporary, fsync, rename,
// fsync the directory).
#include <deque>
#include <fstream>
#include <mutex>
#include <set>

#include "common/log.h"
#include "nlohmann/json.hpp"
#include "storage/io_util.h"
#include "storage/metadata.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

constexpr int kManifestFormat = 1;

class ManifestMetadata : public MetadataStore {
 public:
  explicit ManifestMetadata(ManifestOptions options) : options_(std::move(options)) {}

  Result<MetadataState> Load() override;
  Status Commit(const CommitRecord& commit) override;
  Status SetIdentity(const ChainIdentity& identity) override;
  bool shared() const override { return false; }
  Status CheckTables(const std::vector<TableDef>&) override { return Status::OK(); }
  std::string Describe() const override { return (options_.dir / "manifest.json").string(); }

 private:
  // `sync_dirs`: also make the table directories' entries durable before the swap.
  Status WriteManifest(bool sync_dirs);
  Status WriteReplaced();

  ManifestOptions options_;
  std::mutex mu_;
  // The last published state.
  uint64_t version_ = 0;
  uint64_t next_seq_ = 1;
  std::optional<ChainIdentity> identity_;
  std::vector<SegmentRecord> segments_;
  std::deque<BlockHeader> replaced_;  // oldest first
};

Result<MetadataState> ManifestMetadata::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  MetadataState state;
  fs::path manifest = options_.dir / "manifest.json";
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
    // A field missing or of another type is a corrupt manifest, not a crash.
    try {
      if (j.contains("identity") && !j["identity"].is_null()) {
        ChainIdentity id;
        id.chain_id = j["identity"]["chain_id"].get<uint64_t>();
        ARROW_ASSIGN_OR_RAISE(id.genesis_hash,
                              HashFromHex(j["identity"]["genesis_hash"].get<std::string>()));
        state.identity = id;
      }
      state.version = j.value("version", uint64_t{0});
      state.next_seq = j.value("next_seq", uint64_t{1});
      for (const auto& js : j.at("segments")) {
        SegmentRecord seg;
        seg.range = {js.at("start").get<uint64_t>(), js.at("end").get<uint64_t>()};
        seg.seq = js.at("seq").get<uint64_t>();
        for (const auto& [table, jf] : js.at("files").items()) {
          FileRecord f;
          f.object = table + "/" + jf.at("file").get<std::string>();
          f.rows = jf.at("rows").get<int64_t>();
          f.bytes = jf.value("bytes", int64_t{0});
          seg.files[table] = std::move(f);
        }
        state.segments.push_back(std::move(seg));
      }
    } catch (const std::exception& e) {
      return Status::IOError("corrupt manifest ", manifest.string(), ": ", e.what());
    }
  }
  // Blocks removed by earlier reorgs.
  fs::path replaced = options_.dir / "replaced.json";
  if (fs::exists(replaced)) {
    std::ifstream in(replaced);
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_array()) {
      for (const auto& e : j) {
        auto hash = HashFromHex(e.value("hash", ""));
        auto parent = HashFromHex(e.value("parent_hash", ""));
        if (!hash.ok() || !parent.ok()) continue;
        state.replaced.push_back(BlockHeader{e.value("number", uint64_t{0}), *hash, *parent,
                                             e.value("timestamp", int64_t{0})});
      }
    } else {
      LOG_WARN("ignoring unreadable {}", replaced.string());
    }
  }
  version_ = state.version;
  next_seq_ = state.next_seq;
  identity_ = state.identity;
  segments_ = state.segments;
  replaced_.assign(state.replaced.begin(), state.replaced.end());
  return state;
}

Status ManifestMetadata::Commit(const CommitRecord& commit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!commit.replaced.empty()) {
    // The removed blocks are logged first: a crash after this leaves them both
    // canonical and logged, which is harmless.
    std::set<std::pair<uint64_t, Hash32>> known;
    for (const auto& h : replaced_) known.insert({h.number, h.hash});
    for (const auto& h : commit.replaced) {
      if (known.insert({h.number, h.hash}).second) replaced_.push_back(h);
    }
    while (replaced_.size() > options_.replaced_log_blocks) replaced_.pop_front();
    ARROW_RETURN_NOT_OK(WriteReplaced());
  }
  version_ = commit.version;
  next_seq_ = commit.next_seq;
  segments_ = commit.segments;
  return WriteManifest(/*sync_dirs=*/true);
}

Status ManifestMetadata::SetIdentity(const ChainIdentity& identity) {
  std::lock_guard<std::mutex> lock(mu_);
  identity_ = identity;
  return WriteManifest(/*sync_dirs=*/false);
}

Status ManifestMetadata::WriteManifest(bool sync_dirs) {
  nlohmann::json j;
  j["format"] = kManifestFormat;
  j["dataset"] = options_.dataset;
  j["network"] = options_.network;
  j["version"] = version_;
  j["next_seq"] = next_seq_;
  if (identity_) {
    j["identity"] = {{"chain_id", identity_->chain_id},
                     {"genesis_hash", HashToHex(identity_->genesis_hash)}};
  } else {
    j["identity"] = nullptr;
  }
  auto& jsegs = j["segments"] = nlohmann::json::array();
  for (const auto& seg : segments_) {
    nlohmann::json js;
    js["start"] = seg.range.start;
    js["end"] = seg.range.end;
    js["seq"] = seg.seq;
    js["files"] = nlohmann::json::object();
    for (const auto& [table, f] : seg.files) {
      js["files"][table] = {{"file", fs::path(f.object).filename().string()},
                            {"rows", f.rows},
                            {"bytes", f.bytes}};
    }
    jsegs.push_back(std::move(js));
  }
  fs::path tmp = options_.dir / "manifest.json.tmp";
  fs::path dst = options_.dir / "manifest.json";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump();
    out.flush();
    if (!out) return Status::IOError("cannot write ", tmp.string());
  }
  // The new files' directory entries are made durable beside the temporary
  // manifest (nothing names it before the rename below), the rename only after both.
  if (options_.fsync) {
    const size_t dirs = sync_dirs ? options_.table_dirs.size() : 0;
    ARROW_RETURN_NOT_OK(ParallelFor(1 + dirs, [&](size_t i) {
      return FsyncPath(i == 0 ? tmp : options_.dir / options_.table_dirs[i - 1]);
    }));
  }
  std::error_code ec;
  fs::rename(tmp, dst, ec);
  if (ec) return Status::IOError("rename ", tmp.string(), ": ", ec.message());
  if (options_.fsync) ARROW_RETURN_NOT_OK(FsyncPath(options_.dir));
  return Status::OK();
}

Status ManifestMetadata::WriteReplaced() {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& h : replaced_) {
    j.push_back({{"number", h.number},
                 {"hash", HashToHex(h.hash)},
                 {"parent_hash", HashToHex(h.parent_hash)},
                 {"timestamp", h.timestamp}});
  }
  fs::path tmp = options_.dir / "replaced.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump();
    if (!out) return Status::IOError("cannot write ", tmp.string());
  }
  if (options_.fsync) ARROW_RETURN_NOT_OK(FsyncPath(tmp));
  std::error_code ec;
  fs::rename(tmp, options_.dir / "replaced.json", ec);
  if (ec) return Status::IOError("rename ", tmp.string(), ": ", ec.message());
  return Status::OK();
}

}  // namespace

Result<std::shared_ptr<MetadataStore>> MakeManifestMetadata(ManifestOptions options) {
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Status::IOError("cannot create ", options.dir.string(), ": ", ec.message());
  return std::make_shared<ManifestMetadata>(std::move(options));
}

}  // namespace sluice::storage
