#include "sql/evm_abi_codec.h"

#include <algorithm>
#include <cstring>

#include "arrow/status.h"

namespace sluice::sql {

namespace {

constexpr uint64_t kWord = 32;

bool AllEqual(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != v) return false;
  }
  return true;
}

// A static elementary value from one 32-byte word; false when not strictly encoded.
bool DecodeWord(const AbiType& t, const uint8_t* w, AbiValue* out) {
  switch (t.kind) {
    case AbiKind::kAddress:
      if (!AllEqual(w, 12, 0)) return false;
      out->v = AbiBytes(w + 12, w + kWord);
      return true;
    case AbiKind::kBool:
      if (!AllEqual(w, 31, 0) || w[31] > 1) return false;
      out->v = w[31] == 1;
      return true;
    case AbiKind::kUint:
    case AbiKind::kInt: {
      Word256 word;
      std::memcpy(word.data(), w, kWord);
      if (!WordFits(word, t.kind == AbiKind::kInt, t.bits)) return false;
      out->v = word;
      return true;
    }
    case AbiKind::kFixedBytes:
      if (!AllEqual(w + t.size, kWord - t.size, 0)) return false;
      out->v = AbiBytes(w, w + t.size);
      return true;
    default:
      return false;
  }
}

// Decodes values at absolute positions of one data buffer, charging what it
// produces against a budget of about the data's size (see DecodeAbiValue).
class Decoder {
 public:
  explicit Decoder(ByteSpan data) : data_(data), budget_(data.size() + kWord) {}

  // A sequence of `n` values (a tuple's components or an array's elements) whose
  // heads start at `base`; offsets of dynamic ones are relative to `base`.
  template <typename TypeAt>
  bool Sequence(TypeAt&& type_at, uint64_t n, uint64_t base, AbiList* out) {
    out->resize(n);
    uint64_t pos = base;
    for (uint64_t i = 0; i < n; ++i) {
      const AbiType& t = type_at(i);
      if (t.is_dynamic()) {
        uint64_t offset = 0;
        if (!ReadSize(pos, &offset)) return false;
        if (offset > data_.size() - base) return false;
        if (!At(t, base + offset, &(*out)[i])) return false;
        pos += kWord;
      } else {
        if (!At(t, pos, &(*out)[i])) return false;
        pos += t.head_size();
      }
    }
    return true;
  }

  // The value of type `t` whose encoding starts at `pos`.
  bool At(const AbiType& t, uint64_t pos, AbiValue* out) {
    switch (t.kind) {
      case AbiKind::kBytes:
      case AbiKind::kString: {
        uint64_t length = 0;
        if (!ReadSize(pos, &length)) return false;
        if (length > data_.size() - pos - kWord || !Charge(kWord + length)) return false;
        const uint8_t* p = data_.data() + pos + kWord;
        if (t.kind == AbiKind::kBytes) {
          out->v = AbiBytes(p, p + length);
        } else if (IsValidUtf8(ByteSpan(p, length))) {
          out->v = std::string(reinterpret_cast<const char*>(p), length);
        } else {
          out->v = std::monostate{};
        }
        return true;
      }
      case AbiKind::kArray: {
        uint64_t n = 0;
        if (!ReadSize(pos, &n) || !Charge(kWord)) return false;
        const AbiType& elem = t.children[0];
        // Every element takes at least a word of head: this bounds n by the data.
        if (n > (data_.size() - pos - kWord) / elem.head_size()) return false;
        AbiList list;
        if (!Sequence([&](uint64_t) -> const AbiType& { return elem; }, n, pos + kWord, &list)) {
          return false;
        }
        out->v = std::move(list);
        return true;
      }
      case AbiKind::kFixedArray: {
        const AbiType& elem = t.children[0];
        if (t.size > (data_.size() - std::min<uint64_t>(pos, data_.size())) / elem.head_size()) {
          return false;
        }
        AbiList list;
        if (!Sequence([&](uint64_t) -> const AbiType& { return elem; }, t.size, pos, &list)) {
          return false;
        }
        out->v = std::move(list);
        return true;
      }
      case AbiKind::kTuple: {
        AbiList list;
        if (!Sequence([&](uint64_t i) -> const AbiType& { return t.children[i]; },
                      t.children.size(), pos, &list)) {
          return false;
        }
        out->v = std::move(list);
        return true;
      }
      default:
        if (pos > data_.size() || data_.size() - pos < kWord || !Charge(kWord)) return false;
        return DecodeWord(t, data_.data() + pos, out);
    }
  }

 private:
  // A word at `pos` holding an offset or a length: it must fit in 64 bits.
  bool ReadSize(uint64_t pos, uint64_t* out) const {
    if (pos > data_.size() || data_.size() - pos < kWord) return false;
    const uint8_t* w = data_.data() + pos;
    if (!AllEqual(w, 24, 0)) return false;
    uint64_t v = 0;
    for (int i = 24; i < 32; ++i) v = v << 8 | w[i];
    *out = v;
    return true;
  }
  bool Charge(uint64_t n) {
    if (n > budget_) return false;
    budget_ -= n;
    return true;
  }

  ByteSpan data_;
  uint64_t budget_;
};

void AppendWord(const Word256& w, AbiBytes* out) { out->insert(out->end(), w.begin(), w.end()); }
void AppendSize(uint64_t n, AbiBytes* out) { AppendWord(WordFromUint64(n), out); }
void AppendPadded(const uint8_t* p, size_t n, AbiBytes* out) {
  out->insert(out->end(), p, p + n);
  out->resize(out->size() + (kWord - n % kWord) % kWord, 0);
}

const char* ValueKind(const AbiValue& v) {
  switch (v.v.index()) {
    case 0:
      return "NULL";
    case 1:
      return "a boolean";
    case 2:
      return "an integer";
    case 3:
      return "bytes";
    case 4:
      return "a string";
    default:
      return "a list";
  }
}

arrow::Status Mismatch(const AbiType& t, const AbiValue& v) {
  return arrow::Status::Invalid("cannot encode ", ValueKind(v), " as ", t.Canonical());
}

arrow::Status Encode(const AbiType& t, const AbiValue& v, AbiBytes* out);

// Heads, then tails, of a sequence of values.
template <typename TypeAt>
arrow::Status EncodeSequence(TypeAt&& type_at, const AbiList& values, AbiBytes* out) {
  uint64_t head = 0;
  for (size_t i = 0; i < values.size(); ++i) head += type_at(i).head_size();
  AbiBytes heads, tails;
  for (size_t i = 0; i < values.size(); ++i) {
    const AbiType& t = type_at(i);
    if (t.is_dynamic()) {
      AppendSize(head + tails.size(), &heads);
      ARROW_RETURN_NOT_OK(Encode(t, values[i], &tails));
    } else {
      ARROW_RETURN_NOT_OK(Encode(t, values[i], &heads));
    }
  }
  out->insert(out->end(), heads.begin(), heads.end());
  out->insert(out->end(), tails.begin(), tails.end());
  return arrow::Status::OK();
}

arrow::Status Encode(const AbiType& t, const AbiValue& v, AbiBytes* out) {
  switch (t.kind) {
    case AbiKind::kAddress:
    case AbiKind::kFixedBytes: {
      const auto* b = std::get_if<AbiBytes>(&v.v);
      if (b == nullptr) return Mismatch(t, v);
      size_t want = t.kind == AbiKind::kAddress ? 20 : t.size;
      if (b->size() != want) {
        return arrow::Status::Invalid("cannot encode ", b->size(), " bytes as ", t.Canonical(),
                                      " (", want, " bytes)");
      }
      if (t.kind == AbiKind::kAddress) {
        out->resize(out->size() + 12, 0);  // left-padded, like uint160
        out->insert(out->end(), b->begin(), b->end());
      } else {
        AppendPadded(b->data(), b->size(), out);  // bytesN: right-padded
      }
      return arrow::Status::OK();
    }
    case AbiKind::kBool: {
      const auto* b = std::get_if<bool>(&v.v);
      if (b == nullptr) return Mismatch(t, v);
      AppendSize(*b ? 1 : 0, out);
      return arrow::Status::OK();
    }
    case AbiKind::kUint:
    case AbiKind::kInt: {
      const auto* w = std::get_if<Word256>(&v.v);
      if (w == nullptr) return Mismatch(t, v);
      if (!WordFits(*w, t.kind == AbiKind::kInt, t.bits)) {
        return arrow::Status::Invalid(WordToDecimal(*w, t.kind == AbiKind::kInt),
                                      " is out of range for ", t.Canonical());
      }
      AppendWord(*w, out);
      return arrow::Status::OK();
    }
    case AbiKind::kBytes:
    case AbiKind::kString: {
      const uint8_t* p = nullptr;
      size_t n = 0;
      if (const auto* b = std::get_if<AbiBytes>(&v.v); b && t.kind == AbiKind::kBytes) {
        p = b->data();
        n = b->size();
      } else if (const auto* s = std::get_if<std::string>(&v.v); s && t.kind == AbiKind::kString) {
        p = reinterpret_cast<const uint8_t*>(s->data());
        n = s->size();
      } else {
        return Mismatch(t, v);
      }
      AppendSize(n, out);
      AppendPadded(p, n, out);
      return arrow::Status::OK();
    }
    case AbiKind::kArray:
    case AbiKind::kFixedArray: {
      const auto* list = std::get_if<AbiList>(&v.v);
      if (list == nullptr) return Mismatch(t, v);
      if (t.kind == AbiKind::kFixedArray && list->size() != t.size) {
        return arrow::Status::Invalid("cannot encode a list of ", list->size(), " elements as ",
                                      t.Canonical());
      }
      if (t.kind == AbiKind::kArray) AppendSize(list->size(), out);
      const AbiType& elem = t.children[0];
      return EncodeSequence([&](size_t) -> const AbiType& { return elem; }, *list, out);
    }
    case AbiKind::kTuple: {
      const auto* list = std::get_if<AbiList>(&v.v);
      if (list == nullptr) return Mismatch(t, v);
      if (list->size() != t.children.size()) {
        return arrow::Status::Invalid("cannot encode ", list->size(), " values as ",
                                      t.Canonical());
      }
      return EncodeSequence([&](size_t i) -> const AbiType& { return t.children[i]; }, *list,
                            out);
    }
  }
  return Mismatch(t, v);
}

}  // namespace

bool IsHashedInTopic(const AbiType& t) {
  switch (t.kind) {
    case AbiKind::kBytes:
    case AbiKind::kString:
    case AbiKind::kArray:
    case AbiKind::kFixedArray:
    case AbiKind::kTuple:
      return true;
    default:
      return false;
  }
}

std::optional<AbiValue> DecodeAbiValue(const AbiType& t, ByteSpan data) {
  Decoder d(data);
  AbiList one;
  if (!d.Sequence([&](uint64_t) -> const AbiType& { return t; }, 1, 0, &one)) return std::nullopt;
  return std::move(one[0]);
}

std::optional<AbiList> DecodeAbiParams(const AbiType& tuple, ByteSpan data) {
  Decoder d(data);
  AbiList out;
  if (!d.Sequence([&](uint64_t i) -> const AbiType& { return tuple.children[i]; },
                  tuple.children.size(), 0, &out)) {
    return std::nullopt;
  }
  return out;
}

std::optional<AbiList> DecodeEventLog(const AbiSignature& signature,
                                      const std::array<std::optional<ByteSpan>, 3>& topics,
                                      ByteSpan data) {
  auto present = [&](size_t i) { return topics[i].has_value() && !topics[i]->empty(); };
  const size_t indexed = static_cast<size_t>(signature.indexed_count());
  for (size_t i = 0; i < topics.size(); ++i) {
    if (i < indexed) {
      if (!present(i) || topics[i]->size() != kWord) return std::nullopt;
    } else if (present(i)) {
      return std::nullopt;  // a topic the event does not have
    }
  }
  std::vector<const AbiType*> unindexed;
  for (const auto& p : signature.params) {
    if (!p.indexed) unindexed.push_back(&p.type);
  }
  Decoder d(data);
  AbiList data_values;
  if (!d.Sequence([&](uint64_t i) -> const AbiType& { return *unindexed[i]; }, unindexed.size(), 0,
                  &data_values)) {
    return std::nullopt;
  }
  AbiList values(signature.params.size());
  size_t topic = 0, next = 0;
  for (size_t i = 0; i < signature.params.size(); ++i) {
    const AbiParam& p = signature.params[i];
    if (!p.indexed) {
      values[i] = std::move(data_values[next++]);
      continue;
    }
    const uint8_t* w = topics[topic++]->data();
    if (IsHashedInTopic(p.type)) {
      values[i].v = AbiBytes(w, w + kWord);  // Keccak-256 of the value
    } else if (!DecodeWord(p.type, w, &values[i])) {
      return std::nullopt;
    }
  }
  return values;
}

std::optional<AbiList> DecodeFunctionInput(const AbiSignature& signature, ByteSpan input) {
  auto selector = signature.Selector();
  if (input.size() < 4 || !std::equal(selector.begin(), selector.end(), input.begin())) {
    return std::nullopt;
  }
  ByteSpan args = input.subspan(4);
  Decoder d(args);
  AbiList out;
  if (!d.Sequence([&](uint64_t i) -> const AbiType& { return signature.params[i].type; },
                  signature.params.size(), 0, &out)) {
    return std::nullopt;
  }
  return out;
}

arrow::Result<AbiBytes> EncodeAbiValue(const AbiType& t, const AbiValue& v) {
  AbiBytes out;
  AbiList one{v};
  ARROW_RETURN_NOT_OK(EncodeSequence([&](size_t) -> const AbiType& { return t; }, one, &out));
  return out;
}

arrow::Result<AbiBytes> EncodeAbiParams(const AbiType& tuple, const AbiList& values) {
  if (values.size() != tuple.children.size()) {
    return arrow::Status::Invalid("expected ", tuple.children.size(), " values, got ",
                                  values.size());
  }
  AbiBytes out;
  ARROW_RETURN_NOT_OK(
      EncodeSequence([&](size_t i) -> const AbiType& { return tuple.children[i]; }, values, &out));
  return out;
}

arrow::Result<AbiBytes> EncodeFunctionCall(const AbiSignature& signature, const AbiList& args) {
  if (args.size() != signature.params.size()) {
    return arrow::Status::Invalid(signature.Canonical(), " takes ", signature.params.size(),
                                  " argument(s), got ", args.size());
  }
  auto selector = signature.Selector();
  AbiBytes out(selector.begin(), selector.end());
  ARROW_RETURN_NOT_OK(EncodeSequence(
      [&](size_t i) -> const AbiType& { return signature.params[i].type; }, args, &out));
  return out;
}

}  // namespace sluice::sql
