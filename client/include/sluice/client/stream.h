// Streaming queries as typed events, with resume cursors (docs/cpp-client.md).
//
// Every Flight message of a streaming query is a record batch whose app_metadata
// JSON has a `kind` (docs/protocol.md "Streaming queries"); each message becomes
// one Event (two for a reorg: Reorg, then the MicrobatchStart). Per microbatch:
//
//   [Reorg]  MicrobatchStart  (Data | BlockComplete)*  MicrobatchEnd
//
// with KeepAlive between microbatches while the chain is idle.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "arrow/flight/client.h"
#include "arrow/record_batch.h"
#include "arrow/result.h"
#include "arrow/status.h"
#include "sluice/client/block_range.h"
#include "sluice/client/cursor_store.h"

namespace sluice::client {

/// \brief A microbatch over `range` begins. `is_reorg`: the chain reorganized
/// under blocks this stream had sent; `range.start` is the first replaced block
/// and a Reorg event came just before. `prev_hash`: the 0x hash of the parent of
/// `range.start` (after a reorg, the common ancestor), empty if not sent.
struct MicrobatchStart {
  BlockRange range;
  bool is_reorg = false;
  std::string prev_hash;
  std::string metadata;  ///< the message's app_metadata JSON
};

/// \brief Rows of the current microbatch, in block order; their blocks lie in
/// `range` (the microbatch's range). At most the fetch size rows.
struct Data {
  std::shared_ptr<arrow::RecordBatch> batch;
  BlockRange range;
  std::string metadata;
  int64_t num_rows() const { return batch ? batch->num_rows() : 0; }
};

/// \brief Every row of blocks `start..end` has been sent (in this microbatch).
struct BlockComplete {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string metadata;
};

/// \brief The microbatch over `range` is complete: apply its rows now.
/// `cursor` (JSON, e.g. {"anvil":{"block_number":102,"hash":"0x…","number":102}})
/// resumes the stream right after `range.end`.
struct MicrobatchEnd {
  BlockRange range;
  std::string cursor;
  std::string metadata;
};

/// \brief The chain reorganized: drop every row you hold of a block
/// `>= invalidate_from` (when applying the microbatch that follows, so a stream
/// cut off meanwhile loses nothing).
struct Reorg {
  uint64_t invalidate_from = 0;
  std::string metadata;
};

/// \brief Nothing was sent for the server's keep_alive_interval: the connection
/// is alive.
struct KeepAlive {
  std::string metadata;
};

/// \brief Any event of a Stream.
using Event = std::variant<MicrobatchStart, Data, BlockComplete, MicrobatchEnd, Reorg, KeepAlive>;

/// \brief "MicrobatchStart", "Data", … : the event's type name.
const char* EventName(const Event& event);

/// \brief The events of one message: its app_metadata JSON and record batch.
/// Kinds this version does not know give no event (forward compatibility).
/// Invalid when the JSON is malformed or lacks a field its kind needs.
arrow::Result<std::vector<Event>> DecodeMessage(const std::string& app_metadata,
                                                std::shared_ptr<arrow::RecordBatch> batch);

/// \brief How Client::Stream starts a streaming query.
struct StreamOptions {
  /// \brief Resume right after this cursor (JSON of a MicrobatchEnd's cursor).
  /// Wins over the cursor store's.
  std::optional<std::string> cursor;
  /// \brief Where the stream loads its cursor from at the start and saves it
  /// after each microbatch the consumer handled (see Stream). May be null.
  std::shared_ptr<CursorStore> cursor_store;
  /// \brief Shortcut: when not empty and cursor_store is null, a
  /// FileCursorStore on this path.
  std::string cursor_file;
  /// \brief Rows per Data record batch at most (header `sluice-fetch-size`),
  /// 1..kMaxFetchSize; 0: the server's rows_per_batch.
  int64_t fetch_size = 0;
  /// \brief Deadline of GetFlightInfo (a stream itself has no end). nullopt:
  /// ClientOptions::timeout.
  std::optional<std::chrono::milliseconds> timeout;
  /// \brief Extra gRPC headers of this stream's calls.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// \brief A running streaming query; Next() gives its events until Close(),
/// the server ends the stream, or an error.
///
/// Hold the rows of a microbatch until its MicrobatchEnd, then apply them (after
/// a Reorg, first drop your rows of blocks >= invalidate_from); a microbatch cut
/// off before its end is sent again on resume.
///
/// **Cursor store, exactly once.** A microbatch counts as delivered once the
/// consumer has handled its MicrobatchEnd: when it asks for the next event, or
/// calls Close() (commit true). Only then is its cursor saved to the store.
/// After a crash the stream resumes after the last delivered microbatch, so each
/// microbatch is delivered exactly once; one whose handling the crash cut (even
/// right after your own commit, before the next Next()) is sent again. For
/// exactly-once effects, keep the cursor with your data (your own CursorStore),
/// or on restart discard what you applied past the store's cursor
/// (client/examples/stream_to_file.cc does).
class Stream {
 public:
  ~Stream();  ///< Close(/*commit=*/false)
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  /// \brief The schema of the Data batches.
  std::shared_ptr<arrow::Schema> schema() const { return schema_; }

  /// \brief The next event; blocks until the server sends one. nullopt after
  /// Close() or when the server ended the stream. First saves the cursor of the
  /// MicrobatchEnd returned before, if any, to the cursor store (an IOError
  /// from the store is returned, and the stream stays usable).
  ///
  /// Errors: the server going away (IOError, IsUnavailable()); a live stream the
  /// server had to end (e.g. a reorg deeper than it remembers), with its message.
  arrow::Result<std::optional<Event>> Next();

  /// \brief The cursor of the last MicrobatchEnd returned, else the one the
  /// stream resumed from, else nullopt.
  std::optional<std::string> cursor() const;

  /// \brief Stop the stream: cancel the gRPC call (the server stops the query).
  /// With `commit`, the cursor of a MicrobatchEnd already returned and not yet
  /// saved is saved first. Thread-safe and idempotent: a thread waiting in
  /// Next() then gets nullopt.
  arrow::Status Close(bool commit = true);

  /// \brief Close() was called.
  bool closed() const;

 private:
  friend class Client;
  Stream(std::unique_ptr<arrow::flight::FlightStreamReader> reader,
         std::shared_ptr<arrow::Schema> schema, std::optional<std::string> cursor,
         std::shared_ptr<CursorStore> store);
  arrow::Status Commit();

  std::unique_ptr<arrow::flight::FlightStreamReader> reader_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<CursorStore> store_;
  std::deque<Event> pending_;
  mutable std::mutex mu_;  // guards cursor_, unsaved_, closed_
  std::optional<std::string> cursor_;
  std::optional<std::string> unsaved_;
  bool closed_ = false;
  bool ended_ = false;
};

}  // namespace sluice::client
