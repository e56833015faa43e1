// sluice_client_read_all: read a query's whole answer through the client library,
// page by page, and report its size and the growth of this process's memory.
//
//   sluice_client_read_all --flight-url grpc://localhost:1602 ...
//       --sql "SELECT * FROM eth_rpc.logs" [--fetch-size 10000]
//
// Prints one JSON line {"rows":N,"batches":B,"rss_growth_bytes":G}: G is the peak
// resident set size while reading (VmHWM, reset first through
// /proc/self/clear_refs) minus the resident set size before the query (VmRSS),
// both from /proc/self/status. Pages are dropped as they are read, so G stays
// about a few record batches whatever the size of the answer.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "sluice/client/api.h"

namespace {

// A field of /proc/self/status in bytes ("VmRSS:	  1234 kB"), -1 if absent.
int64_t StatusBytes(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream in(line.substr(field.size() + 1));
      int64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
  }
  return -1;
}

void ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";  // reset VmHWM to the current RSS (Linux >= 4.0)
}

int Usage(const char* message) {
  std::cerr << "error: " << message << "\n"
            << "usage: sluice_client_read_all --flight-url URL --sql SQL [--fetch-size N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, sql;
  int64_t fetch_size = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) return Usage(("missing value of " + arg).c_str());
    if (arg == "--flight-url") {
      url = argv[++i];
    } else if (arg == "--sql") {
      sql = argv[++i];
    } else if (arg == "--fetch-size") {
      fetch_size = std::atoll(argv[++i]);
    } else {
      return Usage(("unknown option " + arg).c_str());
    }
  }
  if (sql.empty()) return Usage("--sql is required");

  sluice::client::ClientOptions client_options;
  client_options.flight_url = url;
  auto client = sluice::client::Client::Connect(client_options);
  if (!client.ok()) return Usage(client.status().message().c_str());

  const int64_t rss_before = StatusBytes("VmRSS");
  ResetPeakRss();
  sluice::client::QueryOptions options;
  options.fetch_size = fetch_size;
  auto reader = (*client)->Query(sql, options);
  if (!reader.ok()) {
    std::cerr << "error: " << reader.status().ToString() << "\n";
    return 1;
  }
  int64_t rows = 0, batches = 0;
  while (true) {
    auto batch = (*reader)->Next();
    if (!batch.ok()) {
      std::cerr << "error: " << batch.status().ToString() << "\n";
      return 1;
    }
    if (!*batch) break;
    rows += (*batch)->num_rows();
    ++batches;
  }
  const int64_t peak = StatusBytes("VmHWM");
  std::printf("{\"rows\":%lld,\"batches\":%lld,\"rss_growth_bytes\":%lld}\n",
              static_cast<long long>(rows), static_cast<long long>(batches),
              static_cast<long long>(peak - rss_before));
  return 0;
}
