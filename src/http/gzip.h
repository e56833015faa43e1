// A gzip stream (RFC 1952, zlib) compressed piece by piece, for
// `Content-Encoding: gzip` answers that are written as they are produced.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "arrow/result.h"

namespace sluice::http {

/// \brief Compresses one gzip stream incrementally. Not thread-safe.
class GzipStream {
 public:
  /// \brief IOError when zlib cannot start (out of memory).
  static arrow::Result<std::unique_ptr<GzipStream>> Make(int level = 6);
  ~GzipStream();

  /// \brief Compress `data` and flush (Z_SYNC_FLUSH): `out` then holds
  /// everything needed to decompress the input so far, so the client can read
  /// each piece as it arrives.
  arrow::Status Write(std::string_view data, std::string* out);
  /// \brief End the stream (gzip trailer) into `out`.
  arrow::Status Finish(std::string* out);

 private:
  GzipStream();
  arrow::Status Deflate(std::string_view data, int flush, std::string* out);
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sluice::http
