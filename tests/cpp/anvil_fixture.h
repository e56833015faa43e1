// A real anvil node for tests, and an independent JSON-RPC helper to talk to it
// (libcurl + nlohmann::json, sharing no code with src/ingest, so tests compare
// the code under test against the node's own answers).
//
// The anvil binary is `.deps/anvil` under the source dir (env SLUICE_SOURCE_DIR,
// else the compile definition SLUICE_SOURCE_DIR), or the env var SLUICE_ANVIL.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"

namespace sluice::testing {

/// \brief The repository root.
inline std::filesystem::path SourceDir() {
  if (const char* env = std::getenv("SLUICE_SOURCE_DIR")) return env;
#ifdef SLUICE_SOURCE_DIR
  return SLUICE_SOURCE_DIR;
#else
  return std::filesystem::current_path();
#endif
}

/// \brief The anvil binary.
inline std::filesystem::path AnvilPath() {
  if (const char* env = std::getenv("SLUICE_ANVIL")) return env;
  return SourceDir() / ".deps" / "anvil";
}

/// \brief A TCP port on 127.0.0.1 that was free a moment ago.
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

/// \brief A minimal blocking JSON-RPC client (independent of src/ingest).
class JsonRpc {
 public:
  explicit JsonRpc(std::string url) : url_(std::move(url)) {}

  /// \brief The full response object; throws std::runtime_error on transport errors.
  nlohmann::json Raw(const std::string& method, nlohmann::json params = nlohmann::json::array(),
                     long timeout_ms = 10000) const {
    nlohmann::json req = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
    std::string body = req.dump(), out;
    CURL* c = curl_easy_init();
    curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* ud) {
      static_cast<std::string*>(ud)->append(p, s * n);
      return s * n;
    });
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) throw std::runtime_error(method + ": " + curl_easy_strerror(rc));
    return nlohmann::json::parse(out);
  }

  /// \brief The `result`; throws std::runtime_error on a JSON-RPC error.
  nlohmann::json Call(const std::string& method,
                      nlohmann::json params = nlohmann::json::array()) const {
    auto r = Raw(method, std::move(params));
    if (r.contains("error")) throw std::runtime_error(method + ": " + r["error"].dump());
    return r["result"];
  }

  /// \brief The raw text of the `result` of one call (for feeding a decoder).
  std::string CallText(const std::string& method,
                       nlohmann::json params = nlohmann::json::array()) const {
    return Call(method, std::move(params)).dump();
  }

  uint64_t BlockNumber() const { return Hex(Call("eth_blockNumber")); }
  nlohmann::json Block(uint64_t n, bool full = true) const {
    return Call("eth_getBlockByNumber", {Q(n), full});
  }
  std::string BlockHash(uint64_t n) const { return Block(n, false)["hash"]; }

  /// \brief eth_sendTransaction; returns the transaction hash.
  std::string Send(nlohmann::json tx) const {
    return Call("eth_sendTransaction", nlohmann::json::array({std::move(tx)}));
  }
  /// \brief Mine one block (evm_mine) or `n` blocks (anvil_mine).
  void Mine(uint64_t n = 1) const {
    if (n == 1) {
      Call("evm_mine");
    } else {
      Call("anvil_mine", {Q(n)});
    }
  }

  static uint64_t Hex(const nlohmann::json& j) {
    return std::stoull(j.get<std::string>().substr(2), nullptr, 16);
  }
  static std::string Q(uint64_t n) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(n));
    return buf;
  }

  const std::string& url() const { return url_; }

 private:
  std::string url_;
};

/// \brief anvil's first dev accounts (unlocked; 10000 ETH each).
inline const char* kDev0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
inline const char* kDev1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
inline const char* kDev2 = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

/// \brief A running anvil process on a free port, killed at destruction.
class Anvil {
 public:
  /// \brief Start anvil with `--silent` plus `args` (e.g. "--no-mining").
  /// Returns nullptr (and fills *error) when it does not answer within 20 s.
  static std::unique_ptr<Anvil> Start(std::vector<std::string> args = {"--no-mining"},
                                      std::string* error = nullptr) {
    static bool curl_ready = (curl_global_init(CURL_GLOBAL_DEFAULT), true);
    (void)curl_ready;
    std::string why;
    for (int attempt = 0; attempt < 3; ++attempt) {
      int port = FreePort();
      std::vector<std::string> argv = {AnvilPath().string(), "--host", "127.0.0.1", "--port",
                                       std::to_string(port), "--silent"};
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> cargv;  // built before fork: the child only calls async-signal-safe functions
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      // anvil writes old states under $HOME/.foundry/anvil/tmp and never deletes
      // them: a home of its own, deleted with the fixture.
      std::string home = (std::filesystem::temp_directory_path() / "sluice-anvil-XXXXXX").string();
      if (::mkdtemp(home.data()) == nullptr) home.clear();
      std::vector<std::string> env;
      for (char** e = environ; *e != nullptr; ++e) {
        if (std::strncmp(*e, "HOME=", 5) != 0 || home.empty()) env.emplace_back(*e);
      }
      if (!home.empty()) env.push_back("HOME=" + home);
      std::vector<char*> cenv;
      for (auto& e : env) cenv.push_back(e.data());
      cenv.push_back(nullptr);
      pid_t pid = ::fork();
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
        int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
        ::execve(cargv[0], cargv.data(), cenv.data());
        ::_exit(127);
      }
      std::unique_ptr<Anvil> anvil(new Anvil(pid, port, home));
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          anvil->pid_ = -1;
          why = "anvil exited with status " + std::to_string(status) + " (" +
                AnvilPath().string() + ")";
          break;
        }
        try {
          anvil->rpc().Raw("eth_chainId", nlohmann::json::array(), 500);
          return anvil;
        } catch (const std::exception&) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (why.empty()) why = "anvil did not answer within 20 s";
    }
    if (error) *error = why;
    return nullptr;
  }

  ~Anvil() {
    Kill();
    RemoveHome();
  }

  /// \brief Kill the process (SIGTERM, then SIGKILL after 3 s) and reap it.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        RemoveHome();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    RemoveHome();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const JsonRpc& rpc() const { return rpc_; }

 private:
  Anvil(pid_t pid, int port, std::string home)
      : pid_(pid), port_(port), home_(std::move(home)), rpc_(url()) {}
  void RemoveHome() {
    std::error_code ec;
    if (!home_.empty()) std::filesystem::remove_all(home_, ec);
    home_.clear();
  }
  pid_t pid_;
  int port_;
  std::string home_;  // anvil's HOME (empty: the test's own)
  JsonRpc rpc_;
};

/// \brief Init code of a contract deployment that emits two logs, then deploys
/// 10 zero bytes: LOG2(topics kTopicA, kTopicB; data = 32-byte word 0x42) and
/// LOG1(topic kTopicC; no data).
inline const char* kTopicA = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
inline const char* kTopicB = "0x00000000000000000000000000000000000000000000000000000000000000bb";
inline const char* kTopicC = "0xcccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
inline std::string LoggingInitCode() {
  auto word = [](const char* t) { return std::string("7f") + (t + 2); };
  return "0x"
         "6042600052"                      // MSTORE(0, 0x42)
         + word(kTopicB) + word(kTopicA) +  // topic1, topic0
         "60206000a2"                      // LOG2(offset 0, size 32, topic0, topic1)
         + word(kTopicC) +                  // topic0
         "60006000a1"                      // LOG1(offset 0, size 0, topic0)
         "600a6000f3";                     // RETURN(0, 10)
}
/// \brief Init code that reverts (status 0 receipt).
inline const char* kRevertInitCode = "0x60006000fd";

/// \brief On a `--no-mining` anvil, mine `blocks` blocks with a mix of activity:
/// block i holds i % 4 transactions (ETH transfers, a log-emitting deployment,
/// a reverting deployment); every 7th block also a 2-wei transfer from dev 2.
inline void MineActivity(const JsonRpc& rpc, int blocks) {
  for (int i = 0; i < blocks; ++i) {
    for (int k = 0; k < i % 4; ++k) {
      switch (k) {
        case 0:
          rpc.Send({{"from", kDev0}, {"to", kDev1}, {"value", JsonRpc::Q(1000 + i)}});
          break;
        case 1:
          rpc.Send({{"from", kDev1}, {"data", LoggingInitCode()}});
          break;
        case 2:
          rpc.Send({{"from", kDev0}, {"data", kRevertInitCode}, {"gas", "0x30000"}});
          break;
      }
    }
    if (i % 7 == 0) rpc.Send({{"from", kDev2}, {"to", kDev0}, {"value", "0x2"}});
    rpc.Mine();
  }
}

}  // namespace sluice::testing
