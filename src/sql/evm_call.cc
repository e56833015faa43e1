#include "sql/evm_call.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <unordered_map>

#include "sql/evm_integers.h"
#include "sql/evm_udf.h"
#include "sql/evm_vectors.h"

namespace sluice::sql {

/// \brief The calls one query has made: a count against the limit, and the
/// answers, so that an identical call is made once.
class EthCallQuota {
 public:
  explicit EthCallQuota(int64_t max_calls) : max_calls_(max_calls) {}

  std::optional<EthCallAnswer> Find(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = answers_.find(key);
    if (it == answers_.end()) return std::nullopt;
    return it->second;
  }
  /// \brief Take `n` calls from the budget; false when that would exceed it.
  bool Take(int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    if (calls_ + n > max_calls_) return false;
    calls_ += n;
    return true;
  }
  /// \brief Keep an answer for identical calls later in the query, while the kept
  /// answers take less than kMaxKeptBytes (beyond, identical calls are made again).
  void Remember(const std::string& key, const EthCallAnswer& answer) {
    size_t bytes = key.size() + answer.error_message.size() +
                   (answer.result ? answer.result->size() : 0) +
                   (answer.error_data ? answer.error_data->size() : 0);
    std::lock_guard<std::mutex> lock(mu_);
    if (kept_bytes_ + bytes > kMaxKeptBytes) return;
    if (answers_.emplace(key, answer).second) kept_bytes_ += bytes;
  }
  static constexpr size_t kMaxKeptBytes = size_t{64} << 20;
  int64_t max_calls() const { return max_calls_; }

 private:
  const int64_t max_calls_;
  std::mutex mu_;
  int64_t calls_ = 0;
  size_t kept_bytes_ = 0;
  std::unordered_map<std::string, EthCallAnswer> answers_;
};

void EthCalls::AddNode(const std::string& dataset, EthCallFunction call) {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[dataset] = std::move(call);
}

arrow::Result<std::pair<std::string, EthCallFunction>> EthCalls::Node(
    const std::string& dataset) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.max_calls_per_query <= 0) {
    return arrow::Status::Invalid("eth_call is off on this server (eth_call_max_calls = 0)");
  }
  if (!dataset.empty()) {
    auto it = nodes_.find(dataset);
    if (it == nodes_.end()) {
      return arrow::Status::Invalid("dataset ", dataset, " has no node to answer eth_call");
    }
    return *it;
  }
  if (nodes_.empty()) return arrow::Status::Invalid("no node is configured to answer eth_call");
  if (nodes_.size() > 1) {
    std::string names;
    for (const auto& [name, fn] : nodes_) names += (names.empty() ? "" : ", ") + name;
    return arrow::Status::Invalid("several datasets have a node (", names,
                                  "): name one, as in <dataset>.eth_call(…)");
  }
  return *nodes_.begin();
}

std::shared_ptr<EthCallQuota> EthCalls::BeginQuery(idx_t connection_id) {
  auto quota = std::make_shared<EthCallQuota>(options_.max_calls_per_query);
  std::lock_guard<std::mutex> lock(mu_);
  quotas_[connection_id] = quota;
  if (++inserts_ % 256 == 0) {  // forget the budgets of finished queries
    std::erase_if(quotas_, [](const auto& entry) { return entry.second.expired(); });
  }
  return quota;
}

std::shared_ptr<EthCallQuota> EthCalls::QuotaFor(idx_t connection_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = quotas_.find(connection_id);
  if (it != quotas_.end()) {
    if (auto quota = it->second.lock()) return quota;
  }
  return std::make_shared<EthCallQuota>(options_.max_calls_per_query);
}

std::optional<std::string> DecodeRevertReason(ByteSpan data) {
  static const uint8_t kError[4] = {0x08, 0xc3, 0x79, 0xa0};  // Error(string)
  static const uint8_t kPanic[4] = {0x4e, 0x48, 0x7b, 0x71};  // Panic(uint256)
  if (data.size() < 4) return std::nullopt;
  ByteSpan args = data.subspan(4);
  if (std::equal(kError, kError + 4, data.begin())) {
    AbiType string_type;
    string_type.kind = AbiKind::kString;
    auto v = DecodeAbiValue(string_type, args);
    if (!v || !std::holds_alternative<std::string>(v->v)) return std::nullopt;
    return "execution reverted: " + std::get<std::string>(v->v);
  }
  if (std::equal(kPanic, kPanic + 4, data.begin())) {
    AbiType uint_type;
    uint_type.kind = AbiKind::kUint;
    uint_type.bits = 256;
    auto v = DecodeAbiValue(uint_type, args);
    if (!v) return std::nullopt;
    const auto& w = std::get<Word256>(v->v);
    uint64_t code = WordLow64(w);
    static const std::map<uint64_t, const char*> kCodes = {
        {0x00, "generic compiler panic"},
        {0x01, "assertion failed"},
        {0x11, "arithmetic underflow or overflow"},
        {0x12, "division or modulo by zero"},
        {0x21, "invalid enum value"},
        {0x22, "invalid storage byte array encoding"},
        {0x31, "pop() on an empty array"},
        {0x32, "array index out of bounds"},
        {0x41, "too much memory allocated"},
        {0x51, "call of a zero-initialized function"},
    };
    char hex[24];
    std::snprintf(hex, sizeof(hex), "0x%02llx", static_cast<unsigned long long>(code));
    auto it = WordFits(w, false, 64) ? kCodes.find(code) : kCodes.end();
    return std::string("execution reverted: panic ") + hex +
           (it != kCodes.end() ? std::string(" (") + it->second + ")" : "");
  }
  return std::nullopt;
}

arrow::Result<std::string> ParseBlockTag(std::string_view text) {
  for (const char* tag : {"latest", "earliest", "pending", "safe", "finalized"}) {
    if (text == tag) return std::string(tag);
  }
  auto n = ParseInteger(text);
  if (!n.ok() || n->negative || !WordFits(n->magnitude, false, 64)) {
    return arrow::Status::Invalid("block must be 'latest', 'earliest', 'pending', 'safe', "
                                  "'finalized', a block number or 0x hex, not '",
                                  text.substr(0, 80), "'");
  }
  char hex[24];
  std::snprintf(hex, sizeof(hex), "0x%llx",
                static_cast<unsigned long long>(WordLow64(n->magnitude)));
  return std::string(hex);
}

namespace {

constexpr const char* kName = "eth_call";

struct CallBindData {
  std::string dataset;
  EthCallFunction call;
  std::shared_ptr<EthCallQuota> quota;
  int64_t batch_size = 64;
};

EthCalls* Calls(void* extra_info) {
  return static_cast<std::shared_ptr<EthCalls>*>(extra_info)->get();
}

// first = 0 for eth_call, 1 for __sluice_eth_call (argument 0 is the dataset).
void Bind(duckdb_bind_info info, idx_t first) {
  udf::Guarded(info, [&] {
    EthCalls* calls = Calls(duckdb_scalar_function_bind_get_extra_info(info));
    std::string dataset;
    if (first == 1) {
      auto name = udf::ConstantString(info, 0);
      if (!name.ok() || !name->has_value()) {
        return udf::BindError(info, kName, "the dataset must be a constant");
      }
      dataset = **name;
    }
    auto node = calls->Node(dataset);
    if (!node.ok()) return udf::BindError(info, kName, node.status().message());
    CallBindData data;
    data.dataset = node->first;
    data.call = node->second;
    data.quota = calls->QuotaFor(udf::BindConnectionId(info));
    data.batch_size = std::max<int64_t>(1, calls->options().batch_size);
    udf::SetBindData(info, std::move(data));
  });
}

arrow::Result<std::array<uint8_t, 20>> Address(std::optional<ByteSpan> b, const char* what) {
  std::array<uint8_t, 20> out{};
  if (!b || b->size() != 20) {
    return arrow::Status::Invalid(what, " must be an address of 20 bytes, got ",
                                  b ? std::to_string(b->size()) + " bytes" : "NULL");
  }
  std::copy(b->begin(), b->end(), out.begin());
  return out;
}

arrow::Result<std::string> BlockAt(duckdb_vector v, idx_t row) {
  LogicalType type;
  *type.out() = duckdb_vector_get_column_type(v);
  duckdb_type id = duckdb_get_type_id(type.get());
  if (id == DUCKDB_TYPE_SQLNULL || IsNullRow(v, row)) {
    return arrow::Status::Invalid("block must not be NULL ('latest', a number, …)");
  }
  if (id == DUCKDB_TYPE_VARCHAR) {
    auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(v));
    return ParseBlockTag(std::string_view(duckdb_string_t_data(&data[row]),
                                          duckdb_string_t_length(data[row])));
  }
  AbiType u64;
  u64.kind = AbiKind::kUint;
  u64.bits = 64;
  auto value = ReadAbiValue(v, type.get(), row, u64);
  if (!value.ok()) {
    return arrow::Status::Invalid("block must be text or a non-negative integer, got a ",
                                  DuckTypeName(id));
  }
  return ParseBlockTag(std::to_string(WordLow64(std::get<Word256>(value->v))));
}

std::string Key(const EthCallRequest& r) {
  std::string key(reinterpret_cast<const char*>(r.to.data()), 20);
  key += r.from ? std::string(reinterpret_cast<const char*>(r.from->data()), 20) : "-";
  key += r.block;
  key += '|';
  if (r.input) key.append(reinterpret_cast<const char*>(r.input->data()), r.input->size());
  return key;
}

void WriteAnswer(duckdb_vector out, idx_t row, const EthCallAnswer& a) {
  duckdb_vector data = duckdb_struct_vector_get_child(out, 0);
  duckdb_vector message = duckdb_struct_vector_get_child(out, 1);
  const std::optional<AbiBytes>& bytes = a.result ? a.result : a.error_data;
  if (bytes) {
    udf::SetString(data, row, std::string_view(reinterpret_cast<const char*>(bytes->data()),
                                               bytes->size()));
  } else {
    udf::SetNull(data, row);
  }
  if (a.result) {
    udf::SetNull(message, row);
    return;
  }
  std::optional<std::string> reason;
  if (a.error_data) reason = DecodeRevertReason(*a.error_data);
  udf::SetString(message, row, reason ? *reason : a.error_message);
}

void Exec(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output, idx_t first) {
  udf::Guarded(info, [&] {
    const auto* bind = udf::BindData<CallBindData>(info);
    auto fail = [&](const std::string& msg) { udf::ExecError(info, kName, msg); };
    if (bind == nullptr) return fail("not bound");
    udf::StringColumn from(input, first), to(input, first + 1), data(input, first + 2);
    duckdb_vector block = duckdb_data_chunk_get_vector(input, first + 3);
    const idx_t n = duckdb_data_chunk_get_size(input);
    std::vector<std::string> keys(n);
    std::unordered_map<std::string, EthCallAnswer> answers;  // this chunk's
    std::vector<EthCallRequest> pending;
    std::vector<std::string> pending_keys;
    for (idx_t row = 0; row < n; ++row) {
      EthCallRequest r;
      auto to_address = Address(to.GetBytes(row), "to");
      if (!to_address.ok()) return fail(to_address.status().message());
      r.to = *to_address;
      if (auto f = from.GetBytes(row)) {
        auto from_address = Address(f, "from");
        if (!from_address.ok()) return fail(from_address.status().message());
        r.from = *from_address;
      }
      if (auto d = data.GetBytes(row)) r.input = AbiBytes(d->begin(), d->end());
      auto tag = BlockAt(block, row);
      if (!tag.ok()) return fail(tag.status().message());
      r.block = std::move(*tag);
      keys[row] = Key(r);
      if (answers.count(keys[row])) continue;
      if (auto known = bind->quota->Find(keys[row])) {
        answers.emplace(keys[row], std::move(*known));
        continue;
      }
      answers.emplace(keys[row], EthCallAnswer{});
      pending.push_back(std::move(r));
      pending_keys.push_back(keys[row]);
    }
    for (size_t start = 0; start < pending.size();
         start += static_cast<size_t>(bind->batch_size)) {
      size_t end = std::min(pending.size(), start + static_cast<size_t>(bind->batch_size));
      if (!bind->quota->Take(static_cast<int64_t>(end - start))) {
        return fail("the query makes more than " + std::to_string(bind->quota->max_calls()) +
                    " calls to the node (eth_call_max_calls)");
      }
      std::vector<EthCallRequest> batch(std::make_move_iterator(pending.begin() + start),
                                        std::make_move_iterator(pending.begin() + end));
      auto got = bind->call(batch);
      if (!got.ok()) return fail("dataset " + bind->dataset + ": " + got.status().message());
      if (got->size() != batch.size()) return fail("the node gave too few answers");
      for (size_t i = 0; i < batch.size(); ++i) {
        bind->quota->Remember(pending_keys[start + i], (*got)[i]);
        answers[pending_keys[start + i]] = std::move((*got)[i]);
      }
    }
    for (idx_t row = 0; row < n; ++row) WriteAnswer(output, row, answers[keys[row]]);
  });
}

LogicalType ResultType() {
  LogicalType blob, text;
  *blob.out() = duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
  *text.out() = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_logical_type members[2] = {blob.get(), text.get()};
  const char* names[2] = {"data", "message"};
  LogicalType out;
  *out.out() = duckdb_create_struct_type(members, names, 2);
  return out;
}

}  // namespace

arrow::Status RegisterEthCall(duckdb_connection conn, std::shared_ptr<EthCalls> calls) {
  LogicalType result = ResultType();
  auto extra = [&] { return new std::shared_ptr<EthCalls>(calls); };
  auto drop = [](void* p) { delete static_cast<std::shared_ptr<EthCalls>*>(p); };
  udf::FunctionSpec spec;
  spec.name = kName;
  spec.params = {DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_ANY};
  spec.result = result.get();
  spec.bind = [](duckdb_bind_info info) { Bind(info, 0); };
  spec.function = [](duckdb_function_info info, duckdb_data_chunk in, duckdb_vector out) {
    Exec(info, in, out, 0);
  };
  spec.special_null_handling = true;  // from and input may be NULL
  spec.is_volatile = true;            // never at plan time; the chain moves
  spec.extra_info = extra();
  spec.delete_extra_info = drop;
  ARROW_RETURN_NOT_OK(udf::Register(conn, spec));
  spec.name = "__sluice_eth_call";
  spec.params = {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB, DUCKDB_TYPE_BLOB,
                 DUCKDB_TYPE_ANY};
  spec.bind = [](duckdb_bind_info info) { Bind(info, 1); };
  spec.function = [](duckdb_function_info info, duckdb_data_chunk in, duckdb_vector out) {
    Exec(info, in, out, 1);
  };
  spec.extra_info = extra();
  return udf::Register(conn, spec);
}

}  // namespace sluice::sql
