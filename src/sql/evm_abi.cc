#include "sql/evm_abi.h"

#include <cryptopp/keccak.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
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

// ---- types ------------------------------------------------------------------------

bool AbiType::is_dynamic() const {
  switch (kind) {
    case AbiKind::kBytes:
    case AbiKind::kString:
    case AbiKind::kArray:
      return true;
    case AbiKind::kFixedArray:
    case AbiKind::kTuple:
      return std::any_of(children.begin(), children.end(),
                         [](const AbiType& c) { return c.is_dynamic(); });
    default:
      return false;
  }
}

uint64_t AbiType::head_size() const {
  if (is_dynamic()) return 32;
  if (kind == AbiKind::kFixedArray) return children[0].head_size() * size;
  if (kind == AbiKind::kTuple) {
    uint64_t sum = 0;
    for (const auto& c : children) sum += c.head_size();
    return sum;
  }
  return 32;
}

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
    case AbiKind::kArray:
      return children[0].Canonical() + "[]";
    case AbiKind::kFixedArray:
      return children[0].Canonical() + "[" + std::to_string(size) + "]";
    case AbiKind::kTuple: {
      std::string out = "(";
      for (size_t i = 0; i < children.size(); ++i) {
        if (i) out += ",";
        out += children[i].Canonical();
      }
      return out + ")";
    }
  }
  return "?";
}

std::string AbiSignature::Canonical() const {
  std::string out = name + "(";
  for (size_t i = 0; i < params.size(); ++i) {
    if (i) out += ",";
    out += params[i].type.Canonical();
  }
  return out + ")";
}

Hash32 AbiSignature::Topic0() const { return Keccak256(Canonical()); }

std::array<uint8_t, 4> AbiSignature::Selector() const {
  Hash32 h = Keccak256(Canonical());
  return {h[0], h[1], h[2], h[3]};
}

int AbiSignature::indexed_count() const {
  return static_cast<int>(
      std::count_if(params.begin(), params.end(), [](const AbiParam& p) { return p.indexed; }));
}

AbiType AbiSignature::AsTuple() const {
  AbiType t;
  t.kind = AbiKind::kTuple;
  for (const auto& p : params) {
    t.children.push_back(p.type);
    t.names.push_back(p.name);
  }
  return t;
}

// ---- parsing ----------------------------------------------------------------------

namespace {

constexpr int kMaxDepth = 32;
constexpr uint32_t kMaxFixedArray = 65536;
constexpr uint64_t kMaxHeadSize = uint64_t{1} << 32;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}
bool IsIdentifier(std::string_view s) {
  return !s.empty() && !std::isdigit(static_cast<unsigned char>(s[0])) &&
         std::all_of(s.begin(), s.end(), IsWordChar);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The number after a type's prefix ("256" of "uint256"): no sign, no leading zero.
std::optional<uint32_t> Number(std::string_view digits) {
  if (digits.empty() || digits.size() > 6 || digits[0] == '0') return std::nullopt;
  uint32_t n = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return n;
}

// Recursive descent over one text; every error names the text and what it is.
class Parser {
 public:
  Parser(std::string_view text, std::string_view what) : text_(text), what_(what) {}

  arrow::Status Fail(std::string_view why) const {
    return arrow::Status::Invalid(what_, " '", text_, "': ", why);
  }
  void Space() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }
  bool AtEnd() {
    Space();
    return pos_ == text_.size();
  }
  bool Peek(char c) {
    Space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool Eat(char c) {
    if (!Peek(c)) return false;
    ++pos_;
    return true;
  }
  std::string_view Word() {
    Space();
    size_t start = pos_;
    while (pos_ < text_.size() && IsWordChar(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  // The next word without consuming it.
  std::string_view PeekWord() {
    size_t saved = pos_;
    auto w = Word();
    pos_ = saved;
    return w;
  }

  arrow::Result<AbiType> Type(int depth) {
    if (depth > kMaxDepth) return Fail("types nested more than 32 deep");
    AbiType type;
    if (Peek('(')) {
      ARROW_ASSIGN_OR_RAISE(type, Tuple(depth));
    } else {
      std::string_view word = Word();
      if (word == "tuple" && Peek('(')) {
        ARROW_ASSIGN_OR_RAISE(type, Tuple(depth));
      } else {
        ARROW_ASSIGN_OR_RAISE(type, Elementary(word));
      }
    }
    while (Eat('[')) {
      AbiType array;
      if (Eat(']')) {
        array.kind = AbiKind::kArray;
      } else {
        std::string_view digits = Word();
        auto k = Number(digits);
        if (!k || *k > kMaxFixedArray || !Eat(']')) {
          return Fail("bad array size '" + std::string(digits) + "' (T[] or T[1..65536])");
        }
        array.kind = AbiKind::kFixedArray;
        array.size = *k;
      }
      array.children.push_back(std::move(type));
      if (array.head_size() > kMaxHeadSize) return Fail("a fixed-size array type is too large");
      type = std::move(array);
    }
    return type;
  }

  // '(' T [name], … ')' — the components of a tuple type.
  arrow::Result<AbiType> Tuple(int depth) {
    Eat('(');
    AbiType tuple;
    tuple.kind = AbiKind::kTuple;
    if (Peek(')')) return Fail("the empty tuple () is not supported");
    do {
      ARROW_ASSIGN_OR_RAISE(auto component, Type(depth + 1));
      std::string name;
      std::string_view word = PeekWord();
      if (!word.empty()) {
        if (!IsIdentifier(word)) return Fail("bad component name '" + std::string(word) + "'");
        name = std::string(Word());
      }
      tuple.children.push_back(std::move(component));
      tuple.names.push_back(std::move(name));
    } while (Eat(','));
    if (!Eat(')')) return Fail("expected ',' or ')' in a tuple type");
    for (size_t i = 0; i < tuple.names.size(); ++i) {
      if (tuple.names[i].empty()) tuple.names[i] = "c" + std::to_string(i);
    }
    ARROW_RETURN_NOT_OK(CheckUnique(tuple.names));
    if (tuple.head_size() > kMaxHeadSize) return Fail("a tuple type is too large");
    return tuple;
  }

  arrow::Result<AbiType> Elementary(std::string_view t) {
    AbiType type;
    if (t.empty()) return Fail("expected a type at offset " + std::to_string(pos_));
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
      auto n = Number(t.substr(is_unsigned ? 4 : 3));
      if (!n || *n % 8 != 0 || *n > 256) {
        return Fail("bad integer type '" + std::string(t) +
                    "' (uint8..uint256 / int8..int256, in steps of 8)");
      }
      type.kind = is_unsigned ? AbiKind::kUint : AbiKind::kInt;
      type.bits = static_cast<int>(*n);
    } else if (t.starts_with("bytes")) {
      auto n = Number(t.substr(5));
      if (!n || *n > 32) return Fail("bad type '" + std::string(t) + "' (bytes1..bytes32 or bytes)");
      type.kind = AbiKind::kFixedBytes;
      type.size = *n;
    } else if (t.starts_with("fixed") || t.starts_with("ufixed") || t == "function") {
      return Fail("type '" + std::string(t) + "' is not supported");
    } else {
      return Fail("unknown type '" + std::string(t) + "'");
    }
    return type;
  }

  // Name '(' params ')' of an event (`is_event`) or a function.
  arrow::Result<AbiSignature> Signature(bool is_event) {
    AbiSignature sig;
    std::string_view name = Word();
    if (name == (is_event ? "event" : "function") && !PeekWord().empty()) name = Word();
    if (!IsIdentifier(name)) {
      return Fail(name.empty() ? "expected Name(type [name], …)"
                               : "bad name '" + std::string(name) + "'");
    }
    sig.name = std::string(name);
    if (!Eat('(')) return Fail("expected '(' after the name");
    if (!Eat(')')) {
      do {
        AbiParam param;
        ARROW_ASSIGN_OR_RAISE(param.type, Type(1));
        for (std::string_view word = PeekWord(); !word.empty(); word = PeekWord()) {
          Word();
          if (is_event && word == "indexed" && !param.indexed && param.name.empty()) {
            param.indexed = true;
          } else if (!is_event && (word == "memory" || word == "calldata" || word == "storage") &&
                     param.name.empty()) {
            // a data location: not part of the ABI
          } else if (param.name.empty() && IsIdentifier(word)) {
            param.name = std::string(word);
          } else {
            return Fail("cannot read parameter " + std::to_string(sig.params.size() + 1) +
                        " near '" + std::string(word) + "'");
          }
        }
        sig.params.push_back(std::move(param));
      } while (Eat(','));
      if (!Eat(')')) return Fail("expected ',' or ')' after parameter " +
                                 std::to_string(sig.params.size()));
    }
    if (is_event && PeekWord() == "anonymous") return Fail("anonymous events are not supported");
    Eat(';');
    if (!AtEnd()) return Fail("unexpected text after ')'");
    std::vector<std::string> names;
    for (size_t i = 0; i < sig.params.size(); ++i) {
      if (sig.params[i].name.empty()) sig.params[i].name = "arg" + std::to_string(i);
      names.push_back(sig.params[i].name);
    }
    ARROW_RETURN_NOT_OK(CheckUnique(names));
    if (sig.indexed_count() > 3) return Fail("more than 3 indexed parameters");
    return sig;
  }

  arrow::Status CheckUnique(const std::vector<std::string>& names) const {
    std::set<std::string> seen;
    for (const auto& n : names) {
      if (!seen.insert(Lower(n)).second) return Fail("two parameters are named '" + n + "'");
    }
    return arrow::Status::OK();
  }

 private:
  std::string_view text_;
  std::string_view what_;
  size_t pos_ = 0;
};

}  // namespace

arrow::Result<AbiSignature> ParseEventSignature(std::string_view text) {
  return Parser(text, "event signature").Signature(/*is_event=*/true);
}

arrow::Result<AbiSignature> ParseFunctionSignature(std::string_view text) {
  return Parser(text, "function signature").Signature(/*is_event=*/false);
}

arrow::Result<AbiType> ParseAbiType(std::string_view text) {
  Parser p(text, "type");
  ARROW_ASSIGN_OR_RAISE(auto type, p.Type(0));
  if (!p.AtEnd()) return p.Fail("unexpected text after the type");
  return type;
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
