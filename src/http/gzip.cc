#include "http/gzip.h"

#include <zlib.h>

namespace sluice::http {

struct GzipStream::State {
  z_stream z{};
  bool initialized = false;
  bool finished = false;
};

GzipStream::GzipStream() : state_(std::make_unique<State>()) {}

GzipStream::~GzipStream() {
  if (state_->initialized) deflateEnd(&state_->z);
}

arrow::Result<std::unique_ptr<GzipStream>> GzipStream::Make(int level) {
  std::unique_ptr<GzipStream> g(new GzipStream());
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&g->state_->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return arrow::Status::IOError("gzip: cannot initialize zlib");
  }
  g->state_->initialized = true;
  return g;
}

arrow::Status GzipStream::Deflate(std::string_view data, int flush, std::string* out) {
  auto& z = state_->z;
  if (state_->finished) return arrow::Status::Invalid("gzip: stream already finished");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  char buf[64 * 1024];
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    int rc = deflate(&z, flush);
    if (rc == Z_STREAM_ERROR) return arrow::Status::IOError("gzip: deflate failed");
    out->append(buf, sizeof(buf) - z.avail_out);
    if (rc == Z_STREAM_END) break;
  } while (z.avail_out == 0 || z.avail_in > 0);
  if (flush == Z_FINISH) state_->finished = true;
  return arrow::Status::OK();
}

arrow::Status GzipStream::Write(std::string_view data, std::string* out) {
  // Large pieces in slices zlib's uInt counts can hold.
  constexpr size_t kSlice = 1 << 30;
  while (data.size() > kSlice) {
    ARROW_RETURN_NOT_OK(Deflate(data.substr(0, kSlice), Z_NO_FLUSH, out));
    data.remove_prefix(kSlice);
  }
  return Deflate(data, Z_SYNC_FLUSH, out);
}

arrow::Status GzipStream::Finish(std::string* out) { return Deflate({}, Z_FINISH, out); }

}  // namespace sluice::http
