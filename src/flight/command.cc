#include "flight/command.h"

#include <cstdint>
#include <optional>

#include "arrow/status.h"
#include "arrow/util/utf8.h"

namespace sluice::flight {

namespace {

constexpr std::string_view kFlightSqlPrefix = "type.googleapis.com/arrow.flight.protocol.sql.";

// A length-delimited field of a protobuf message.
struct Field {
  uint32_t number;
  std::string_view bytes;
};

class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }

  std::optional<uint64_t> Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return std::nullopt;
      auto b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return std::nullopt;
  }

  // Next field; length-delimited fields are returned, others skipped (number 0).
  std::optional<Field> Next() {
    auto key = Varint();
    if (!key) return std::nullopt;
    uint32_t number = static_cast<uint32_t>(*key >> 3);
    switch (*key & 7) {
      case 0:
        if (!Varint()) return std::nullopt;
        return Field{0, {}};
      case 1:
        if (data_.size() - pos_ < 8) return std::nullopt;
        pos_ += 8;
        return Field{0, {}};
      case 5:
        if (data_.size() - pos_ < 4) return std::nullopt;
        pos_ += 4;
        return Field{0, {}};
      case 2: {
        auto len = Varint();
        if (!len || *len > data_.size() - pos_) return std::nullopt;
        Field f{number, data_.substr(pos_, *len)};
        pos_ += *len;
        return f;
      }
      default:
        return std::nullopt;
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Parse an Any; nullopt unless the whole input is a well-formed Any whose type
// URL names a Flight SQL message.
std::optional<std::pair<std::string_view, std::string_view>> ParseFlightSqlAny(
    std::string_view cmd) {
  WireReader r(cmd);
  std::string_view type_url, value;
  while (!r.done()) {
    auto f = r.Next();
    if (!f) return std::nullopt;
    if (f->number == 1) type_url = f->bytes;
    if (f->number == 2) value = f->bytes;
  }
  if (type_url.substr(0, kFlightSqlPrefix.size()) != kFlightSqlPrefix) return std::nullopt;
  return std::make_pair(type_url, value);
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutField(std::string* out, uint32_t number, std::string_view bytes) {
  PutVarint(out, (number << 3) | 2);
  PutVarint(out, bytes.size());
  out->append(bytes);
}

}  // namespace

arrow::Result<std::string> SqlFromCommand(std::string_view cmd) {
  arrow::util::InitializeUTF8();
  if (auto any = ParseFlightSqlAny(cmd)) {
    auto [type_url, value] = *any;
    if (type_url != kCommandStatementQueryType) {
      return arrow::Status::NotImplemented(
          "Flight SQL command ", type_url.substr(kFlightSqlPrefix.size()),
          " is not supported here; send CommandStatementQuery or the SQL text");
    }
    WireReader r(value);
    std::string_view query;
    while (!r.done()) {
      auto f = r.Next();
      if (!f) return arrow::Status::Invalid("malformed CommandStatementQuery");
      if (f->number == 1) query = f->bytes;
    }
    if (!arrow::util::ValidateUTF8(query)) {
      return arrow::Status::Invalid("CommandStatementQuery.query is not UTF-8");
    }
    return std::string(query);
  }
  if (!arrow::util::ValidateUTF8(cmd)) {
    return arrow::Status::Invalid(
        "descriptor command is neither UTF-8 SQL text nor a Flight SQL CommandStatementQuery");
  }
  return std::string(cmd);
}

std::string EncodeCommandStatementQuery(std::string_view sql) {
  std::string inner;
  PutField(&inner, 1, sql);
  std::string any;
  PutField(&any, 1, kCommandStatementQueryType);
  PutField(&any, 2, inner);
  return any;
}

}  // namespace sluice::flight
