// `sluice query`: one SQL query against a running server, its result written in
// one of several formats (output_formats.h), batch by batch; or, with --stream, a
// streaming query printed microbatch by microbatch until Ctrl-C, resumable from a
// cursor file (docs/protocol.md "Streaming queries").
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "arrow/flight/client.h"
#include "arrow/io/file.h"
#include "arrow/ipc/dictionary.h"
#include "cli/commands.h"
#include "cli/output_formats.h"
#include "nlohmann/json.hpp"

namespace fl = arrow::flight;

namespace sluice::cli {

namespace {

struct QueryOptions {
  std::string server = "grpc://localhost:1602";
  std::string sql;
  std::string format;  // empty: table on a terminal, else from -o's extension, else csv
  std::string output;  // empty: stdout
  bool stream = false;
  std::string cursor_file;
  std::string api_key;         // empty: SLUICE_API_KEY, else none
  std::string tls_root_certs;  // PEM file of the CAs to trust for grpc+tls://
};

std::atomic<bool> g_interrupted{false};

extern "C" void OnSigint(int) { g_interrupted.store(true); }

// Ctrl-C cancels the running DoGet (the read loop then ends cleanly); before a
// DoGet runs, it ends the process.
class InterruptWatcher {
 public:
  InterruptWatcher() {
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    thread_ = std::thread([this] {
      while (!done_.load()) {
        if (g_interrupted.load()) {
          std::lock_guard<std::mutex> lock(mu_);
          if (reader_ == nullptr) std::_Exit(130);
          if (!cancelled_) reader_->Cancel();
          cancelled_ = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~InterruptWatcher() {
    done_.store(true);
    thread_.join();
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  void SetReader(fl::FlightStreamReader* reader) {
    std::lock_guard<std::mutex> lock(mu_);
    reader_ = reader;
    cancelled_ = false;
  }

 private:
  std::atomic<bool> done_{false};
  std::mutex mu_;
  fl::FlightStreamReader* reader_ = nullptr;
  bool cancelled_ = false;
  std::thread thread_;
  struct sigaction old_int_ {}, old_term_ {};
};

// "rows, bytes, rows/s" on stderr, rewritten with \r at most 4 times a second,
// from one second into the result on; only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(Clock::now()), last_(start_) {}
  void Update(int64_t rows, int64_t bytes) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(250)) {
      return;
    }
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\r%lld rows, %s, %.0f rows/s\033[K", static_cast<long long>(rows),
                 HumanBytes(bytes).c_str(), secs > 0 ? rows / secs : 0.0);
    std::fflush(stderr);
    shown_ = true;
  }
  void Clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static std::string HumanBytes(int64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
  }
  bool enabled_;
  bool shown_ = false;
  Clock::time_point start_, last_;
};

arrow::Result<Format> ChooseFormat(const QueryOptions& o) {
  if (!o.format.empty()) {
    auto f = ParseFormat(o.format);
    if (!f) {
      return arrow::Status::Invalid("unknown --format '", o.format,
                                    "' (table, csv, jsonl, arrow, arrows, parquet)");
    }
    return *f;
  }
  if (!o.output.empty()) return FormatFromPath(o.output).value_or(Format::kCsv);
  return isatty(STDOUT_FILENO) ? Format::kTable : Format::kCsv;
}

arrow::Status WriteCursorFile(const std::string& path, const nlohmann::json& cursor) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << cursor.dump() << "\n";
    f.flush();
    if (!f) return arrow::Status::IOError("cannot write cursor file ", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return arrow::Status::IOError("cannot rename ", tmp, " to ", path);
  }
  return arrow::Status::OK();
}

arrow::Result<std::string> ReadCursorFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::string();  // no cursor yet: start from the beginning
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return std::string();
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return arrow::Status::Invalid("cursor file ", path, " does not hold a JSON object");
  }
  return parsed.dump();
}

std::string RangeText(const nlohmann::json& meta) {
  if (meta.contains("range") && meta["range"].is_object()) {
    const auto& r = meta["range"];
    return std::to_string(r.value("start", int64_t{0})) + ".." +
           std::to_string(r.value("end", int64_t{0}));
  }
  std::string out;
  if (meta.contains("ranges") && meta["ranges"].is_array()) {
    for (const auto& r : meta["ranges"]) {
      if (!out.empty()) out += ", ";
      out += r.value("network", std::string("?")) + " " +
             std::to_string(r["numbers"].value("start", int64_t{0})) + ".." +
             std::to_string(r["numbers"].value("end", int64_t{0}));
    }
  }
  return out;
}

arrow::Status RunQuery(const QueryOptions& o, int* exit_code) {
  ARROW_ASSIGN_OR_RAISE(Format format, ChooseFormat(o));
  if (IsBinaryFormat(format) && o.output.empty() && isatty(STDOUT_FILENO)) {
    return arrow::Status::Invalid(
        "refusing to write binary ", o.format.empty() ? "output" : o.format,
        " to a terminal: use -o FILE or redirect stdout");
  }
  fl::FlightCallOptions call;
  std::string api_key = o.api_key;
  if (api_key.empty()) {
    if (const char* env = std::getenv("SLUICE_API_KEY")) api_key = env;
  }
  if (!api_key.empty()) call.headers.emplace_back("authorization", "Bearer " + api_key);
  if (o.stream) call.headers.emplace_back("amp-stream", "true");
  if (!o.cursor_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto cursor, ReadCursorFile(o.cursor_file));
    if (!cursor.empty()) call.headers.emplace_back("amp-resume", cursor);
  }

  InterruptWatcher watcher;
  ARROW_ASSIGN_OR_RAISE(auto location, fl::Location::Parse(o.server));
  fl::FlightClientOptions client_options = fl::FlightClientOptions::Defaults();
  if (!o.tls_root_certs.empty()) {
    std::ifstream f(o.tls_root_certs, std::ios::binary);
    std::stringstream pem;
    pem << f.rdbuf();
    if (!f || pem.str().empty()) {
      return arrow::Status::IOError("--tls-root-certs: cannot read ", o.tls_root_certs);
    }
    client_options.tls_root_certs = pem.str();
  }
  ARROW_ASSIGN_OR_RAISE(auto client, fl::FlightClient::Connect(location, client_options));
  ARROW_ASSIGN_OR_RAISE(auto info,
                        client->GetFlightInfo(call, fl::FlightDescriptor::Command(o.sql)));

  std::shared_ptr<CountingOutputStream> sink;
  std::unique_ptr<BatchWriter> writer;
  // The sink opens once the query runs, so a failing query leaves no -o file.
  auto open = [&](const std::shared_ptr<arrow::Schema>& schema) -> arrow::Status {
    if (writer) return arrow::Status::OK();
    std::shared_ptr<arrow::io::OutputStream> raw;
    if (o.output.empty() || o.output == "-") {
      ARROW_ASSIGN_OR_RAISE(raw, arrow::io::FileOutputStream::Open(STDOUT_FILENO));
    } else {
      ARROW_ASSIGN_OR_RAISE(raw, arrow::io::FileOutputStream::Open(o.output));
    }
    sink = std::make_shared<CountingOutputStream>(std::move(raw));
    ARROW_ASSIGN_OR_RAISE(writer, MakeBatchWriter(format, schema, sink, o.stream));
    return arrow::Status::OK();
  };
  // Microbatch announcements: in the table itself, on stderr for the other formats.
  auto announce = [&](const std::string& line) -> arrow::Status {
    if (format == Format::kTable) {
      std::string s = line + "\n";
      ARROW_RETURN_NOT_OK(sink->Write(s.data(), static_cast<int64_t>(s.size())));
      return sink->Flush();
    }
    std::cerr << line << std::endl;
    return arrow::Status::OK();
  };

  Progress progress(!o.stream && isatty(STDERR_FILENO));
  int64_t rows = 0;
  for (const auto& endpoint : info->endpoints()) {
    if (g_interrupted.load()) break;
    ARROW_ASSIGN_OR_RAISE(auto reader, client->DoGet(call, endpoint.ticket));
    watcher.SetReader(reader.get());
    auto read = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto schema, reader->GetSchema());
      ARROW_RETURN_NOT_OK(open(schema));
      while (true) {
        ARROW_ASSIGN_OR_RAISE(auto chunk, reader->Next());
        if (!chunk.data) break;
        if (!o.stream) {
          if (chunk.data->num_rows() > 0) {
            ARROW_RETURN_NOT_OK(writer->Write(chunk.data));
            rows += chunk.data->num_rows();
            progress.Update(rows, sink->bytes());
          }
          continue;
        }
        nlohmann::json meta = nlohmann::json::object();
        if (chunk.app_metadata) {
          meta = nlohmann::json::parse(chunk.app_metadata->ToString(), nullptr, false);
          if (meta.is_discarded()) meta = nlohmann::json::object();
        }
        std::string kind = meta.value("kind", std::string("data"));
        if (kind == "microbatch_start") {
          bool reorg = meta.value("is_reorg", false);
          ARROW_RETURN_NOT_OK(
              announce(std::string("# microbatch ") + RangeText(meta) + (reorg ? " reorg" : "")));
        } else if (kind == "data") {
          if (chunk.data->num_rows() > 0) ARROW_RETURN_NOT_OK(writer->Write(chunk.data));
        } else if (kind == "microbatch_end") {
          if (!o.cursor_file.empty() && meta.contains("cursor")) {
            ARROW_RETURN_NOT_OK(WriteCursorFile(o.cursor_file, meta["cursor"]));
          }
        }
      }
      return arrow::Status::OK();
    };
    auto st = read();
    watcher.SetReader(nullptr);
    if (!st.ok() && !g_interrupted.load()) {
      progress.Clear();
      return st;
    }
  }
  if (!writer) {
    arrow::ipc::DictionaryMemo memo;
    ARROW_ASSIGN_OR_RAISE(auto schema, info->GetSchema(&memo));
    ARROW_RETURN_NOT_OK(open(schema));
  }
  progress.Clear();
  ARROW_RETURN_NOT_OK(writer->Finish());
  if (g_interrupted.load() && !o.stream) *exit_code = 130;
  return arrow::Status::OK();
}

// The server's message without Flight's transport decorations.
std::string Readable(const arrow::Status& st) {
  std::string msg = st.message();
  for (const char* marker : {". Detail:", "\n"}) {
    auto pos = msg.find(marker);
    if (pos != std::string::npos) msg = msg.substr(0, pos);
  }
  return msg;
}

}  // namespace

void AddQueryCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "query", "Run one SQL query on a running server and write its result");
  auto o = std::make_shared<QueryOptions>();
  cmd->add_option("sql", o->sql, "The query, e.g. \"SELECT * FROM eth_rpc.blocks LIMIT 5\"")
      ->required();
  cmd->add_option("-s,--server", o->server,
                  "Flight endpoint of the server (grpc+tls://host:port for TLS)")
      ->capture_default_str();
  cmd->add_option("--api-key", o->api_key,
                  "API key, sent as 'authorization: Bearer <key>' (default: the environment "
                  "variable SLUICE_API_KEY, which keeps it out of the process list)");
  cmd->add_option("--tls-root-certs", o->tls_root_certs,
                  "PEM file of the certificate authorities to trust for grpc+tls:// (default: "
                  "the system's)");
  cmd->add_option("-f,--format", o->format,
                  "Output format: table, csv, jsonl, arrow (IPC file), arrows (IPC stream), "
                  "parquet. Default: table when stdout is a terminal; otherwise from -o's "
                  "extension (.csv .jsonl .arrow .arrows .parquet), else csv. Binary values "
                  "are 0x hex in table, csv and jsonl")
      ->check(CLI::IsMember({"table", "csv", "jsonl", "ndjson", "arrow", "feather", "arrows",
                             "parquet"}));
  cmd->add_option("-o,--output", o->output,
                  "Write to FILE instead of stdout (arrow, arrows and parquet refuse a "
                  "terminal stdout)");
  cmd->add_flag("--stream", o->stream,
                "Run as a streaming query (amp-stream: true): print each microbatch's range "
                "(\"# microbatch A..B\", \"reorg\" when it is one; in the table, on stderr for "
                "other formats) and its rows as they come, until Ctrl-C");
  cmd->add_option("--cursor-file", o->cursor_file,
                  "With --stream: resume from the cursor stored in FILE (if it exists) and "
                  "store the cursor there (atomically) after each microbatch");
  cmd->callback([=] {
    auto st = RunQuery(*o, exit_code);
    if (!st.ok()) {
      std::cerr << "error: " << Readable(st) << std::endl;
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
