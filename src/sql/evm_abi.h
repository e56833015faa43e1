// Ethereum ABI for event logs, without the engine: Keccak-256, event signatures
// and the decoding of a log's topics and data into typed values.
//
// Sources: the Solidity ABI specification ("Contract ABI Specification":
// https://docs.soliditylang.org/en/latest/abi-spec.html — events, the head/tail
// encoding, strict encoding of static types) and Ethereum's Keccak-256 (the
// original Keccak padding, not FIPS-202 SHA3-256), computed by Crypto++
// (CryptoPP::Keccak_256).
//
// The SQL functions built on this (evm_topic, evm_decode_log) are in
// sql/evm_functions.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "arrow/result.h"

namespace sluice::sql {

/// \brief A 32-byte word: a Keccak-256 digest, an event topic, an ABI slot.
using Hash32 = std::array<uint8_t, 32>;

/// \brief A read-only view of bytes (a BLOB cell, a log's data, one topic).
using ByteSpan = std::span<const uint8_t>;

/// \brief Keccak-256 of `size` bytes at `data`: Ethereum's hash (of the empty
/// input: c5d24601…5d85a470), not SHA3-256. Thread-safe.
Hash32 Keccak256(const void* data, size_t size);
inline Hash32 Keccak256(std::string_view bytes) { return Keccak256(bytes.data(), bytes.size()); }

/// \brief The ABI types an event parameter may have here. Arrays, tuples,
/// fixed-point and function types are not supported.
enum class AbiKind : uint8_t {
  kAddress,     ///< 20 bytes, left-padded with zeros to a word
  kBool,        ///< a word holding 0 or 1
  kUint,        ///< uintN, N = bits (8..256, multiple of 8), big-endian, left-padded
  kInt,         ///< intN, two's complement, sign-extended to a word
  kFixedBytes,  ///< bytesN, N = size (1..32), right-padded with zeros
  kBytes,       ///< dynamic bytes: offset -> length word + data
  kString,      ///< dynamic UTF-8 string, encoded like bytes
};

/// \brief One ABI type.
struct AbiType {
  AbiKind kind = AbiKind::kUint;
  int bits = 0;  ///< kUint/kInt: N of uintN/intN
  int size = 0;  ///< kFixedBytes: N of bytesN

  /// \brief string and bytes: the value lives in the tail of the data (and an
  /// indexed one is replaced by its Keccak-256 hash in the topic).
  bool is_dynamic() const { return kind == AbiKind::kBytes || kind == AbiKind::kString; }
  /// \brief The canonical name used in signatures: "uint256" (for "uint"),
  /// "int8", "address", "bytes32", "string", ….
  std::string Canonical() const;
};

/// \brief One parameter of an event.
struct EventParam {
  std::string name;  ///< as written, or "arg<i>" (i = position) when unnamed
  AbiType type;
  bool indexed = false;  ///< carried in a topic rather than in the data
};

/// \brief A parsed event signature.
struct EventSignature {
  std::string name;
  std::vector<EventParam> params;

  /// \brief Types only, canonical names, no spaces:
  /// "Transfer(address,address,uint256)".
  std::string Canonical() const;
  /// \brief Keccak-256 of Canonical(): the log's topic0 for a non-anonymous event.
  Hash32 Topic0() const;
  /// \brief How many parameters are indexed (0..3).
  int indexed_count() const;
};

/// \brief Parse an event signature. Accepted forms (whitespace is free):
///   "Transfer(address indexed from, address indexed to, uint256 value)"
///   "Transfer(address indexed, address indexed, uint256)"
///   "Transfer(address,address,uint256)"
///   "event Transfer(address indexed from, …);"
/// Types: address, bool, uintN/intN (N = 8..256 step 8; "uint"/"int" mean
/// 256), bytesN (N = 1..32), bytes, string.
/// Invalid, naming the problem, for: a syntax error, an unknown or unsupported
/// type (arrays, tuples, fixed, function), more than 3 indexed parameters, or two
/// parameters with the same name (names are compared case-insensitively, as SQL
/// does; unnamed ones are "arg<i>").
arrow::Result<EventSignature> ParseEventSignature(std::string_view text);

/// \brief The exact decimal of an integer wider than 64 bits ("-" for negatives).
struct AbiDecimal {
  std::string digits;
  bool operator==(const AbiDecimal&) const = default;
};

/// \brief Raw bytes: an address (20), a bytesN (N), a bytes value, or the 32-byte
/// Keccak-256 topic of an indexed string/bytes.
using AbiBytes = std::vector<uint8_t>;

/// \brief A decoded value. By type:
///   address -> AbiBytes (20); bool -> bool;
///   uint8..uint64 -> uint64_t; int8..int64 -> int64_t;
///   uint72..uint256, int72..int256 -> AbiDecimal (exact);
///   bytesN -> AbiBytes (N); bytes -> AbiBytes; string -> std::string (UTF-8),
///   or std::monostate when its bytes are not valid UTF-8;
///   indexed string/bytes -> AbiBytes (32, the hash in the topic).
using AbiValue =
    std::variant<std::monostate, bool, uint64_t, int64_t, AbiDecimal, AbiBytes, std::string>;

/// \brief Decode one log with `signature`. `topics` are the log's topic1..topic3
/// (topic0 is not looked at: filter on it with Topic0()); std::nullopt or an empty
/// span means the log has no such topic. Returns one value per parameter, in the
/// signature's order, or std::nullopt when the log does not match the signature:
///  - an indexed parameter's topic is missing or not 32 bytes, or the log has
///    more topics than the event has indexed parameters;
///  - the data is shorter than the head (32 bytes per non-indexed parameter),
///    or a dynamic value's offset/length points outside the data;
///  - a static value is not strictly encoded (non-zero padding of an address,
///    uintN or bytesN; an intN not sign-extended; a bool other than 0/1).
/// Data past what the signature needs is ignored. Never reads out of bounds.
std::optional<std::vector<AbiValue>> DecodeEventLog(
    const EventSignature& signature, const std::array<std::optional<ByteSpan>, 3>& topics,
    ByteSpan data);

/// \brief Whether `bytes` is well-formed UTF-8 (no overlong forms, surrogates or
/// code points above U+10FFFF).
bool IsValidUtf8(ByteSpan bytes);

}  // namespace sluice::sql
