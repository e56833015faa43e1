// Where a stream keeps its resume cursor between runs (docs/cpp-client.md).
#pragma once

#include <optional>
#include <string>

#include "arrow/result.h"
#include "arrow/status.h"

namespace sluice::client {

/// \brief Keeps the cursor of the last microbatch the consumer handled, so a
/// stream restarted after a crash resumes right after it. A cursor is the JSON
/// text of a MicrobatchEnd's `cursor` (docs/protocol.md "Resuming").
///
/// Implement it to keep the cursor with your own data (e.g. in the same
/// database transaction as the rows): that makes a microbatch's effects and its
/// cursor commit together.
class CursorStore {
 public:
  virtual ~CursorStore() = default;
  /// \brief The saved cursor, or nullopt when none was saved yet.
  virtual arrow::Result<std::optional<std::string>> Load() = 0;
  /// \brief Replace the saved cursor. After it returns, a crash must not lose it.
  virtual arrow::Status Save(const std::string& cursor) = 0;
};

/// \brief A cursor in a file, replaced atomically and durably: written to a
/// temporary file beside it, fsynced, renamed over it, then the directory
/// fsynced. A crash at any point leaves the old or the new cursor. The file
/// holds the cursor JSON (the format of `sluice query --cursor-file` and of the
/// Python package's cursor files).
class FileCursorStore : public CursorStore {
 public:
  explicit FileCursorStore(std::string path) : path_(std::move(path)) {}

  /// \brief nullopt when the file does not exist or holds only whitespace.
  /// Invalid when it does not hold a JSON object; IOError when unreadable.
  arrow::Result<std::optional<std::string>> Load() override;
  /// \brief IOError when the file or its directory cannot be written; Invalid
  /// when `cursor` is not a JSON object.
  arrow::Status Save(const std::string& cursor) override;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sluice::client
