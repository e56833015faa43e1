// sluice_client_stream_to_file: keep the rows of a streaming query in a text file,
// exactly once across crashes and reorgs, with the client library's cursor store.
//
//   sluice_client_stream_to_file --flight-url grpc://localhost:1602 ...
//       --sql "SELECT block_num, tx_index, tx_hash FROM eth_rpc.transactions"
//       --out rows.txt --cursor-file rows.cursor [--fetch-size N] [--until-block N]
//
// The query's first column must be the block number. The file holds one line per
// row, its values comma-separated (binary as 0x hex). A microbatch's rows are
// appended and fsynced at its MicrobatchEnd; its cursor is saved (atomically, in
// --cursor-file) when the next event is asked for. A crash in between leaves rows
// past the saved cursor: at start, the file is cut back to the rows of blocks up
// to the cursor, and the stream resumes after it — so every row is in the file
// exactly once. A reorg drops the rows of the replaced blocks.
// --until-block: stop after the microbatch reaching that block (default: never).
// --crash-after N (for tests): kill -9 itself right after applying the N-th
// microbatch, before its cursor is saved.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "arrow/array.h"
#include "arrow/scalar.h"
#include "nlohmann/json.hpp"
#include "sluice/client/api.h"

namespace {

// One row as a line: values comma-separated, binary as 0x hex, NULL empty.
std::string FormatRow(const arrow::RecordBatch& batch, int64_t row) {
  std::string line;
  for (int c = 0; c < batch.num_columns(); ++c) {
    if (c) line += ',';
    auto scalar = batch.column(c)->GetScalar(row).ValueOrDie();
    if (!scalar->is_valid) continue;
    auto type = scalar->type->id();
    if (type == arrow::Type::BINARY || type == arrow::Type::LARGE_BINARY ||
        type == arrow::Type::FIXED_SIZE_BINARY || type == arrow::Type::BINARY_VIEW) {
      const auto& bytes = *static_cast<const arrow::BaseBinaryScalar&>(*scalar).value;
      static const char* digits = "0123456789abcdef";
      line += "0x";
      for (int64_t i = 0; i < bytes.size(); ++i) {
        line += digits[bytes.data()[i] >> 4];
        line += digits[bytes.data()[i] & 15];
      }
    } else {
      line += scalar->ToString();
    }
  }
  return line;
}

uint64_t BlockOf(const std::string& line) { return std::strtoull(line.c_str(), nullptr, 10); }

// Rewrite `path` keeping the complete lines (a crash may cut the last one) whose
// block is below `limit`: temporary file, fsync, rename.
arrow::Status KeepBlocksBelow(const std::string& path, uint64_t limit) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string kept;
  size_t pos = 0;
  for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    std::string line = text.substr(pos, nl - pos);
    if (BlockOf(line) < limit) kept += line + "\n";
  }
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::write(fd, kept.data(), kept.size()) != static_cast<ssize_t>(kept.size()) ||
      ::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return arrow::Status::IOError("cannot rewrite ", path);
  }
  return arrow::Status::OK();
}

arrow::Status Append(const std::string& path, const std::string& lines) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0 || ::write(fd, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size()) ||
      ::fsync(fd) != 0 || ::close(fd) != 0) {
    return arrow::Status::IOError("cannot append to ", path);
  }
  return arrow::Status::OK();
}

// Test hook (--crash-after N): kill -9 this process right after applying the
// N-th microbatch, before its cursor is saved — the worst moment for a crash.
int64_t g_crash_after = 0;
int64_t g_applied = 0;

// Apply a microbatch to the file: after a reorg first drop the rows of blocks
// >= invalidate, then append the rows and fsync.
arrow::Status Apply(const std::string& out, const std::string& rows, uint64_t invalidate) {
  if (invalidate != UINT64_MAX) ARROW_RETURN_NOT_OK(KeepBlocksBelow(out, invalidate));
  ARROW_RETURN_NOT_OK(Append(out, rows));
  if (g_crash_after > 0 && ++g_applied == g_crash_after) ::raise(SIGKILL);
  return arrow::Status::OK();
}

// The block of a cursor: {"<network>": {"block_number": N, ...}}.
uint64_t CursorBlock(const std::string& cursor) {
  auto j = nlohmann::json::parse(cursor);
  return j.begin().value().at("block_number").get<uint64_t>();
}

arrow::Status Run(const std::string& url, const std::string& sql, const std::string& out,
                  const std::string& cursor_file, int64_t fetch_size,
                  std::optional<uint64_t> until_block) {
  sluice::client::ClientOptions client_options;
  client_options.flight_url = url;
  ARROW_ASSIGN_OR_RAISE(auto client, sluice::client::Client::Connect(client_options));

  // [doc:stream]
  auto store = std::make_shared<sluice::client::FileCursorStore>(cursor_file);
  // Drop what a crash left past the saved cursor: it will be sent again.
  ARROW_ASSIGN_OR_RAISE(auto saved, store->Load());
  ARROW_RETURN_NOT_OK(KeepBlocksBelow(out, saved ? CursorBlock(*saved) + 1 : 0));

  sluice::client::StreamOptions options;
  options.cursor_store = store;  // resume from it, save to it
  options.fetch_size = fetch_size;
  ARROW_ASSIGN_OR_RAISE(auto stream, client->Stream(sql, options));

  std::string rows;                      // the current microbatch's rows
  uint64_t invalidate = UINT64_MAX;     // after a Reorg: drop blocks >= this at the end
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto event, stream->Next());  // saves the last cursor first
    if (!event) break;                                  // the server ended the stream
    if (auto* reorg = std::get_if<sluice::client::Reorg>(&*event)) {
      invalidate = reorg->invalidate_from;
    } else if (std::holds_alternative<sluice::client::MicrobatchStart>(*event)) {
      rows.clear();
    } else if (auto* data = std::get_if<sluice::client::Data>(&*event)) {
      for (int64_t r = 0; r < data->batch->num_rows(); ++r) {
        rows += FormatRow(*data->batch, r) + "\n";
      }
    } else if (auto* end = std::get_if<sluice::client::MicrobatchEnd>(&*event)) {
      // Apply the microbatch; its cursor is saved at the next Next().
      ARROW_RETURN_NOT_OK(Apply(out, rows, invalidate));
      invalidate = UINT64_MAX;
      std::cout << "microbatch " << end->range.ToString() << std::endl;
      if (until_block && end->range.end >= *until_block) break;
    }
  }
  return stream->Close();  // saves the cursor of the last microbatch
  // [end:stream]
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, sql, out, cursor_file;
  int64_t fetch_size = 0;
  std::optional<uint64_t> until_block;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string opt = argv[i], value = argv[i + 1];
    if (opt == "--flight-url") {
      url = value;
    } else if (opt == "--sql") {
      sql = value;
    } else if (opt == "--out") {
      out = value;
    } else if (opt == "--cursor-file") {
      cursor_file = value;
    } else if (opt == "--fetch-size") {
      fetch_size = std::atoll(value.c_str());
    } else if (opt == "--crash-after") {
      g_crash_after = std::atoll(value.c_str());
    } else if (opt == "--until-block") {
      until_block = std::strtoull(value.c_str(), nullptr, 10);
    } else {
      std::cerr << "error: unknown option " << opt << "\n";
      return 2;
    }
  }
  if (sql.empty() || out.empty() || cursor_file.empty() || argc % 2 == 0) {
    std::cerr << "usage: sluice_client_stream_to_file --flight-url URL --sql SQL --out FILE "
                 "--cursor-file FILE [--fetch-size N] [--until-block N]\n";
    return 2;
  }
  auto st = Run(url, sql, out, cursor_file, fetch_size, until_block);
  if (!st.ok()) {
    std::cerr << "error: " << st.ToString() << "\n";
    return 1;
  }
  return 0;
}
