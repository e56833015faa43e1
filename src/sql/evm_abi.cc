#include "sql/evm_abi.h"

#include <cryptopp/keccak.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "arrow/status.h"

namespace sluice::sql {

Hash32 Keccak256(const void* data, size_t size) {
  CryptoPP::Keccak_256 hash;
  static_assert(CryptoPP::Keccak_256::DIGESTSIZE == 32);
  hash.Update(static_cast<const CryptoPP::byte*>(data), size);
  Hash32 out;
  hash.Final(out.data());
  return out;
}

// ---- signatures ------------------------------------------------------------------

std::string AbiType::Canonical() const {
  switch (kind) {
    case AbiKind::kAddress:
      return "address";
    case AbiKind::kBool:
      return "bool";
    case AbiKind::kUint:
      return "uint" + std::to_string(bits);
    case AbiKind::kInt:
      return "int" + std::to_string(bits);
    case AbiKind::kFixedBytes:
      return "bytes" + std::to_string(size);
    case AbiKind::kBytes:
      return "bytes";
    case AbiKind::kString:
      return "string";
  }
  return "?";
}

std::string EventSignature::Canonical() const {
  std::string out = name + "(";
  for (size_t i = 0; i < params.size(); ++i) {
    if (i) out += ",";
    out += params[i].type.Canonical();
  }
  return out + ")";
}

Hash32 EventSignature::Topic0() const { return Keccak256(Canonical()); }

int EventSignature::indexed_count() const {
  return static_cast<int>(
      std::count_if(params.begin(), params.end(), [](const EventParam& p) { return p.indexed; }));
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  auto head = [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$';
  };
  if (!head(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return head(c) || std::isdigit(static_cast<unsigned char>(c));
  });
}

// The number after a type's prefix ("256" of "uint256"): no sign, no leading zero.
std::optional<int> TypeWidth(std::string_view digits) {
  if (digits.empty() || digits.size() > 3 || digits[0] == '0') return std::nullopt;
  int n = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return n;
}

arrow::Result<AbiType> ParseType(std::string_view sig, std::string_view t) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid("event signature '", sig, "': ", why);
  };
  if (t.find('[') != std::string_view::npos) {
    return bad("array type '" + std::string(t) + "' is not supported");
  }
  AbiType type;
  if (t == "address") {
    type.kind = AbiKind::kAddress;
  } else if (t == "bool") {
    type.kind = AbiKind::kBool;
  } else if (t == "string") {
    type.kind = AbiKind::kString;
  } else if (t == "bytes") {
    type.kind = AbiKind::kBytes;
  } else if (t == "uint" || t == "int") {
    type.kind = t == "uint" ? AbiKind::kUint : AbiKind::kInt;
    type.bits = 256;
  } else if (t.starts_with("uint") || t.starts_with("int")) {
    bool is_unsigned = t.starts_with("uint");
    auto n = TypeWidth(t.substr(is_unsigned ? 4 : 3));
    if (!n || *n % 8 != 0 || *n > 256) {
      return bad("bad integer type '" + std::string(t) + "' (uint8..uint256 / int8..int256, "
                 "in steps of 8)");
    }
    type.kind = is_unsigned ? AbiKind::kUint : AbiKind::kInt;
    type.bits = *n;
  } else if (t.starts_with("bytes")) {
    auto n = TypeWidth(t.substr(5));
    if (!n || *n > 32) return bad("bad type '" + std::string(t) + "' (bytes1..bytes32 or bytes)");
    type.kind = AbiKind::kFixedBytes;
    type.size = *n;
  } else if (t.starts_with("fixed") || t.starts_with("ufixed") || t == "function") {
    return bad("type '" + std::string(t) + "' is not supported");
  } else {
    return bad("unknown type '" + std::string(t) + "'");
  }
  return type;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

arrow::Result<EventSignature> ParseEventSignature(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid("event signature '", text, "': ", why);
  };
  std::string_view s = Trim(text);
  if (!s.empty() && s.back() == ';') s = Trim(s.substr(0, s.size() - 1));
  if (s.starts_with("event") && s.size() > 5 && IsSpace(s[5])) s = Trim(s.substr(5));
  size_t open = s.find('(');
  if (open == std::string_view::npos || s.empty() || s.back() != ')') {
    return bad("expected Name(type [indexed] [name], …)");
  }
  EventSignature sig;
  std::string_view name = Trim(s.substr(0, open));
  if (!IsIdentifier(name)) return bad("bad event name '" + std::string(name) + "'");
  sig.name = std::string(name);
  std::string_view body = s.substr(open + 1, s.size() - open - 2);
  if (body.find_first_of("()") != std::string_view::npos) {
    return bad("tuple parameters are not supported");
  }
  if (!Trim(body).empty()) {
    size_t start = 0;
    while (true) {
      size_t comma = body.find(',', start);
      std::string_view part =
          Trim(body.substr(start, comma == std::string_view::npos ? body.npos : comma - start));
      // Split "type [indexed] [name]" on whitespace.
      std::vector<std::string_view> words;
      size_t i = 0;
      while (i < part.size()) {
        while (i < part.size() && IsSpace(part[i])) ++i;
        size_t j = i;
        while (j < part.size() && !IsSpace(part[j])) ++j;
        if (j > i) words.push_back(part.substr(i, j - i));
        i = j;
      }
      if (words.empty()) return bad("empty parameter");
      EventParam param;
      ARROW_ASSIGN_OR_RAISE(param.type, ParseType(text, words[0]));
      size_t w = 1;
      if (w < words.size() && words[w] == "indexed") {
        param.indexed = true;
        ++w;
      }
      if (w < words.size()) {
        if (!IsIdentifier(words[w])) {
          return bad("bad parameter name '" + std::string(words[w]) + "'");
        }
        param.name = std::string(words[w]);
        ++w;
      }
      if (w != words.size()) {
        return bad("cannot read parameter '" + std::string(part) + "'");
      }
      if (param.name.empty()) param.name = "arg" + std::to_string(sig.params.size());
      sig.params.push_back(std::move(param));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  if (sig.indexed_count() > 3) {
    return bad("more than 3 indexed parameters (anonymous events are not supported)");
  }
  std::set<std::string> names;
  for (const auto& p : sig.params) {
    if (!names.insert(Lower(p.name)).second) {
      return bad("two parameters are named '" + p.name + "'");
    }
  }
  return sig;
}

// ---- decoding --------------------------------------------------------------------

namespace {

constexpr size_t kWord = 32;

bool AllEqual(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != v) return false;
  }
  return true;
}

uint64_t ReadBE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

// The exact decimal of a 256-bit big-endian word; two's complement when `is_signed`.
std::string WordToDecimal(const uint8_t* w, bool is_signed) {
  uint64_t limb[4];  // limb[0] most significant
  for (int i = 0; i < 4; ++i) limb[i] = ReadBE64(w + 8 * i);
  bool negative = is_signed && (w[0] & 0x80);
  if (negative) {  // magnitude = ~x + 1
    unsigned carry = 1;
    for (int i = 3; i >= 0; --i) {
      limb[i] = ~limb[i] + carry;
      carry = carry && limb[i] == 0;
    }
  }
  // Repeated division by 10^19 (the largest power of ten in a uint64).
  constexpr uint64_t kChunk = 10000000000000000000ull;
  std::vector<uint64_t> chunks;  // least significant first
  auto is_zero = [&] { return (limb[0] | limb[1] | limb[2] | limb[3]) == 0; };
  do {
    unsigned __int128 rem = 0;
    for (int i = 0; i < 4; ++i) {
      unsigned __int128 cur = rem << 64 | limb[i];
      limb[i] = static_cast<uint64_t>(cur / kChunk);
      rem = cur % kChunk;
    }
    chunks.push_back(static_cast<uint64_t>(rem));
  } while (!is_zero());
  std::string out = negative ? "-" : "";
  out += std::to_string(chunks.back());
  for (size_t i = chunks.size() - 1; i-- > 0;) {
    std::string part = std::to_string(chunks[i]);
    out.append(19 - part.size(), '0');
    out += part;
  }
  return out;
}

// A static value from one 32-byte word; false when not strictly encoded.
bool DecodeStatic(const AbiType& t, const uint8_t* w, AbiValue* out) {
  switch (t.kind) {
    case AbiKind::kAddress:
      if (!AllEqual(w, 12, 0)) return false;
      *out = AbiBytes(w + 12, w + kWord);
      return true;
    case AbiKind::kBool:
      if (!AllEqual(w, 31, 0) || w[31] > 1) return false;
      *out = w[31] == 1;
      return true;
    case AbiKind::kUint: {
      size_t pad = kWord - static_cast<size_t>(t.bits) / 8;
      if (!AllEqual(w, pad, 0)) return false;
      if (t.bits <= 64) {
        *out = ReadBE64(w + 24);
      } else {
        *out = AbiDecimal{WordToDecimal(w, false)};
      }
      return true;
    }
    case AbiKind::kInt: {
      size_t pad = kWord - static_cast<size_t>(t.bits) / 8;
      uint8_t sign = (w[pad] & 0x80) ? 0xff : 0x00;
      if (!AllEqual(w, pad, sign)) return false;
      if (t.bits <= 64) {
        *out = static_cast<int64_t>(ReadBE64(w + 24));  // sign-extended through byte 24
      } else {
        *out = AbiDecimal{WordToDecimal(w, true)};
      }
      return true;
    }
    case AbiKind::kFixedBytes: {
      size_t n = static_cast<size_t>(t.size);
      if (!AllEqual(w + n, kWord - n, 0)) return false;
      *out = AbiBytes(w, w + n);
      return true;
    }
    case AbiKind::kBytes:
    case AbiKind::kString:
      return false;  // not static
  }
  return false;
}

// A word that holds an offset or a length: must fit in 64 bits.
bool ReadSize(const uint8_t* w, uint64_t* out) {
  if (!AllEqual(w, 24, 0)) return false;
  *out = ReadBE64(w + 24);
  return true;
}

// A dynamic value whose head slot is `slot` (an offset into `data`).
bool DecodeDynamic(const AbiType& t, ByteSpan data, const uint8_t* slot, AbiValue* out) {
  uint64_t offset = 0, length = 0;
  if (!ReadSize(slot, &offset)) return false;
  if (offset > data.size() || data.size() - offset < kWord) return false;
  if (!ReadSize(data.data() + offset, &length)) return false;
  uint64_t available = data.size() - offset - kWord;
  if (length > available) return false;
  ByteSpan value = data.subspan(offset + kWord, length);
  if (t.kind == AbiKind::kBytes) {
    *out = AbiBytes(value.begin(), value.end());
  } else if (IsValidUtf8(value)) {
    *out = std::string(reinterpret_cast<const char*>(value.data()), value.size());
  } else {
    *out = std::monostate{};
  }
  return true;
}

}  // namespace

std::optional<std::vector<AbiValue>> DecodeEventLog(
    const EventSignature& signature, const std::array<std::optional<ByteSpan>, 3>& topics,
    ByteSpan data) {
  auto present = [&](size_t i) { return topics[i].has_value() && !topics[i]->empty(); };
  size_t indexed = static_cast<size_t>(signature.indexed_count());
  for (size_t i = 0; i < topics.size(); ++i) {
    if (i < indexed) {
      if (!present(i) || topics[i]->size() != kWord) return std::nullopt;
    } else if (present(i)) {
      return std::nullopt;  // a topic the event does not have
    }
  }
  size_t head_words = signature.params.size() - indexed;
  if (data.size() / kWord < head_words) return std::nullopt;

  std::vector<AbiValue> values(signature.params.size());
  size_t topic = 0, slot = 0;
  for (size_t i = 0; i < signature.params.size(); ++i) {
    const EventParam& p = signature.params[i];
    if (p.indexed) {
      const uint8_t* w = topics[topic++]->data();
      if (p.type.is_dynamic()) {
        values[i] = AbiBytes(w, w + kWord);  // Keccak-256 of the value
      } else if (!DecodeStatic(p.type, w, &values[i])) {
        return std::nullopt;
      }
    } else {
      const uint8_t* w = data.data() + kWord * slot++;
      bool ok = p.type.is_dynamic() ? DecodeDynamic(p.type, data, w, &values[i])
                                    : DecodeStatic(p.type, w, &values[i]);
      if (!ok) return std::nullopt;
    }
  }
  return values;
}

bool IsValidUtf8(ByteSpan s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

}  // namespace sluice::sql
