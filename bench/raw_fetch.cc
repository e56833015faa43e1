// sluice_bench_rawfetch: the raw speed of a backfill's JSON-RPC traffic. Fetches
// blocks [from, to] exactly as the extractor's backfill asks for them (per block
// eth_getBlockByNumber(n, true) and eth_getBlockReceipts(n), `batch-blocks`
// blocks per JSON-RPC batch request, `in-flight` requests at a time, one
// RpcClient per worker) and throws the answers away: no decoding, no storing.
//
//   sluice_bench_rawfetch --rpc-url URL --from 1 --to N [--batch-blocks 50] [--in-flight 4]
//
// Prints one JSON line: {"blocks":..,"seconds":..,"blocks_per_sec":..,"bytes":..}.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "ingest/hex_quantity.h"
#include "ingest/rpc_client.h"

int main(int argc, char** argv) {
  CLI::App app{"Fetch a block range's JSON-RPC answers like a backfill, and drop them"};
  std::string url;
  uint64_t from = 0, to = 0;
  uint64_t batch_blocks = 50;
  int in_flight = 4;
  app.add_option("--rpc-url", url, "The node's JSON-RPC endpoint")->required();
  app.add_option("--from", from, "First block")->required();
  app.add_option("--to", to, "Last block (inclusive)")->required();
  app.add_option("--batch-blocks", batch_blocks, "Blocks per JSON-RPC batch request");
  app.add_option("--in-flight", in_flight, "Concurrent batch requests");
  CLI11_PARSE(app, argc, argv);
  if (to < from || batch_blocks < 1 || in_flight < 1) {
    std::cerr << "sluice_bench_rawfetch: need from <= to, batch-blocks >= 1, in-flight >= 1\n";
    return 2;
  }
  std::atomic<uint64_t> next{from};
  std::atomic<uint64_t> bytes{0};
  std::mutex error_mu;
  std::string error;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < in_flight; ++w) {
    workers.emplace_back([&] {
      auto client = sluice::ingest::RpcClient::Make({.url = url});
      if (!client.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        error = client.status().ToString();
        return;
      }
      while (true) {
        uint64_t lo = next.fetch_add(batch_blocks);
        if (lo > to) return;
        uint64_t hi = std::min(to, lo + batch_blocks - 1);
        std::vector<sluice::ingest::RpcRequest> requests;
        for (uint64_t n = lo; n <= hi; ++n) {
          std::string q = "\"" + sluice::ingest::FormatQuantity(n) + "\"";
          requests.push_back({"eth_getBlockByNumber", "[" + q + ",true]"});
          requests.push_back({"eth_getBlockReceipts", "[" + q + "]"});
        }
        auto raws = (*client)->CallBatch(requests);
        if (!raws.ok()) {
          std::lock_guard<std::mutex> lock(error_mu);
          error = raws.status().ToString();
          return;
        }
        uint64_t n = 0;
        for (const auto& r : *raws) n += r.size();
        bytes += n;
      }
    });
  }
  for (auto& t : workers) t.join();
  if (!error.empty()) {
    std::cerr << "sluice_bench_rawfetch: " << error << "\n";
    return 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t blocks = to - from + 1;
  std::printf("{\"blocks\":%llu,\"seconds\":%.3f,\"blocks_per_sec\":%.1f,\"bytes\":%llu}\n",
              static_cast<unsigned long long>(blocks), secs, blocks / secs,
              static_cast<unsigned long long>(bytes.load()));
  return 0;
}
