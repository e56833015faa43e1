// sluice_client_query: a batch query through the client library — pages of a
// fixed size, a page limit, a progress callback, a timeout, cancellation from
// another thread, and bound parameters.
//
//   sluice_client_query --flight-url grpc://localhost:1602 --sql SQL
//       [--fetch-size N] [--max-pages N] [--timeout-ms N]
//       [--cancel-after-pages N] [--out FILE] [--param TYPE:VALUE]...
//
// Prints a JSON line per page {"page":P,"rows":R} (from the page callback), then
// {"rows":N,"pages":P,"complete":B,"timed_out":B,"status":"OK"|"<error>"}. --out
// writes the pages read as an Arrow IPC stream. --param binds the next
// placeholder: int64:5, double:1.5, string:text, bool:true, null. Exit status 0
// when the query ended (completely, at --max-pages or cancelled as asked), else 1.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "arrow/io/file.h"
#include "arrow/ipc/writer.h"
#include "arrow/scalar.h"
#include "sluice/client/api.h"

namespace {

struct Args {
  std::string url, sql, out;
  int64_t fetch_size = 0;
  int64_t max_pages = -1;
  int64_t timeout_ms = 0;
  int64_t cancel_after_pages = 0;
  std::vector<std::shared_ptr<arrow::Scalar>> parameters;
};

// [doc:parameters]
// A parameter is a typed arrow::Scalar: "int64:5" is arrow::Int64Scalar(5).
arrow::Result<std::shared_ptr<arrow::Scalar>> ParseParameter(const std::string& text) {
  if (text == "null") return arrow::MakeNullScalar(arrow::null());
  auto colon = text.find(':');
  if (colon == std::string::npos) return arrow::Status::Invalid("--param TYPE:VALUE, not ", text);
  const std::string type = text.substr(0, colon);
  std::shared_ptr<arrow::DataType> arrow_type = type == "int64"    ? arrow::int64()
                                                : type == "double" ? arrow::float64()
                                                : type == "bool"   ? arrow::boolean()
                                                : type == "string" ? arrow::utf8()
                                                                   : nullptr;
  if (!arrow_type) {
    return arrow::Status::Invalid("--param type must be int64, double, bool or string, not ",
                                  type);
  }
  return arrow::Scalar::Parse(arrow_type, text.substr(colon + 1));
}
// [end:parameters]

arrow::Status Run(const Args& args, bool* ok) {
  // [doc:connect]
  sluice::client::ClientOptions client_options;
  client_options.flight_url = args.url;  // empty: $SLUICE_FLIGHT_URL or grpc://localhost:1602
  ARROW_ASSIGN_OR_RAISE(auto client, sluice::client::Client::Connect(client_options));
  // [end:connect]

  std::mutex mu;
  std::condition_variable cv;
  int64_t pages_seen = 0;
  bool read_done = false;  // the reading loop ended: nothing to cancel

  // [doc:options]
  sluice::client::QueryOptions options;
  options.fetch_size = args.fetch_size;  // rows per page (the server cuts its batches so)
  if (args.max_pages >= 0) options.max_pages = args.max_pages;
  if (args.timeout_ms > 0) options.timeout = std::chrono::milliseconds(args.timeout_ms);
  options.parameters = args.parameters;  // binds ? / $1, $2, … as typed values
  options.page_callback = [&](int64_t page_number, int64_t rows_in_page) {
    std::cout << "{\"page\":" << page_number << ",\"rows\":" << rows_in_page << "}" << std::endl;
    std::lock_guard<std::mutex> lock(mu);
    pages_seen = page_number;
    cv.notify_all();
  };
  ARROW_ASSIGN_OR_RAISE(auto reader, client->Query(args.sql, options));
  // [end:options]

  // [doc:cancel]
  // Another thread may cancel the query at any time; the server stops it too.
  std::thread canceller;
  if (args.cancel_after_pages > 0) {
    canceller = std::thread([&] {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return read_done || pages_seen >= args.cancel_after_pages; });
      if (!read_done) reader->Cancel();
    });
  }
  // [end:cancel]

  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer;
  if (!args.out.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::FileOutputStream::Open(args.out));
    ARROW_ASSIGN_OR_RAISE(writer, arrow::ipc::MakeStreamWriter(file, reader->schema()));
  }

  // [doc:read]
  arrow::Status status;
  while (true) {
    auto batch = reader->Next();  // the next page; nullptr at the end
    if (!batch.ok()) {
      status = batch.status();  // Cancelled after Cancel(), or the server's error
      break;
    }
    if (*batch == nullptr) break;
    if (writer) ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(**batch));
  }
  // [end:read]

  if (canceller.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu);
      read_done = true;  // release a canceller still waiting
    }
    cv.notify_all();
    canceller.join();
  }
  if (writer) ARROW_RETURN_NOT_OK(writer->Close());
  std::string status_text = status.ok() ? "OK" : status.ToString();
  for (auto& c : status_text) {
    if (c == '"' || c == '\\' || c == '\n') c = ' ';
  }
  std::cout << "{\"rows\":" << reader->total_rows() << ",\"pages\":" << reader->page_number()
            << ",\"complete\":" << (reader->complete() ? "true" : "false")
            << ",\"timed_out\":" << (sluice::client::IsTimedOut(status) ? "true" : "false")
            << ",\"status\":\"" << status_text << "\"}" << std::endl;
  *ok = status.ok() || (args.cancel_after_pages > 0 && sluice::client::IsCancelled(status));
  return arrow::Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string opt = argv[i], value = argv[i + 1];
    if (opt == "--flight-url") {
      args.url = value;
    } else if (opt == "--sql") {
      args.sql = value;
    } else if (opt == "--out") {
      args.out = value;
    } else if (opt == "--fetch-size") {
      args.fetch_size = std::atoll(value.c_str());
    } else if (opt == "--max-pages") {
      args.max_pages = std::atoll(value.c_str());
    } else if (opt == "--timeout-ms") {
      args.timeout_ms = std::atoll(value.c_str());
    } else if (opt == "--cancel-after-pages") {
      args.cancel_after_pages = std::atoll(value.c_str());
    } else if (opt == "--param") {
      auto p = ParseParameter(value);
      if (!p.ok()) {
        std::cerr << "error: " << p.status().message() << "\n";
        return 2;
      }
      args.parameters.push_back(*p);
    } else {
      std::cerr << "error: unknown option " << opt << "\n";
      return 2;
    }
  }
  if (args.sql.empty() || argc % 2 == 0) {
    std::cerr << "usage: sluice_client_query --flight-url URL --sql SQL [options]\n";
    return 2;
  }
  bool ok = false;
  auto st = Run(args, &ok);
  if (!st.ok()) {
    std::cerr << "error: " << st.ToString() << "\n";
    return 1;
  }
  return ok ? 0 : 1;
}
