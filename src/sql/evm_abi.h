// Ethereum ABI types and signatures, without the engine: Keccak-256, the types of
// the Solidity ABI (elementary types, arrays, tuples), and the parsing of type texts
// and of event and function signatures.
//
// Sources: the Solidity ABI specification ("Contract ABI Specification",
// https://docs.soliditylang.org/en/latest/abi-spec.html — types, canonical names,
// function selectors, events) and Ethereum's Keccak-256 (the original Keccak
// padding, not FIPS-202 SHA3-256), computed by Crypto++ (CryptoPP::Keccak_256).
//
// Encoding and decoding of values are in sql/evm_abi_codec.h; the SQL functions
// built on both in sql/evm_functions.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
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

/// \brief The kinds of ABI types. Fixed-point and function types are not supported.
enum class AbiKind : uint8_t {
  kAddress,     ///< 20 bytes, left-padded with zeros to a word
  kBool,        ///< a word holding 0 or 1
  kUint,        ///< uintN, N = bits (8..256, multiple of 8), big-endian, left-padded
  kInt,         ///< intN, two's complement, sign-extended to a word
  kFixedBytes,  ///< bytesN, N = size (1..32), right-padded with zeros
  kBytes,       ///< dynamic bytes: length word + data, right-padded
  kString,      ///< dynamic UTF-8 string, encoded like bytes
  kArray,       ///< T[]: length word + the elements encoded as a tuple
  kFixedArray,  ///< T[k], k = size: the elements encoded as a tuple
  kTuple,       ///< (T1,…,Tn), n >= 1
};

/// \brief One ABI type (a tree for arrays and tuples).
struct AbiType {
  AbiKind kind = AbiKind::kUint;
  int bits = 0;       ///< kUint/kInt: N of uintN/intN
  uint32_t size = 0;  ///< kFixedBytes: N of bytesN; kFixedArray: k of T[k]
  /// kArray/kFixedArray: the element type (one); kTuple: the components.
  std::vector<AbiType> children;
  /// kTuple: the components' names, one per component, never empty: as written in
  /// the type text, else "c0", "c1", … by position.
  std::vector<std::string> names;

  /// \brief Dynamic types live in the tail of an encoding behind an offset word:
  /// bytes, string, T[], and T[k] or tuples holding a dynamic type.
  bool is_dynamic() const;
  /// \brief Bytes the type takes in the head of an encoding: 32 for a dynamic
  /// type, else the sum of its words (at most 2^32 by construction).
  uint64_t head_size() const;
  /// \brief The canonical name used in signatures: "uint256" (for "uint"),
  /// "bytes32", "(uint256,address)[]", … (no names, no spaces).
  std::string Canonical() const;
  bool operator==(const AbiType& other) const = default;
};

/// \brief One parameter of an event or function.
struct AbiParam {
  std::string name;  ///< as written, or "arg<i>" (i = position) when unnamed
  AbiType type;
  bool indexed = false;  ///< events: carried in a topic rather than in the data
};

/// \brief A parsed event or function signature.
struct AbiSignature {
  std::string name;
  std::vector<AbiParam> params;

  /// \brief Types only, canonical names, no spaces:
  /// "Transfer(address,address,uint256)".
  std::string Canonical() const;
  /// \brief Keccak-256 of Canonical(): the log's topic0 for a non-anonymous event.
  Hash32 Topic0() const;
  /// \brief The first 4 bytes of Keccak-256 of Canonical(): a function's selector.
  std::array<uint8_t, 4> Selector() const;
  /// \brief How many parameters are indexed (0..3).
  int indexed_count() const;
  /// \brief The parameters as one tuple type, names included (for a typed result).
  AbiType AsTuple() const;
};

/// \brief Parse an event signature. Accepted forms (whitespace is free):
///   "Transfer(address indexed from, address indexed to, uint256 value)"
///   "Transfer(address indexed, address indexed, uint256)"
///   "Transfer(address,address,uint256)"
///   "event Transfer(address indexed from, …);"
///   "Posted(string indexed topic, (uint256 id, string[] tags) post)"
/// Types as in ParseAbiType. Invalid, naming the problem ("event signature '…':
/// unknown type 'uint7'"), for a syntax error, an unknown or unsupported type,
/// more than 3 indexed parameters, an anonymous event, or two parameters with the
/// same name (compared case-insensitively, as SQL does; unnamed ones are "arg<i>").
arrow::Result<AbiSignature> ParseEventSignature(std::string_view text);

/// \brief Parse a function signature: "transfer(address to, uint256 amount)",
/// optionally "function transfer(…)", with data locations (memory, calldata,
/// storage) allowed and ignored. No `indexed`. Otherwise as ParseEventSignature
/// ("function signature '…': …").
arrow::Result<AbiSignature> ParseFunctionSignature(std::string_view text);

/// \brief Parse a Solidity type text: address, bool, string, bytes, bytes1..bytes32,
/// uint8..uint256 and int8..int256 in steps of 8 ("uint"/"int" mean 256), T[] and
/// T[k] (k = 1..65536), tuples "(T1 [name], …, Tn [name])" or "tuple(…)" with
/// n >= 1; nesting at most 32 deep. Invalid ("type '…': …") otherwise, also for
/// fixed/ufixed, function types, T[0], the empty tuple and duplicate tuple names.
arrow::Result<AbiType> ParseAbiType(std::string_view text);

/// \brief Whether `bytes` is well-formed UTF-8 (no overlong forms, surrogates or
/// code points above U+10FFFF).
bool IsValidUtf8(ByteSpan bytes);

}  // namespace sluice::sql
