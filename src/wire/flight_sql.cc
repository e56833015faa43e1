#include "wire/flight_sql.h"

#include <type_traits>

#include "arrow/status.h"

namespace sluice::wire {

namespace {

// ---- protobuf wire format ------------------------------------------------------------

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One field of a message: its number, wire type, and value (varint or bytes).
struct Field {
  uint32_t number = 0;
  uint32_t type = 0;
  uint64_t varint = 0;
  std::string_view bytes;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
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

  std::optional<Field> Next() {
    auto key = Varint();
    if (!key || (*key >> 3) == 0 || (*key >> 3) > 0x1fffffff) return std::nullopt;
    Field f;
    f.number = static_cast<uint32_t>(*key >> 3);
    f.type = static_cast<uint32_t>(*key & 7);
    switch (f.type) {
      case kVarint: {
        auto v = Varint();
        if (!v) return std::nullopt;
        f.varint = *v;
        return f;
      }
      case kFixed64:
        if (data_.size() - pos_ < 8) return std::nullopt;
        pos_ += 8;
        return f;
      case kFixed32:
        if (data_.size() - pos_ < 4) return std::nullopt;
        pos_ += 4;
        return f;
      case kLengthDelimited: {
        auto len = Varint();
        if (!len || *len > data_.size() - pos_) return std::nullopt;
        f.bytes = data_.substr(pos_, *len);
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

class Writer {
 public:
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Bytes(uint32_t number, std::string_view bytes) {
    Varint((static_cast<uint64_t>(number) << 3) | kLengthDelimited);
    Varint(bytes.size());
    out_.append(bytes);
  }
  void Uint(uint32_t number, uint64_t v) {
    Varint((static_cast<uint64_t>(number) << 3) | kVarint);
    Varint(v);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Visit every field of `message`; Invalid naming `what` when it is malformed.
template <typename Fn>
arrow::Status ForEachField(std::string_view message, std::string_view what, Fn&& fn) {
  Reader r(message);
  while (!r.done()) {
    auto f = r.Next();
    if (!f) return arrow::Status::Invalid("malformed Flight SQL ", what);
    ARROW_RETURN_NOT_OK(fn(*f));
  }
  return arrow::Status::OK();
}

// A string or bytes field: Invalid when the wire type is not length-delimited.
arrow::Status TakeBytes(const Field& f, std::string_view what, std::string* out) {
  if (f.type != kLengthDelimited) return arrow::Status::Invalid("malformed Flight SQL ", what);
  out->assign(f.bytes);
  return arrow::Status::OK();
}

arrow::Status TakeBytes(const Field& f, std::string_view what, std::optional<std::string>* out) {
  out->emplace();
  return TakeBytes(f, what, &**out);
}

// The value of an Any naming `name`, or Invalid.
arrow::Result<std::string> UnpackNamed(std::string_view any, std::string_view name) {
  auto unpacked = UnpackFlightSqlAny(any);
  if (!unpacked) return arrow::Status::Invalid("expected a Flight SQL ", name, " in an Any");
  if (FlightSqlName(unpacked->type_url) != name) {
    return arrow::Status::Invalid("expected a Flight SQL ", name, ", got ",
                                  FlightSqlName(unpacked->type_url));
  }
  return std::move(unpacked->value);
}

void PutOptional(Writer* w, uint32_t number, const std::optional<std::string>& v) {
  if (v) w->Bytes(number, *v);
}

// Fields first..first+2 of a message: catalog, db_schema, table (the key commands).
arrow::Status TakeTableRef(const Field& f, uint32_t first, std::string_view what, TableRef* ref) {
  if (f.number == first) return TakeBytes(f, what, &ref->catalog);
  if (f.number == first + 1) return TakeBytes(f, what, &ref->db_schema);
  if (f.number == first + 2) return TakeBytes(f, what, &ref->table);
  return arrow::Status::OK();
}

void PutTableRef(Writer* w, uint32_t first, const TableRef& ref) {
  PutOptional(w, first, ref.catalog);
  PutOptional(w, first + 1, ref.db_schema);
  w->Bytes(first + 2, ref.table);
}

// A command naming one table (GetPrimaryKeys, GetExportedKeys, GetImportedKeys).
template <typename T>
arrow::Result<Command> DecodeKeysCommand(std::string_view value, std::string_view name) {
  T m;
  ARROW_RETURN_NOT_OK(ForEachField(
      value, name, [&](const Field& f) { return TakeTableRef(f, 1, name, &m.table); }));
  return Command{std::move(m)};
}

}  // namespace

std::string PackAny(std::string_view name, std::string_view value) {
  Writer w;
  std::string type_url(kFlightSqlTypePrefix);
  type_url.append(name);
  w.Bytes(1, type_url);
  w.Bytes(2, value);
  return w.Take();
}

std::optional<Any> UnpackFlightSqlAny(std::string_view bytes) {
  Reader r(bytes);
  Any any;
  bool has_type = false;
  while (!r.done()) {
    auto f = r.Next();
    if (!f || f->type != kLengthDelimited) return std::nullopt;
    if (f->number == 1) {
      any.type_url.assign(f->bytes);
      has_type = true;
    } else if (f->number == 2) {
      any.value.assign(f->bytes);
    }
  }
  if (!has_type || any.type_url.compare(0, kFlightSqlTypePrefix.size(), kFlightSqlTypePrefix)) {
    return std::nullopt;
  }
  return any;
}

std::string_view FlightSqlName(std::string_view type_url) {
  if (type_url.substr(0, kFlightSqlTypePrefix.size()) == kFlightSqlTypePrefix) {
    type_url.remove_prefix(kFlightSqlTypePrefix.size());
  }
  return type_url;
}

arrow::Result<std::optional<Command>> DecodeCommand(std::string_view cmd) {
  auto any = UnpackFlightSqlAny(cmd);
  if (!any) return std::nullopt;
  std::string_view name = FlightSqlName(any->type_url);
  std::string_view value = any->value;
  if (name == "CommandStatementQuery") {
    CommandStatementQuery m;
    ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
      return f.number == 1 ? TakeBytes(f, name, &m.query) : arrow::Status::OK();
    }));
    return Command{std::move(m)};
  }
  if (name == "CommandPreparedStatementQuery") {
    CommandPreparedStatementQuery m;
    ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
      return f.number == 1 ? TakeBytes(f, name, &m.prepared_statement_handle)
                           : arrow::Status::OK();
    }));
    return Command{std::move(m)};
  }
  if (name == "CommandGetCatalogs") return Command{CommandGetCatalogs{}};
  if (name == "CommandGetTableTypes") return Command{CommandGetTableTypes{}};
  if (name == "CommandGetDbSchemas") {
    CommandGetDbSchemas m;
    ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
      if (f.number == 1) return TakeBytes(f, name, &m.catalog);
      if (f.number == 2) return TakeBytes(f, name, &m.db_schema_filter_pattern);
      return arrow::Status::OK();
    }));
    return Command{std::move(m)};
  }
  if (name == "CommandGetTables") {
    CommandGetTables m;
    ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
      switch (f.number) {
        case 1:
          return TakeBytes(f, name, &m.catalog);
        case 2:
          return TakeBytes(f, name, &m.db_schema_filter_pattern);
        case 3:
          return TakeBytes(f, name, &m.table_name_filter_pattern);
        case 4:
          return TakeBytes(f, name, &m.table_types.emplace_back());
        case 5:
          if (f.type != kVarint) return arrow::Status::Invalid("malformed Flight SQL ", name);
          m.include_schema = f.varint != 0;
          return arrow::Status::OK();
        default:
          return arrow::Status::OK();
      }
    }));
    return Command{std::move(m)};
  }
  if (name == "CommandGetSqlInfo") {
    CommandGetSqlInfo m;
    ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) -> arrow::Status {
      if (f.number != 1) return arrow::Status::OK();
      if (f.type == kVarint) {
        m.info.push_back(static_cast<uint32_t>(f.varint));
        return arrow::Status::OK();
      }
      if (f.type != kLengthDelimited) return arrow::Status::Invalid("malformed Flight SQL ", name);
      Reader packed(f.bytes);  // packed repeated uint32
      while (!packed.done()) {
        auto v = packed.Varint();
        if (!v) return arrow::Status::Invalid("malformed Flight SQL ", name);
        m.info.push_back(static_cast<uint32_t>(*v));
      }
      return arrow::Status::OK();
    }));
    return Command{std::move(m)};
  }
  if (name == "CommandGetXdbcTypeInfo") {
    CommandGetXdbcTypeInfo m;
    ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) -> arrow::Status {
      if (f.number != 1) return arrow::Status::OK();
      if (f.type != kVarint) return arrow::Status::Invalid("malformed Flight SQL ", name);
      m.data_type = static_cast<int32_t>(f.varint);  // int32: negatives are sign-extended
      return arrow::Status::OK();
    }));
    return Command{std::move(m)};
  }
  if (name == "CommandGetPrimaryKeys") return DecodeKeysCommand<CommandGetPrimaryKeys>(value, name);
  if (name == "CommandGetExportedKeys") {
    return DecodeKeysCommand<CommandGetExportedKeys>(value, name);
  }
  if (name == "CommandGetImportedKeys") {
    return DecodeKeysCommand<CommandGetImportedKeys>(value, name);
  }
  if (name == "CommandGetCrossReference") {
    CommandGetCrossReference m;
    ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
      return f.number <= 3 ? TakeTableRef(f, 1, name, &m.pk_table)
                           : TakeTableRef(f, 4, name, &m.fk_table);
    }));
    return Command{std::move(m)};
  }
  return Command{UnsupportedCommand{std::string(name)}};
}

std::string EncodeCommand(const Command& command) {
  return std::visit(
      [](const auto& m) -> std::string {
        using T = std::decay_t<decltype(m)>;
        Writer w;
        if constexpr (std::is_same_v<T, CommandStatementQuery>) {
          w.Bytes(1, m.query);
          return PackAny("CommandStatementQuery", w.Take());
        } else if constexpr (std::is_same_v<T, CommandPreparedStatementQuery>) {
          w.Bytes(1, m.prepared_statement_handle);
          return PackAny("CommandPreparedStatementQuery", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetCatalogs>) {
          return PackAny("CommandGetCatalogs", "");
        } else if constexpr (std::is_same_v<T, CommandGetTableTypes>) {
          return PackAny("CommandGetTableTypes", "");
        } else if constexpr (std::is_same_v<T, CommandGetDbSchemas>) {
          PutOptional(&w, 1, m.catalog);
          PutOptional(&w, 2, m.db_schema_filter_pattern);
          return PackAny("CommandGetDbSchemas", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetTables>) {
          PutOptional(&w, 1, m.catalog);
          PutOptional(&w, 2, m.db_schema_filter_pattern);
          PutOptional(&w, 3, m.table_name_filter_pattern);
          for (const auto& t : m.table_types) w.Bytes(4, t);
          if (m.include_schema) w.Uint(5, 1);
          return PackAny("CommandGetTables", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetSqlInfo>) {
          for (auto i : m.info) w.Uint(1, i);
          return PackAny("CommandGetSqlInfo", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetXdbcTypeInfo>) {
          // int32: a negative value is sign-extended to 64 bits (protobuf).
          if (m.data_type) w.Uint(1, static_cast<uint64_t>(static_cast<int64_t>(*m.data_type)));
          return PackAny("CommandGetXdbcTypeInfo", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetPrimaryKeys>) {
          PutTableRef(&w, 1, m.table);
          return PackAny("CommandGetPrimaryKeys", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetExportedKeys>) {
          PutTableRef(&w, 1, m.table);
          return PackAny("CommandGetExportedKeys", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetImportedKeys>) {
          PutTableRef(&w, 1, m.table);
          return PackAny("CommandGetImportedKeys", w.Take());
        } else if constexpr (std::is_same_v<T, CommandGetCrossReference>) {
          PutTableRef(&w, 1, m.pk_table);
          PutTableRef(&w, 4, m.fk_table);
          return PackAny("CommandGetCrossReference", w.Take());
        } else {
          return PackAny(m.name, "");
        }
      },
      command);
}

std::string Encode(const ActionCreatePreparedStatementRequest& m) {
  Writer w;
  w.Bytes(1, m.query);
  return PackAny("ActionCreatePreparedStatementRequest", w.Take());
}

std::string Encode(const ActionCreatePreparedStatementResult& m) {
  Writer w;
  w.Bytes(1, m.prepared_statement_handle);
  if (!m.dataset_schema.empty()) w.Bytes(2, m.dataset_schema);
  if (!m.parameter_schema.empty()) w.Bytes(3, m.parameter_schema);
  return PackAny("ActionCreatePreparedStatementResult", w.Take());
}

std::string Encode(const ActionClosePreparedStatementRequest& m) {
  Writer w;
  w.Bytes(1, m.prepared_statement_handle);
  return PackAny("ActionClosePreparedStatementRequest", w.Take());
}

std::string Encode(const DoPutPreparedStatementResult& m) {
  Writer w;
  if (m.prepared_statement_handle) w.Bytes(1, *m.prepared_statement_handle);
  return w.Take();
}

std::string Encode(const ActionCancelQueryRequest& m) {
  Writer w;
  w.Bytes(1, m.info);
  return PackAny("ActionCancelQueryRequest", w.Take());
}

std::string Encode(const ActionCancelQueryResult& m) {
  Writer w;
  if (m.result != 0) w.Uint(1, static_cast<uint64_t>(static_cast<int64_t>(m.result)));
  return PackAny("ActionCancelQueryResult", w.Take());
}

arrow::Result<ActionCancelQueryRequest> DecodeCancelQueryRequest(std::string_view any) {
  constexpr std::string_view name = "ActionCancelQueryRequest";
  ARROW_ASSIGN_OR_RAISE(auto value, UnpackNamed(any, name));
  ActionCancelQueryRequest m;
  ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
    return f.number == 1 ? TakeBytes(f, name, &m.info) : arrow::Status::OK();
  }));
  return m;
}

arrow::Result<ActionCancelQueryResult> DecodeCancelQueryResult(std::string_view any) {
  constexpr std::string_view name = "ActionCancelQueryResult";
  ARROW_ASSIGN_OR_RAISE(auto value, UnpackNamed(any, name));
  ActionCancelQueryResult m;
  ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) -> arrow::Status {
    if (f.number != 1) return arrow::Status::OK();
    if (f.type != kVarint) return arrow::Status::Invalid("malformed Flight SQL ", name);
    m.result = static_cast<int32_t>(f.varint);
    return arrow::Status::OK();
  }));
  return m;
}

arrow::Result<ActionCreatePreparedStatementRequest> DecodeCreatePreparedStatementRequest(
    std::string_view any) {
  constexpr std::string_view name = "ActionCreatePreparedStatementRequest";
  ARROW_ASSIGN_OR_RAISE(auto value, UnpackNamed(any, name));
  ActionCreatePreparedStatementRequest m;
  ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
    return f.number == 1 ? TakeBytes(f, name, &m.query) : arrow::Status::OK();
  }));
  return m;
}

arrow::Result<ActionCreatePreparedStatementResult> DecodeCreatePreparedStatementResult(
    std::string_view any) {
  constexpr std::string_view name = "ActionCreatePreparedStatementResult";
  ARROW_ASSIGN_OR_RAISE(auto value, UnpackNamed(any, name));
  ActionCreatePreparedStatementResult m;
  ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
    if (f.number == 1) return TakeBytes(f, name, &m.prepared_statement_handle);
    if (f.number == 2) return TakeBytes(f, name, &m.dataset_schema);
    if (f.number == 3) return TakeBytes(f, name, &m.parameter_schema);
    return arrow::Status::OK();
  }));
  return m;
}

arrow::Result<ActionClosePreparedStatementRequest> DecodeClosePreparedStatementRequest(
    std::string_view any) {
  constexpr std::string_view name = "ActionClosePreparedStatementRequest";
  ARROW_ASSIGN_OR_RAISE(auto value, UnpackNamed(any, name));
  ActionClosePreparedStatementRequest m;
  ARROW_RETURN_NOT_OK(ForEachField(value, name, [&](const Field& f) {
    return f.number == 1 ? TakeBytes(f, name, &m.prepared_statement_handle)
                         : arrow::Status::OK();
  }));
  return m;
}

arrow::Result<DoPutPreparedStatementResult> DecodeDoPutPreparedStatementResult(
    std::string_view message) {
  constexpr std::string_view name = "DoPutPreparedStatementResult";
  DoPutPreparedStatementResult m;
  ARROW_RETURN_NOT_OK(ForEachField(message, name, [&](const Field& f) {
    return f.number == 1 ? TakeBytes(f, name, &m.prepared_statement_handle)
                         : arrow::Status::OK();
  }));
  return m;
}

}  // namespace sluice::wire
