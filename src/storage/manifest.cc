#include "storage/manifest.h"

#include <fstream>

#include "arrow/io/file.h"
#include "nlohmann/json.hpp"
#include "parquet/arrow/reader.h"

namespace fs = std::filesystem;
using arrow::Result;
using arrow::Status;

namespace sluice::storage {

std::optional<BlockRange> Manifest::range() const {
  if (segments.empty()) return std::nullopt;
  return BlockRange{segments.front().range.start, segments.back().range.end};
}

Result<std::optional<Manifest>> ReadManifest(const fs::path& dataset_dir) {
  const fs::path path = dataset_dir / "manifest.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return Status::IOError("corrupt manifest ", path.string(), ": ", e.what());
  }
  if (j.value("format", 0) != kManifestFormat) {
    return Status::Invalid("manifest ", path.string(), " has unknown format ",
                           j.value("format", 0));
  }
  Manifest m;
  try {
    if (j.contains("identity") && !j["identity"].is_null()) {
      ChainIdentity id;
      id.chain_id = j["identity"]["chain_id"].get<uint64_t>();
      ARROW_ASSIGN_OR_RAISE(id.genesis_hash,
                            HashFromHex(j["identity"]["genesis_hash"].get<std::string>()));
      m.identity = id;
    }
    m.version = j.value("version", uint64_t{0});
    m.next_seq = j.value("next_seq", uint64_t{1});
    for (const auto& js : j["segments"]) {
      Segment seg;
      seg.range = {js["start"].get<uint64_t>(), js["end"].get<uint64_t>()};
      seg.seq = js["seq"].get<uint64_t>();
      for (const auto& [table, jf] : js["files"].items()) {
        fs::path p = dataset_dir / table / jf["file"].get<std::string>();
        if (!fs::exists(p, ec)) return Status::IOError("manifest names missing file ", p.string());
        seg.files[table] = std::make_shared<SegmentFile>(p, jf["rows"].get<int64_t>());
      }
      m.segments.push_back(std::move(seg));
    }
  } catch (const std::exception& e) {
    return Status::IOError("corrupt manifest ", path.string(), ": ", e.what());
  }
  return m;
}

Result<std::shared_ptr<arrow::Table>> ReadParquetFile(const fs::path& path,
                                                      std::vector<int> columns) {
  ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(path.string()));
  ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(in, arrow::default_memory_pool()));
  if (columns.empty()) return reader->ReadTable();
  return reader->ReadTable(columns);
}

}  // namespace sluice::storage
