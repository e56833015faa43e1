#include "flight/prepared_statements.h"

#include <openssl/rand.h>

#include "arrow/buffer.h"
#include "arrow/io/memory.h"
#include "arrow/ipc/reader.h"
#include "arrow/ipc/writer.h"
#include "common/hex.h"

namespace sluice::flight {

namespace {
arrow::Status UnknownHandle() {
  return arrow::Status::KeyError(
      "unknown prepared statement handle (closed, expired, or from another server); "
      "create it again with CreatePreparedStatement");
}
}  // namespace

std::string PreparedStatements::Add(std::string sql) {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof(raw));
  std::string handle = common::ToHex(raw, sizeof(raw));
  std::lock_guard<std::mutex> lock(mu_);
  auto now = Clock::now();
  ExpireLocked(now);
  while (entries_.size() >= max_ && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(handle);
  entries_[handle] = Entry{PreparedQuery{std::move(sql), nullptr}, now, lru_.begin()};
  return handle;
}

void PreparedStatements::ExpireLocked(Clock::time_point now) {
  while (!lru_.empty()) {
    auto it = entries_.find(lru_.back());
    if (now - it->second.used < idle_ttl_) break;
    entries_.erase(it);
    lru_.pop_back();
  }
}

PreparedStatements::Entry* PreparedStatements::FindLocked(const std::string& handle) {
  auto now = Clock::now();
  ExpireLocked(now);
  auto it = entries_.find(handle);
  if (it == entries_.end()) return nullptr;
  it->second.used = now;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second;
}

arrow::Result<PreparedQuery> PreparedStatements::Get(const std::string& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto* e = FindLocked(handle);
  if (e == nullptr) {
    return UnknownHandle();
  }
  return e->query;
}

arrow::Status PreparedStatements::Bind(const std::string& handle, sql::Parameters params) {
  std::lock_guard<std::mutex> lock(mu_);
  auto* e = FindLocked(handle);
  if (e == nullptr) {
    return UnknownHandle();
  }
  e->query.params = std::move(params);
  return arrow::Status::OK();
}

void PreparedStatements::Remove(const std::string& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(handle);
  if (it == entries_.end()) return;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

size_t PreparedStatements::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

arrow::Result<std::string> SerializeParameters(const sql::Parameters& params) {
  if (!params) return std::string();
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeStreamWriter(sink, params->schema()));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*params));
  ARROW_RETURN_NOT_OK(writer->Close());
  ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
  return buffer->ToString();
}

arrow::Result<sql::Parameters> DeserializeParameters(const std::string& bytes) {
  if (bytes.empty()) return nullptr;
  auto input = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(bytes));
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input));
  std::shared_ptr<arrow::RecordBatch> batch;
  ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
  return batch;
}

}  // namespace sluice::flight
