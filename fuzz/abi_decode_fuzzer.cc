// Fuzzes the ABI decoder (sql/evm_abi_codec.h) and the type and signature parsers
// (sql/evm_abi.h): the log data, calldata and return data a query decodes come from
// the chain and from users, so any bytes must be safe.
//
// Input: one mode byte, a type or signature text, a NUL byte, then the data.
//   mode % 4 == 0: evm_decode_type   (ParseAbiType + DecodeAbiValue)
//   mode % 4 == 1: evm_decode_params (ParseFunctionSignature + DecodeFunctionInput)
//   mode % 4 == 2: evm_decode_log    (ParseEventSignature + DecodeEventLog; the first
//                  three 32-byte words of the data, as far as present, are topic1..3)
//   mode % 4 == 3: shift_units and integer parsing of the text
// A value that decodes must encode again, and decoding that encoding must give the
// same value (the encoder writes the canonical form; strings that are not UTF-8
// cannot be re-encoded and are skipped).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "sql/evm_abi.h"
#include "sql/evm_abi_codec.h"
#include "sql/evm_integers.h"

namespace {

using namespace sluice::sql;

bool HasNull(const AbiValue& v) {
  if (std::holds_alternative<std::monostate>(v.v)) return true;
  if (const auto* list = std::get_if<AbiList>(&v.v)) {
    for (const auto& e : *list) {
      if (HasNull(e)) return true;
    }
  }
  return false;
}

bool Same(const AbiValue& a, const AbiValue& b) {
  if (a.v.index() != b.v.index()) return false;
  if (const auto* la = std::get_if<AbiList>(&a.v)) {
    const auto& lb = std::get<AbiList>(b.v);
    if (la->size() != lb.size()) return false;
    for (size_t i = 0; i < la->size(); ++i) {
      if (!Same((*la)[i], lb[i])) return false;
    }
    return true;
  }
  return std::visit(
      [&](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, AbiList>) {
          return false;
        } else {
          return x == std::get<T>(b.v);
        }
      },
      a.v);
}

void RoundTrip(const AbiType& t, const AbiValue& v) {
  if (HasNull(v)) return;
  auto bytes = EncodeAbiValue(t, v);
  if (!bytes.ok()) std::abort();  // a decoded value always fits its type
  auto again = DecodeAbiValue(t, *bytes);
  if (!again || !Same(*again, v)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0] % 4;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nul = rest.find('\0');
  std::string_view text = rest.substr(0, nul);
  std::string_view payload = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  ByteSpan bytes(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());

  switch (mode) {
    case 0: {
      auto t = ParseAbiType(text);
      if (!t.ok()) return 0;
      if (t->Canonical().empty()) std::abort();
      if (auto v = DecodeAbiValue(*t, bytes)) RoundTrip(*t, *v);
      break;
    }
    case 1: {
      auto sig = ParseFunctionSignature(text);
      if (!sig.ok()) return 0;
      if (auto values = DecodeFunctionInput(*sig, bytes)) {
        if (values->size() != sig->params.size()) std::abort();
        RoundTrip(sig->AsTuple(), AbiValue{std::move(*values)});
      }
      break;
    }
    case 2: {
      auto sig = ParseEventSignature(text);
      if (!sig.ok()) return 0;
      std::array<std::optional<ByteSpan>, 3> topics;
      size_t used = 0;
      for (size_t i = 0; i < 3 && bytes.size() - used >= 32; ++i, used += 32) {
        topics[i] = bytes.subspan(used, 32);
      }
      auto values = DecodeEventLog(*sig, topics, bytes.subspan(used));
      if (values && values->size() != sig->params.size()) std::abort();
      break;
    }
    case 3: {
      auto shifted = ShiftDecimal(text, static_cast<int8_t>(payload.empty() ? 0 : payload[0]));
      if (shifted.ok() && shifted->empty()) std::abort();
      if (auto n = ParseInteger(text); n.ok()) {
        // Decimal text of the magnitude parses back to it.
        auto again = ParseInteger(WordToDecimal(n->magnitude, false));
        if (!again.ok() || again->magnitude != n->magnitude) std::abort();
      }
      break;
    }
  }
  return 0;
}
