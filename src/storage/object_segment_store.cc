// Segment files in an S3-compatible object store through Arrow's S3FileSystem
// (storage/segment_store.h), read through the local segment cache.
#include <mutex>

#include "arrow/buffer.h"
#include "arrow/filesystem/s3fs.h"
#include "arrow/io/file.h"
#include "arrow/io/interfaces.h"
#include "common/log.h"
#include "storage/io_util.h"
#include "storage/segment_cache.h"
#include "storage/segment_store.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

constexpr int64_t kCopyChunk = int64_t{8} << 20;

Status Annotate(const Status& st, const std::string& what) {
  if (st.ok()) return st;
  return Status::IOError("object store: ", what, ": ", st.message());
}

class ObjectSegmentStore : public SegmentStore {
 public:
  ObjectSegmentStore(ObjectStoreOptions options, std::shared_ptr<arrow::fs::FileSystem> fs,
                     std::string root, std::string bucket)
      : options_(std::move(options)), fs_(std::move(fs)), root_(std::move(root)),
        bucket_(std::move(bucket)) {}

  // The cache key of an object: `<dataset>/<table>/<file>`.
  std::string Key(const std::string& object) const { return options_.dataset + "/" + object; }
  std::string Remote(const std::string& object) const { return root_ + "/" + object; }

  fs::path StagingPath(const std::string& object) const override {
    return options_.cache->PathOf(Key(object));
  }
  bool sync_staged() const override { return false; }

  Status Put(const std::vector<std::string>& objects) override {
    ARROW_RETURN_NOT_OK(ParallelForLimited(objects.size(), 8, [&](size_t i) -> Status {
      const auto& object = objects[i];
      const fs::path local = StagingPath(object);
      ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(local.string()));
      auto out = fs_->OpenOutputStream(Remote(object));
      if (!out.ok()) return Annotate(out.status(), "cannot write " + Remote(object));
      while (true) {
        ARROW_ASSIGN_OR_RAISE(auto chunk, in->Read(kCopyChunk));
        if (chunk->size() == 0) break;
        ARROW_RETURN_NOT_OK(Annotate((*out)->Write(chunk), "writing " + Remote(object)));
      }
      // Close completes the upload: the object exists whole, or not at all.
      return Annotate((*out)->Close(), "writing " + Remote(object));
    }));
    for (const auto& object : objects) options_.cache->Admit(Key(object));
    return Status::OK();
  }

  fs::path LocalPath(const std::string& object) const override {
    return options_.cache->PathOf(Key(object));
  }

  Result<std::shared_ptr<void>> Fetch(const std::vector<std::string>& objects) override {
    std::vector<std::string> keys;
    keys.reserve(objects.size());
    for (const auto& o : objects) keys.push_back(Key(o));
    const size_t prefix = options_.dataset.size() + 1;
    return options_.cache->Pin(keys, [this, prefix](const std::string& key,
                                                    const fs::path& tmp) -> Status {
      const std::string remote = Remote(key.substr(prefix));
      auto in = fs_->OpenInputStream(remote);
      if (!in.ok()) return Annotate(in.status(), "cannot read " + remote);
      ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(tmp.string()));
      while (true) {
        auto chunk = (*in)->Read(kCopyChunk);
        if (!chunk.ok()) return Annotate(chunk.status(), "reading " + remote);
        if ((*chunk)->size() == 0) break;
        ARROW_RETURN_NOT_OK(out->Write(*chunk));
      }
      return out->Close();
    });
  }

  void Released(const std::string& object) override { options_.cache->Remove(Key(object)); }

  Status Delete(const std::vector<std::string>& objects) override {
    for (const auto& o : objects) {
      options_.cache->Remove(Key(o));
      auto st = fs_->DeleteFile(Remote(o));
      if (!st.ok() && !st.IsIOError()) return Annotate(st, "cannot delete " + Remote(o));
      if (!st.ok()) {
        // A missing object is not an error; any other failure is.
        auto info = fs_->GetFileInfo(Remote(o));
        if (!info.ok() || info->type() != arrow::fs::FileType::NotFound) {
          return Annotate(st, "cannot delete " + Remote(o));
        }
      }
    }
    return Status::OK();
  }

  Result<std::vector<ObjectInfo>> List() override {
    arrow::fs::FileSelector selector;
    selector.base_dir = root_;
    selector.recursive = true;
    selector.allow_not_found = true;
    auto infos = fs_->GetFileInfo(selector);
    if (!infos.ok()) return Annotate(infos.status(), "cannot list " + root_);
    std::vector<ObjectInfo> out;
    for (const auto& info : *infos) {
      if (info.type() != arrow::fs::FileType::File) continue;
      if (info.path().size() <= root_.size() + 1) continue;
      ObjectInfo o;
      o.object = info.path().substr(root_.size() + 1);
      o.bytes = info.size();
      o.written = std::chrono::time_point_cast<std::chrono::system_clock::duration>(info.mtime());
      out.push_back(std::move(o));
    }
    return out;
  }

  bool remote() const override { return true; }
  std::string Describe() const override { return "s3://" + root_; }

 private:
  ObjectStoreOptions options_;
  std::shared_ptr<arrow::fs::FileSystem> fs_;
  std::string root_;    // bucket/prefix/dataset
  std::string bucket_;
};

}  // namespace

Status EnsureS3Initialized() {
  static std::mutex mu;
  static bool done = false;
  std::lock_guard<std::mutex> lock(mu);
  if (done) return Status::OK();
  arrow::fs::S3GlobalOptions global;
  global.log_level = arrow::fs::S3LogLevel::Fatal;
  ARROW_RETURN_NOT_OK(arrow::fs::InitializeS3(global));
  done = true;
  return Status::OK();
}

void ShutdownS3() {
  // Not from atexit: that runs after Arrow's own statics are destroyed.
  if (arrow::fs::IsS3Initialized() && !arrow::fs::IsS3Finalized()) {
    ARROW_UNUSED(arrow::fs::FinalizeS3());
  }
}

Result<std::shared_ptr<SegmentStore>> MakeObjectSegmentStore(ObjectStoreOptions options) {
  if (!options.cache) return Status::Invalid("object store: no segment cache");
  if (options.url.rfind("s3://", 0) != 0) {
    return Status::Invalid("object_store_url must start with s3:// (got '", options.url, "')");
  }
  ARROW_RETURN_NOT_OK(EnsureS3Initialized());
  std::string path;
  auto parsed = arrow::fs::S3Options::FromUri(options.url, &path);
  if (!parsed.ok()) {
    return Status::Invalid("object_store_url: ", parsed.status().message());
  }
  arrow::fs::S3Options s3 = *parsed;
  if (!options.access_key.empty()) s3.ConfigureAccessKey(options.access_key, options.secret_key);
  s3.connect_timeout = options.connect_timeout_secs;
  s3.request_timeout = options.request_timeout_secs;
  s3.retry_strategy =
      arrow::fs::S3RetryStrategy::GetAwsStandardRetryStrategy(std::max(1, options.max_attempts));
  s3.background_writes = false;
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty()) return Status::Invalid("object_store_url names no bucket: ", options.url);
  const std::string bucket = path.substr(0, path.find('/'));
  auto made = arrow::fs::S3FileSystem::Make(s3);
  if (!made.ok()) return Annotate(made.status(), "cannot connect to " + options.url);
  std::shared_ptr<arrow::fs::FileSystem> fs = *made;
  // The bucket must exist (created by whoever deploys the store).
  auto info = fs->GetFileInfo(bucket);
  if (!info.ok()) return Annotate(info.status(), "cannot reach bucket " + bucket);
  if (info->type() != arrow::fs::FileType::Directory) {
    return Status::IOError("object store: bucket ", bucket, " does not exist (", options.url, ")");
  }
  std::string root = path + "/" + options.dataset;
  return std::make_shared<ObjectSegmentStore>(std::move(options), std::move(fs), std::move(root),
                                              bucket);
}

}  // namespace sluice::storage
