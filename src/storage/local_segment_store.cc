// Segment files in a local directory (storage/segment_store.h).
#include <set>

#include "common/log.h"
#include "storage/io_util.h"
#include "storage/segment_store.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

bool IsSegmentFileName(const std::string& name) {
  return name != "empty.parquet" && name.size() > 8 &&
         name.compare(name.size() - 8, 8, ".parquet") == 0;
}

class LocalSegmentStore : public SegmentStore {
 public:
  explicit LocalSegmentStore(LocalSegmentStoreOptions options) : options_(std::move(options)) {}

  fs::path StagingPath(const std::string& object) const override { return options_.root / object; }
  bool sync_staged() const override { return options_.fsync; }

  Status Put(const std::vector<std::string>& objects) override {
    if (!options_.fsync || !options_.sync_dirs_on_put) return Status::OK();
    std::set<fs::path> dirs;
    for (const auto& o : objects) dirs.insert((options_.root / o).parent_path());
    std::vector<fs::path> list(dirs.begin(), dirs.end());
    return ParallelFor(list.size(), [&](size_t i) { return FsyncPath(list[i]); });
  }

  fs::path LocalPath(const std::string& object) const override { return options_.root / object; }

  Result<std::shared_ptr<void>> Fetch(const std::vector<std::string>& objects) override {
    return std::shared_ptr<void>();
  }

  void Released(const std::string& object) override {
    if (!options_.delete_on_release) return;
    std::error_code ec;
    fs::remove(options_.root / object, ec);
  }

  Status Delete(const std::vector<std::string>& objects) override {
    for (const auto& o : objects) {
      std::error_code ec;
      fs::remove(options_.root / o, ec);
      if (ec) return Status::IOError("cannot delete ", (options_.root / o).string(), ": ", ec.message());
    }
    return Status::OK();
  }

  Result<std::vector<ObjectInfo>> List() override {
    std::vector<ObjectInfo> out;
    std::error_code ec;
    for (const auto& table_dir : fs::directory_iterator(options_.root, ec)) {
      if (!table_dir.is_directory()) continue;
      for (const auto& entry : fs::directory_iterator(table_dir.path(), ec)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_regular_file() || !IsSegmentFileName(name)) continue;
        ObjectInfo info;
        info.object = table_dir.path().filename().string() + "/" + name;
        std::error_code e2;
        info.bytes = static_cast<int64_t>(entry.file_size(e2));
        auto t = entry.last_write_time(e2);
        info.written = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
            t - fs::file_time_type::clock::now() + std::chrono::system_clock::now());
        out.push_back(std::move(info));
      }
    }
    if (ec) return Status::IOError("cannot list ", options_.root.string(), ": ", ec.message());
    return out;
  }

  bool remote() const override { return false; }
  std::string Describe() const override { return options_.root.string(); }

 private:
  LocalSegmentStoreOptions options_;
};

}  // namespace

Result<std::shared_ptr<SegmentStore>> MakeLocalSegmentStore(LocalSegmentStoreOptions options) {
  std::error_code ec;
  fs::create_directories(options.root, ec);
  if (ec) return Status::IOError("cannot create ", options.root.string(), ": ", ec.message());
  return std::make_shared<LocalSegmentStore>(std::move(options));
}

}  // namespace sluice::storage
