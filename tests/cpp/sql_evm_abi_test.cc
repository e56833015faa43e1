// The ABI codec (sql/evm_abi.h, sql/evm_abi_codec.h, sql/evm_integers.h) against
// vectors from independent sources: the worked examples of the Solidity ABI
// specification (docs.soliditylang.org/en/latest/abi-spec.html: baz, bar, sam, f,
// g — selectors and encodings as printed there), published Keccak-256 values,
// powers of two in decimal, and hand-encoded words. None of the expected values is
// computed by the code under test.
#include <string>
#include <vector>

#include "common/hex.h"
#include "gtest/gtest.h"
#include "sql/evm_abi.h"
#include "sql/evm_abi_codec.h"
#include "sql/evm_call.h"
#include "sql/evm_integers.h"

namespace sluice::sql {
namespace {

std::string HexOf(const uint8_t* p, size_t n) { return common::ToHex(p, n).substr(2); }
std::string HexOf(const Hash32& h) { return HexOf(h.data(), h.size()); }
std::string HexOf(const AbiBytes& b) { return HexOf(b.data(), b.size()); }
AbiBytes Bytes(const std::string& hex) { return *common::FromHex(hex); }

// One 32-byte word, left-padded (integers, offsets) / right-padded (bytes, strings).
std::string W(const std::string& hex) { return std::string(64 - hex.size(), '0') + hex; }
std::string R(const std::string& hex) { return hex + std::string((64 - hex.size() % 64) % 64, '0'); }
std::string Ascii(std::string_view s) { return common::ToHex(s).substr(2); }

// Values.
AbiValue U(uint64_t n) { return AbiValue{WordFromUint64(n)}; }
AbiValue I(int64_t n) { return AbiValue{WordFromInt64(n)}; }
AbiValue Bool(bool b) { return AbiValue{b}; }
AbiValue Blob(std::string_view s) { return AbiValue{AbiBytes(s.begin(), s.end())}; }
AbiValue Str(std::string s) { return AbiValue{std::move(s)}; }
AbiValue List(AbiList l) { return AbiValue{std::move(l)}; }

// Equality of values (AbiValue has no operator==: compare through a printout).
std::string Show(const AbiValue& v) {
  switch (v.v.index()) {
    case 0:
      return "null";
    case 1:
      return std::get<bool>(v.v) ? "true" : "false";
    case 2:
      return "int:" + HexOf(std::get<Word256>(v.v).data(), 32);
    case 3:
      return "bytes:" + HexOf(std::get<AbiBytes>(v.v));
    case 4:
      return "'" + std::get<std::string>(v.v) + "'";
    default: {
      std::string out = "[";
      for (const auto& e : std::get<AbiList>(v.v)) out += Show(e) + ",";
      return out + "]";
    }
  }
}
std::string Show(const AbiList& l) { return Show(List(l)); }

struct SpecCall {
  const char* signature;
  const char* selector;  // as printed in the specification
  AbiList args;
  std::string calldata;  // hex, without 0x
};

std::vector<SpecCall> SpecExamples() {
  return {
      {"baz(uint32 x, bool y)", "cdcd77c0", {U(69), Bool(true)}, "cdcd77c0" + W("45") + W("1")},
      {"bar(bytes3[2] xy)", "fce353f6", {List({Blob("abc"), Blob("def")})},
       "fce353f6" + R(Ascii("abc")) + R(Ascii("def"))},
      {"sam(bytes name, bool z, uint[] data)", "a5643bf2",
       {Blob("dave"), Bool(true), List({U(1), U(2), U(3)})},
       "a5643bf2" + W("60") + W("1") + W("a0") + W("4") + R(Ascii("dave")) + W("3") + W("1") +
           W("2") + W("3")},
      {"f(uint a, uint32[] b, bytes10 c, bytes d)", "8be65246",
       {U(0x123), List({U(0x456), U(0x789)}), Blob("1234567890"), Blob("Hello, world!")},
       "8be65246" + W("123") + W("80") + R(Ascii("1234567890")) + W("e0") + W("2") + W("456") +
           W("789") + W("d") + R(Ascii("Hello, world!"))},
      {"g(uint[][] a, string[] b)", "2289b18c",
       {List({List({U(1), U(2)}), List({U(3)})}), List({Str("one"), Str("two"), Str("three")})},
       "2289b18c" + W("40") + W("140") + W("2") + W("40") + W("a0") + W("2") + W("1") + W("2") +
           W("1") + W("3") + W("3") + W("60") + W("a0") + W("e0") + W("3") + R(Ascii("one")) +
           W("3") + R(Ascii("two")) + W("5") + R(Ascii("three"))},
  };
}

// ---- Keccak-256, signatures, types ------------------------------------------------------

TEST(EvmAbi, KeccakKnownVectors) {
  EXPECT_EQ(HexOf(Keccak256("")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  EXPECT_EQ(HexOf(Keccak256("abc")),
            "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
  EXPECT_EQ(HexOf(Keccak256("Transfer(address,address,uint256)")),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  // Not FIPS-202 SHA3-256, whose hash of "" is a7ffc6f8…f8434a.
  EXPECT_NE(HexOf(Keccak256("")).substr(0, 8), "a7ffc6f8");
}

TEST(EvmAbi, SelectorsOfTheSpecExamples) {
  for (const auto& ex : SpecExamples()) {
    auto sig = ParseFunctionSignature(ex.signature);
    ASSERT_TRUE(sig.ok()) << ex.signature << ": " << sig.status().ToString();
    auto sel = sig->Selector();
    EXPECT_EQ(HexOf(sel.data(), 4), ex.selector) << sig->Canonical();
  }
  // ERC-20's, as every block explorer lists them.
  EXPECT_EQ(HexOf(ParseFunctionSignature("transfer(address to, uint256 amount)")->Selector().data(), 4),
            "a9059cbb");
  EXPECT_EQ(HexOf(ParseFunctionSignature("name()")->Selector().data(), 4), "06fdde03");
  EXPECT_EQ(HexOf(ParseFunctionSignature("balanceOf(address)")->Selector().data(), 4), "70a08231");
  EXPECT_EQ(HexOf(ParseFunctionSignature("getReserves()")->Selector().data(), 4), "0902f1ac");
}

TEST(EvmAbi, ParseEventSignatures) {
  auto full = ParseEventSignature("Transfer(address indexed from, address indexed to, uint256 value)");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->name, "Transfer");
  ASSERT_EQ(full->params.size(), 3u);
  EXPECT_EQ(full->params[0].name, "from");
  EXPECT_TRUE(full->params[0].indexed);
  EXPECT_FALSE(full->params[2].indexed);
  EXPECT_EQ(full->indexed_count(), 2);
  EXPECT_EQ(full->Canonical(), "Transfer(address,address,uint256)");
  EXPECT_EQ(HexOf(full->Topic0()),
            "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

  auto bare = ParseEventSignature("  event Approval( address indexed , address\tindexed,uint ) ; ");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(bare->Canonical(), "Approval(address,address,uint256)");
  EXPECT_EQ(bare->params[0].name, "arg0");
  EXPECT_EQ(HexOf(bare->Topic0()),
            "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");
  // Uniswap V3's Swap, topic as published (evm_topic's documentation in the reference).
  auto swap = ParseEventSignature(
      "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, "
      "uint160 sqrtPriceX96, uint128 liquidity, int24 tick)");
  ASSERT_TRUE(swap.ok());
  EXPECT_EQ(HexOf(swap->Topic0()),
            "c42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67");

  auto nested = ParseEventSignature("Posted(string indexed topic, (uint256 id, string[] tags)[2] posts)");
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();
  EXPECT_EQ(nested->Canonical(), "Posted(string,(uint256,string[])[2])");
  EXPECT_EQ(nested->params[1].type.children[0].names, (std::vector<std::string>{"id", "tags"}));

  for (const char* bad :
       {"", "Transfer", "Transfer(address,address,uint256", "(uint256)", "1x(uint256)",
        "E(uint7)", "E(uint264)", "E(uint008)", "E(bytes0)", "E(bytes33)", "E(uint256[0])",
        "E(())", "E(fixed128x18)", "E(function)", "E(foo)", "E(uint256,)",
        "E(uint256 a b c)", "E(uint256 a, uint256 A)", "E(uint256 arg1, uint256)",
        "E(uint8 indexed, uint8 indexed, uint8 indexed, uint8 indexed)", "E(uint256) anonymous",
        "E(uint256) x", "E(uint256[70000])"}) {
    auto r = ParseEventSignature(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_NE(r.status().message().find("event signature"), std::string::npos);
  }
  EXPECT_FALSE(ParseFunctionSignature("f(uint256 indexed x)").ok());
}

TEST(EvmAbi, ParseTypesAndFunctions) {
  auto t = ParseAbiType("(int256, int8, string[])");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->Canonical(), "(int256,int8,string[])");
  EXPECT_EQ(t->names, (std::vector<std::string>{"c0", "c1", "c2"}));
  EXPECT_TRUE(t->is_dynamic());
  auto reserves = ParseAbiType("tuple(uint112 reserve0, uint112 reserve1, uint32 ts)");
  ASSERT_TRUE(reserves.ok());
  EXPECT_FALSE(reserves->is_dynamic());
  EXPECT_EQ(reserves->head_size(), 96u);
  EXPECT_EQ(reserves->names[0], "reserve0");
  EXPECT_EQ(ParseAbiType("uint")->Canonical(), "uint256");
  EXPECT_EQ(ParseAbiType("bytes3[2][]")->Canonical(), "bytes3[2][]");
  EXPECT_EQ(ParseAbiType("bytes3[2]")->head_size(), 64u);
  std::string deep = "uint8";
  for (int i = 0; i < 40; ++i) deep = "(" + deep + ")";
  EXPECT_FALSE(ParseAbiType(deep).ok());
  EXPECT_FALSE(ParseAbiType("uint256 extra").ok());
  EXPECT_FALSE(ParseAbiType("(uint8 a, bool A)").ok());

  auto fn = ParseFunctionSignature("function swap(uint256 amount0Out, uint256 amount1Out, "
                                   "address to, bytes calldata data)");
  ASSERT_TRUE(fn.ok()) << fn.status().ToString();
  EXPECT_EQ(fn->Canonical(), "swap(uint256,uint256,address,bytes)");
  EXPECT_EQ(fn->params[3].name, "data");
}

// ---- encoding and decoding -------------------------------------------------------------

TEST(EvmAbi, SpecExamplesEncode) {
  for (const auto& ex : SpecExamples()) {
    auto sig = ParseFunctionSignature(ex.signature);
    ASSERT_TRUE(sig.ok());
    auto calldata = EncodeFunctionCall(*sig, ex.args);
    ASSERT_TRUE(calldata.ok()) << ex.signature << ": " << calldata.status().ToString();
    EXPECT_EQ(HexOf(*calldata), ex.calldata) << ex.signature;
  }
}

TEST(EvmAbi, SpecExamplesDecode) {
  for (const auto& ex : SpecExamples()) {
    auto sig = ParseFunctionSignature(ex.signature);
    ASSERT_TRUE(sig.ok());
    AbiBytes data = Bytes(ex.calldata);
    auto values = DecodeFunctionInput(*sig, data);
    ASSERT_TRUE(values.has_value()) << ex.signature;
    EXPECT_EQ(Show(*values), Show(ex.args)) << ex.signature;
    // Another selector, or data cut short, does not decode.
    AbiBytes other = data;
    other[0] ^= 1;
    EXPECT_FALSE(DecodeFunctionInput(*sig, other).has_value());
    AbiBytes cut(data.begin(), data.end() - 32);  // the last word missing
    EXPECT_FALSE(DecodeFunctionInput(*sig, cut).has_value()) << ex.signature;
  }
}

TEST(EvmAbi, SingleValuesAsAbiEncodeWritesThem) {
  // abi.encode("hello"): offset 0x20, length 5, the bytes.
  AbiType string_type = *ParseAbiType("string");
  std::string hello = W("20") + W("5") + R(Ascii("hello"));
  auto v = DecodeAbiValue(string_type, Bytes(hello));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(Show(*v), "'hello'");
  EXPECT_EQ(HexOf(*EncodeAbiValue(string_type, Str("hello"))), hello);
  // A static tuple is its words (getReserves() of a Uniswap V2 pair).
  AbiType reserves = *ParseAbiType("(uint112,uint112,uint32)");
  std::string words = W("3e8") + W("7d0") + W("65f0a1b2");
  auto r = DecodeAbiValue(reserves, Bytes(words));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(Show(*r), Show(List({U(1000), U(2000), U(0x65f0a1b2)})));
  // A dynamic tuple as one value: an offset to it, then its encoding.
  AbiType triple = *ParseAbiType("(int256, int8, string[])");
  std::string enc = W("20") + std::string(64, 'f') + std::string(62, 'f') + "fe" + W("60") +
                    W("1") + W("20") + W("4") + R(Ascii("str1"));
  AbiValue want = List({I(-1), I(-2), List({Str("str1")})});
  auto t = DecodeAbiValue(triple, Bytes(enc));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(Show(*t), Show(want));
  EXPECT_EQ(HexOf(*EncodeAbiValue(triple, want)), enc);
}

TEST(EvmAbi, EncodeRefusesValuesThatDoNotFit) {
  AbiType u8 = *ParseAbiType("uint8"), i8 = *ParseAbiType("int8");
  EXPECT_TRUE(EncodeAbiValue(u8, U(255)).ok());
  EXPECT_FALSE(EncodeAbiValue(u8, U(256)).ok());
  EXPECT_FALSE(EncodeAbiValue(u8, I(-1)).ok());
  EXPECT_TRUE(EncodeAbiValue(i8, I(-128)).ok());
  EXPECT_FALSE(EncodeAbiValue(i8, I(-129)).ok());
  EXPECT_FALSE(EncodeAbiValue(i8, I(128)).ok());
  EXPECT_FALSE(EncodeAbiValue(*ParseAbiType("address"), Blob("short")).ok());
  EXPECT_FALSE(EncodeAbiValue(*ParseAbiType("bytes3[2]"), List({Blob("abc")})).ok());
  EXPECT_FALSE(EncodeAbiValue(*ParseAbiType("(uint8,bool)"), List({U(1)})).ok());
  EXPECT_FALSE(EncodeAbiValue(*ParseAbiType("string"), U(1)).ok());
  // An address is left-padded like uint160, bytesN right-padded.
  AbiBytes addr(20, 0xab);
  std::string abab;
  for (int i = 0; i < 20; ++i) abab += "ab";
  EXPECT_EQ(HexOf(*EncodeAbiValue(*ParseAbiType("address"), AbiValue{addr})),
            std::string(24, '0') + abab);
  EXPECT_EQ(HexOf(*EncodeAbiValue(*ParseAbiType("bytes2"), Blob("\xab\xcd"))), R("abcd"));
}

std::optional<AbiList> DecodeLog(const std::string& signature, std::vector<std::string> topics,
                                 const std::string& data) {
  auto sig = ParseEventSignature(signature);
  EXPECT_TRUE(sig.ok()) << sig.status().ToString();
  std::vector<AbiBytes> tb;
  for (auto& t : topics) tb.push_back(Bytes(t));
  std::array<std::optional<ByteSpan>, 3> spans;
  for (size_t i = 0; i < tb.size(); ++i) spans[i] = ByteSpan(tb[i]);
  AbiBytes d = Bytes(data);
  return DecodeEventLog(*sig, spans, ByteSpan(d));
}

TEST(EvmAbi, EventLogs) {
  const std::string from = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";
  const std::string to = "70997970c51812dc3a010c7d01b50e0d17dc79c8";
  const std::string erc20 = "Transfer(address indexed from, address indexed to, uint256 value)";
  // 10^24 = 0xd3c21bcecceda1000000.
  auto v = DecodeLog(erc20, {W(from), W(to)}, W("d3c21bcecceda1000000"));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(Show((*v)[0]), "bytes:" + from);
  EXPECT_EQ(WordToDecimal(std::get<Word256>((*v)[2].v), false), "1000000000000000000000000");
  // Indexed string / array / tuple: the topic (their hash) as 32 bytes; an indexed
  // parameter between data parameters.
  auto mixed = DecodeLog("E(uint8 a, string indexed s, uint256[] indexed xs, bool b)",
                         {W("1234"), W("5678")}, W("7") + W("1"));
  ASSERT_TRUE(mixed.has_value());
  EXPECT_EQ(Show(*mixed), Show(AbiList{U(7), AbiValue{Bytes(W("1234"))},
                                       AbiValue{Bytes(W("5678"))}, Bool(true)}));
  // Arrays and tuples in the data.
  auto data = DecodeLog("E((uint8 x, string y) t, int16[] zs)", {},
                        W("40") + W("c0") + W("5") + W("40") + W("2") + R(Ascii("hi")) + W("2") +
                            std::string(60, 'f') + "fffe" + W("3"));
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(Show(*data), Show(AbiList{List({U(5), Str("hi")}), List({I(-2), I(3)})}));
  EXPECT_TRUE(DecodeLog("Paused()", {}, "").has_value());
}

TEST(EvmAbi, MalformedLogsDoNotDecode) {
  const std::string erc20 = "Transfer(address indexed from, address indexed to, uint256 value)";
  std::string t1 = W("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"), t2 = W("1");
  EXPECT_TRUE(DecodeLog(erc20, {t1, t2}, W("5")).has_value());  // control
  EXPECT_FALSE(DecodeLog(erc20, {t1, t2}, W("5").substr(0, 62)).has_value());  // 31 bytes
  EXPECT_FALSE(DecodeLog(erc20, {t1, t2}, "").has_value());
  EXPECT_FALSE(DecodeLog(erc20, {t1}, W("5")).has_value());                    // no topic2
  EXPECT_FALSE(DecodeLog(erc20, {t1, t2.substr(0, 62)}, W("5")).has_value());  // short topic
  EXPECT_FALSE(DecodeLog(erc20, {t1, t2, W("1")}, W("5")).has_value());        // extra topic
  EXPECT_FALSE(DecodeLog(erc20, {"01" + t1.substr(2), t2}, W("5")).has_value());  // dirty address
  EXPECT_FALSE(DecodeLog("E(bool b)", {}, W("2")).has_value());
  EXPECT_FALSE(DecodeLog("E(uint8 x)", {}, W("100")).has_value());
  EXPECT_FALSE(DecodeLog("E(int8 x)", {}, W("80")).has_value());  // not sign-extended
  EXPECT_FALSE(DecodeLog("E(bytes2 x)", {}, W("1")).has_value());
  EXPECT_FALSE(DecodeLog("E(bytes b)", {}, W("20")).has_value());               // no length
  EXPECT_FALSE(DecodeLog("E(bytes b)", {}, W("20") + W("21") + R("00")).has_value());
  EXPECT_FALSE(DecodeLog("E(bytes b)", {}, W("40")).has_value());               // offset past end
  EXPECT_FALSE(DecodeLog("E(bytes b)", {}, std::string(64, 'f')).has_value());  // huge offset
  EXPECT_FALSE(DecodeLog("E(bytes b)", {}, W("20") + W("10000000000000000")).has_value());
  EXPECT_FALSE(DecodeLog("E(uint8[] xs)", {}, W("20") + W("ffffffff")).has_value());
  EXPECT_FALSE(DecodeLog("E(uint8[3] xs)", {}, W("1") + W("2")).has_value());
  // A length that reaches exactly the end is fine (no padding required).
  auto exact = DecodeLog("E(bytes b)", {}, W("20") + W("2") + "abcd");
  ASSERT_TRUE(exact.has_value());
  EXPECT_EQ(Show((*exact)[0]), "bytes:abcd");
  // Invalid UTF-8 in a string: that value is null, the log still decodes.
  auto bad = DecodeLog("E(string s, uint8 n)", {}, W("40") + W("7") + W("2") + R("c328"));
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(Show(*bad), Show(AbiList{AbiValue{}, U(7)}));
}

TEST(EvmAbi, SharedTailsCannotInflateTheResult) {
  // uint256[][]: 64 inner arrays that all point to one array of 64 words. ~4 KiB of
  // data would decode to 4,096 words; no encoder writes this.
  std::string data = W("20") + W("40");
  for (int i = 0; i < 64; ++i) data += W("800");  // 64 * 32 = 0x800: just past the heads
  data += W("40");
  for (int i = 0; i < 64; ++i) data += W("1");
  EXPECT_FALSE(DecodeAbiValue(*ParseAbiType("uint256[][]"), Bytes(data)).has_value());
  // The same shape without sharing decodes.
  std::string fair = W("20") + W("2") + W("40") + W("a0") + W("2") + W("1") + W("2") + W("1") + W("3");
  auto ok = DecodeAbiValue(*ParseAbiType("uint256[][]"), Bytes(fair));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(Show(*ok), Show(List({List({U(1), U(2)}), List({U(3)})})));
}

// ---- integers ---------------------------------------------------------------------------

TEST(EvmIntegers, DecimalText) {
  Word256 max;
  max.fill(0xff);
  EXPECT_EQ(WordToDecimal(max, false),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935");
  EXPECT_EQ(WordToDecimal(max, true), "-1");
  Word256 min{};
  min[0] = 0x80;
  EXPECT_EQ(WordToDecimal(min, true),
            "-57896044618658097711785492504343953926634992332820282019728792003956564819968");
  EXPECT_EQ(WordToDecimal(WordFromUint128(~0ull, ~0ull), false),
            "340282366920938463463374607431768211455");
  EXPECT_EQ(WordToDecimal(WordFromInt128(0, INT64_MIN), true),
            "-170141183460469231731687303715884105728");
  EXPECT_EQ(WordToDecimal(WordFromUint64(0), false), "0");

  auto n = ParseInteger("115792089237316195423570985008687907853269984665640564039457584007913129639935");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->magnitude, max);
  EXPECT_FALSE(ParseInteger("115792089237316195423570985008687907853269984665640564039457584007913129639936").ok());
  EXPECT_EQ(ParseInteger("0xff")->magnitude, WordFromUint64(255));
  EXPECT_EQ(ParseInteger("-0")->negative, false);
  for (const char* bad : {"", "-", "1.5", "12a", "0x", "0xg1", " 1", "+-1"}) {
    EXPECT_FALSE(ParseInteger(bad).ok()) << bad;
  }
  EXPECT_TRUE(FitInteger(*ParseInteger("255"), false, 8).ok());
  EXPECT_FALSE(FitInteger(*ParseInteger("256"), false, 8).ok());
  EXPECT_FALSE(FitInteger(*ParseInteger("-1"), false, 256).ok());
  EXPECT_TRUE(FitInteger(*ParseInteger("-128"), true, 8).ok());
  EXPECT_FALSE(FitInteger(*ParseInteger("128"), true, 8).ok());
  EXPECT_EQ(*FitInteger(*ParseInteger(
                            "-57896044618658097711785492504343953926634992332820282019728792003956564819968"),
                        true, 256),
            min);
  EXPECT_FALSE(FitInteger(*ParseInteger(
                              "57896044618658097711785492504343953926634992332820282019728792003956564819968"),
                          true, 256)
                   .ok());
}

TEST(EvmIntegers, ShiftUnits) {
  // The reference's documented examples.
  EXPECT_EQ(*ShiftDecimal("1.5", 18), "1500000000000000000");
  EXPECT_EQ(*ShiftDecimal("1500000000000000000", -18), "1.5");
  EXPECT_EQ(*ShiftDecimal("100", 6), "100000000");
  EXPECT_EQ(*ShiftDecimal("100000000", -6), "100");
  EXPECT_EQ(*ShiftDecimal("1", -6), "0.000001");
  EXPECT_EQ(*ShiftDecimal("-1.50", 1), "-15");
  EXPECT_EQ(*ShiftDecimal("-0.0", 3), "0");
  EXPECT_EQ(*ShiftDecimal("007.2500", 0), "7.25");
  EXPECT_EQ(*ShiftDecimal(".5", 1), "5");
  EXPECT_EQ(*ShiftDecimal("1.5e+18", -18), "1.5");
  EXPECT_EQ(*ShiftDecimal("25e-1", 0), "2.5");
  EXPECT_EQ(*ShiftDecimal("115792089237316195423570985008687907853269984665640564039457584007913129639935", -18),
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935");
  for (const char* bad : {"", ".", "-", "1.2.3", "abc", "1e", "1e+", "0x10", "1 "}) {
    EXPECT_FALSE(ShiftDecimal(bad, 1).ok()) << bad;
  }
  EXPECT_FALSE(ShiftDecimal("1", 100000).ok());
  EXPECT_FALSE(ShiftDecimal("1e999999", 0).ok());
}

TEST(EvmCall, RevertReasons) {
  // Error(string) as solc encodes `revert("not owner")`.
  auto err = Bytes("08c379a0" + W("20") + W("9") + R(Ascii("not owner")));
  EXPECT_EQ(DecodeRevertReason(err), "execution reverted: not owner");
  EXPECT_EQ(DecodeRevertReason(Bytes("4e487b71" + W("11"))),
            "execution reverted: panic 0x11 (arithmetic underflow or overflow)");
  EXPECT_EQ(DecodeRevertReason(Bytes("4e487b71" + W("12"))),
            "execution reverted: panic 0x12 (division or modulo by zero)");
  EXPECT_EQ(DecodeRevertReason(Bytes("deadbeef")), std::nullopt);  // a custom error
  EXPECT_EQ(DecodeRevertReason(Bytes("08c379a0" + W("20"))), std::nullopt);  // cut short
  EXPECT_EQ(*ParseBlockTag("latest"), "latest");
  EXPECT_EQ(*ParseBlockTag("19000000"), "0x121eac0");
  EXPECT_EQ(*ParseBlockTag("0x1a"), "0x1a");
  EXPECT_FALSE(ParseBlockTag("-1").ok());
  EXPECT_FALSE(ParseBlockTag("newest").ok());
}

}  // namespace
}  // namespace sluice::sql
