// The Ethereum ABI encoding of values (the head/tail encoding of the Solidity ABI
// specification, "Formal Specification of the Encoding"): decoding of event logs,
// function calldata and single values, and encoding of values and calls.
//
// Decoding never reads out of bounds and never trusts a length or offset: every
// one is checked against the data first, so any input bytes are safe (see
// fuzz/abi_decode_fuzzer.cc). What does not decode gives std::nullopt.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "arrow/result.h"
#include "sql/evm_abi.h"
#include "sql/evm_integers.h"

namespace sluice::sql {

/// \brief Raw bytes: an address (20), a bytesN (N), a bytes value, or the 32-byte
/// topic of an indexed string, bytes, array or tuple (Keccak-256 of its value).
using AbiBytes = std::vector<uint8_t>;

struct AbiValue;
/// \brief The elements of an array or the components of a tuple.
using AbiList = std::vector<AbiValue>;

/// \brief A decoded (or to-be-encoded) value. By type:
///   address, bytesN, bytes -> AbiBytes;  bool -> bool;
///   uintN / intN           -> Word256 (the ABI word: big-endian, two's complement);
///   string                 -> std::string (UTF-8), or std::monostate when the bytes
///                             are not valid UTF-8;
///   T[], T[k], tuples      -> AbiList.
struct AbiValue {
  std::variant<std::monostate, bool, Word256, AbiBytes, std::string, AbiList> v;
};

/// \brief Whether an indexed event parameter of type `t` is stored as the
/// Keccak-256 of its value (bytes, string, arrays, tuples) rather than as its word.
bool IsHashedInTopic(const AbiType& t);

/// \brief abi.decode(data, (T)): one value of type `t` encoded as a one-element
/// tuple (a dynamic `t` starts with an offset word). Data past the value is
/// ignored. std::nullopt when it does not decode:
///  - the data is shorter than a head, or an offset or length points outside it;
///  - a static value is not strictly encoded (non-zero padding of an address,
///    uintN or bytesN; an intN not sign-extended; a bool other than 0 or 1);
///  - the decoded value would hold more than the data does (offsets that point
///    into the same tail many times, which no ABI encoder writes).
std::optional<AbiValue> DecodeAbiValue(const AbiType& t, ByteSpan data);

/// \brief The components of `tuple` decoded as a parameter list (function
/// arguments, return values, a log's data): the tuple encoding without the outer
/// offset. As DecodeAbiValue otherwise.
std::optional<AbiList> DecodeAbiParams(const AbiType& tuple, ByteSpan data);

/// \brief Decode one log with an event signature. `topics` are the log's
/// topic1..topic3 (topic0 is not looked at: filter on it with Topic0());
/// std::nullopt or an empty span means the log has no such topic. Returns one
/// value per parameter, in signature order (indexed ones hashed in their topic as
/// the 32 topic bytes), or std::nullopt when the log does not match:
///  - an indexed parameter's topic is missing or not 32 bytes, or the log has
///    more topics than the event has indexed parameters;
///  - the data does not decode as the non-indexed parameters (DecodeAbiParams),
///    or an indexed value word is not strictly encoded.
std::optional<AbiList> DecodeEventLog(const AbiSignature& signature,
                                      const std::array<std::optional<ByteSpan>, 3>& topics,
                                      ByteSpan data);

/// \brief Decode calldata (4-byte selector + arguments) with a function signature.
/// std::nullopt when the selector is not the signature's or the arguments do not
/// decode.
std::optional<AbiList> DecodeFunctionInput(const AbiSignature& signature, ByteSpan input);

/// \brief abi.encode(v): `v` as a one-element tuple of type `t`. Invalid, naming
/// the problem, when `v` does not have the shape of `t` (an integer out of range,
/// bytes of the wrong size, a list of the wrong length, …).
arrow::Result<AbiBytes> EncodeAbiValue(const AbiType& t, const AbiValue& v);

/// \brief The components of `tuple` encoded as a parameter list (no outer offset).
arrow::Result<AbiBytes> EncodeAbiParams(const AbiType& tuple, const AbiList& values);

/// \brief Calldata: the signature's selector followed by the encoded arguments.
arrow::Result<AbiBytes> EncodeFunctionCall(const AbiSignature& signature, const AbiList& args);

}  // namespace sluice::sql
