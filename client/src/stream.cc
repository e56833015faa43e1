#include "sluice/client/stream.h"

#include "app_metadata_internal.h"

namespace sluice::client {

namespace {

// The microbatch range of a streaming message; Invalid when it has none.
arrow::Result<BlockRange> RequireRange(const nlohmann::json& meta, const std::string& kind) {
  auto range = internal::MessageRange(meta);
  if (!range) {
    return arrow::Status::Invalid("app_metadata of kind '", kind, "' has no block range: ",
                                  meta.dump());
  }
  return *range;
}

}  // namespace

const char* EventName(const Event& event) {
  struct Names {
    const char* operator()(const MicrobatchStart&) const { return "MicrobatchStart"; }
    const char* operator()(const Data&) const { return "Data"; }
    const char* operator()(const BlockComplete&) const { return "BlockComplete"; }
    const char* operator()(const MicrobatchEnd&) const { return "MicrobatchEnd"; }
    const char* operator()(const Reorg&) const { return "Reorg"; }
    const char* operator()(const KeepAlive&) const { return "KeepAlive"; }
  };
  return std::visit(Names{}, event);
}

arrow::Result<std::vector<Event>> DecodeMessage(const std::string& app_metadata,
                                                std::shared_ptr<arrow::RecordBatch> batch) {
  ARROW_ASSIGN_OR_RAISE(auto meta, internal::ParseMetadata(app_metadata));
  const std::string kind = meta.value("kind", std::string());
  std::vector<Event> events;
  try {
    if (kind == "data") {
      ARROW_ASSIGN_OR_RAISE(auto range, RequireRange(meta, kind));
      events.emplace_back(Data{std::move(batch), range, app_metadata});
    } else if (kind == "block_complete") {
      const auto& bc = meta.at("block_complete");
      events.emplace_back(
          BlockComplete{bc.at("start").get<uint64_t>(), bc.at("end").get<uint64_t>(), app_metadata});
    } else if (kind == "microbatch_start") {
      ARROW_ASSIGN_OR_RAISE(auto range, RequireRange(meta, kind));
      MicrobatchStart start{range, meta.value("is_reorg", false), std::string(), app_metadata};
      auto ranges = meta.find("ranges");
      if (ranges != meta.end() && ranges->is_array() && !ranges->empty() &&
          (*ranges)[0].is_object()) {
        start.prev_hash = (*ranges)[0].value("prev_hash", std::string());
      }
      if (start.is_reorg) events.emplace_back(Reorg{range.start, app_metadata});
      events.emplace_back(std::move(start));
    } else if (kind == "microbatch_end") {
      ARROW_ASSIGN_OR_RAISE(auto range, RequireRange(meta, kind));
      const auto& cursor = meta.at("cursor");
      if (!cursor.is_object()) return arrow::Status::Invalid("microbatch_end cursor is not an object");
      events.emplace_back(MicrobatchEnd{range, cursor.dump(), app_metadata});
    } else if (kind == "keep_alive") {
      events.emplace_back(KeepAlive{app_metadata});
    }
  } catch (const nlohmann::json::exception& e) {
    return arrow::Status::Invalid("app_metadata of kind '", kind, "' is malformed (", e.what(),
                                  "): ", app_metadata.substr(0, 200));
  }
  return events;
}

Stream::Stream(std::unique_ptr<arrow::flight::FlightStreamReader> reader,
               std::shared_ptr<arrow::Schema> schema, std::optional<std::string> cursor,
               std::shared_ptr<CursorStore> store)
    : reader_(std::move(reader)),
      schema_(std::move(schema)),
      store_(std::move(store)),
      cursor_(std::move(cursor)) {}

Stream::~Stream() { (void)Close(/*commit=*/false); }

std::optional<std::string> Stream::cursor() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cursor_;
}

bool Stream::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

arrow::Status Stream::Commit() {
  // Under the lock, so a Close() from another thread waits for a save under way.
  std::lock_guard<std::mutex> lock(mu_);
  if (!unsaved_) return arrow::Status::OK();
  if (store_) ARROW_RETURN_NOT_OK(store_->Save(*unsaved_));  // kept unsaved: retried
  unsaved_.reset();
  return arrow::Status::OK();
}

arrow::Result<std::optional<Event>> Stream::Next() {
  if (closed()) return std::nullopt;
  if (!pending_.empty()) {
    Event ev = std::move(pending_.front());
    pending_.pop_front();
    return ev;
  }
  ARROW_RETURN_NOT_OK(Commit());
  while (true) {
    if (ended_ || closed()) return std::nullopt;
    auto next = reader_->Next();
    if (!next.ok()) {
      if (closed()) return std::nullopt;  // Close() from another thread while we waited
      return next.status();
    }
    if (!next->data) {
      ended_ = true;
      return std::nullopt;
    }
    std::string meta = next->app_metadata ? next->app_metadata->ToString() : std::string();
    ARROW_ASSIGN_OR_RAISE(auto events, DecodeMessage(meta, std::move(next->data)));
    if (events.empty()) continue;
    for (const auto& ev : events) {
      if (const auto* end = std::get_if<MicrobatchEnd>(&ev)) {
        std::lock_guard<std::mutex> lock(mu_);
        cursor_ = end->cursor;
        unsaved_ = end->cursor;
      }
    }
    for (size_t i = 1; i < events.size(); ++i) pending_.push_back(std::move(events[i]));
    return std::move(events[0]);
  }
}

arrow::Status Stream::Close(bool commit) {
  arrow::Status st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return arrow::Status::OK();
    if (commit && unsaved_ && store_) st = store_->Save(*unsaved_);
    unsaved_.reset();
    closed_ = true;
  }
  if (!ended_) reader_->Cancel();
  return st;
}

}  // namespace sluice::client
