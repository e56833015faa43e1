#include "sluice/client/cursor_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"

namespace sluice::client {

namespace {

arrow::Status Errno(const std::string& what, const std::string& path) {
  return arrow::Status::IOError(what, " ", path, ": ", std::strerror(errno));
}

arrow::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<std::optional<std::string>> FileCursorStore::Load() {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec) && !ec) return std::nullopt;  // no cursor yet
  std::ifstream f(path_, std::ios::binary);
  if (!f) return Errno("cannot read cursor file", path_);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
  auto cursor = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (cursor.is_discarded() || !cursor.is_object()) {
    return arrow::Status::Invalid("cursor file ", path_, " does not hold a JSON object");
  }
  return cursor.dump();
}

arrow::Status FileCursorStore::Save(const std::string& cursor) {
  auto parsed = nlohmann::json::parse(cursor, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return arrow::Status::Invalid("a cursor is a JSON object, not '", cursor.substr(0, 200), "'");
  }
  const std::filesystem::path target(path_);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const std::string tmp =
      (dir / ("." + target.filename().string() + "." + std::to_string(::getpid()) + ".tmp"))
          .string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  auto st = WriteAll(fd, parsed.dump() + "\n", tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Errno("cannot fsync", tmp);
  if (::close(fd) != 0 && st.ok()) st = Errno("cannot close", tmp);
  if (st.ok() && ::rename(tmp.c_str(), path_.c_str()) != 0) st = Errno("cannot rename to", path_);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("cannot open directory", dir.string());
  if (::fsync(dfd) != 0) st = Errno("cannot fsync directory", dir.string());
  ::close(dfd);
  return st;
}

}  // namespace sluice::client
