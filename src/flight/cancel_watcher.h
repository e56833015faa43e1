// Stopping the engine when a Flight call ends early.
//
// A batch query's DoGet thread may sit in DuckDB for long without writing to
// the client: an aggregate or a sort computes its whole input before the first
// record batch. A client that cancels, passes its deadline or disconnects
// meanwhile is only noticed at the next write. The watcher notices it at once:
// one thread polls the registered calls' ServerCallContext::is_cancelled()
// every 50 ms and runs each cancelled call's callback (Session::Interrupt) once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "arrow/flight/server.h"

namespace sluice::flight {

/// \brief Watches running calls for cancellation. Thread-safe.
class CancelWatcher {
 public:
  /// \brief Unregisters its call when destroyed; destroy it before the context
  /// and before whatever the callback touches.
  class Registration {
   public:
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    friend class CancelWatcher;
    Registration(CancelWatcher* watcher, uint64_t id) : watcher_(watcher), id_(id) {}
    CancelWatcher* watcher_;
    uint64_t id_;
  };

  /// \brief The process's watcher (its thread starts at the first Watch).
  static CancelWatcher& Default();

  ~CancelWatcher();

  /// \brief Run `on_cancel` (on the watcher's thread, at most once) when the
  /// call of `context` is cancelled, until the registration is destroyed.
  std::unique_ptr<Registration> Watch(const arrow::flight::ServerCallContext* context,
                                      std::function<void()> on_cancel);

 private:
  struct Entry {
    const arrow::flight::ServerCallContext* context;
    std::function<void()> on_cancel;
  };
  void Unwatch(uint64_t id);
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Entry> calls_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::flight
