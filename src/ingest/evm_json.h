// Reading Ethereum JSON-RPC objects (simdjson DOM) into Arrow builders: the field
// access and typed appends of the EVM decoder (ingest/evm_decode.h). Internal to
// ingest/.
//
// Conventions: a "Req" field must be present and not null (Invalid naming the
// field otherwise); an "Opt" field absent or JSON null appends a null. QUANTITY
// fields are 0x-hex integers, DATA fields 0x-hex bytes (ingest/hex_quantity.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "arrow/builder.h"
#include "arrow/result.h"
#include "arrow/status.h"
#include "simdjson.h"

namespace sluice::ingest::evm_json {

namespace dom = simdjson::dom;

using U64 = arrow::UInt64Builder;
using U32 = arrow::UInt32Builder;
using I32 = arrow::Int32Builder;
using Bool = arrow::BooleanBuilder;
using Fixed = arrow::FixedSizeBinaryBuilder;
using Bin = arrow::BinaryBuilder;
using Str = arrow::StringBuilder;
using Dec = arrow::Decimal128Builder;
using Ts = arrow::TimestampBuilder;
using List = arrow::ListBuilder;
using Struct = arrow::StructBuilder;

/// \brief The string value of `key`, or nullopt when absent or null.
arrow::Result<std::optional<std::string_view>> OptString(dom::object o, std::string_view key);
/// \brief The string value of `key`; Invalid when absent or null.
arrow::Result<std::string_view> ReqString(dom::object o, std::string_view key);
/// \brief `st` with "field 'key': " before its message (OK stays OK).
arrow::Status Field(std::string_view key, arrow::Status st);
/// \brief The QUANTITY at `key` as a uint64.
arrow::Result<uint64_t> ReqQuantity(dom::object o, std::string_view key);
/// \brief The array at `key`, or nullopt when absent or null.
arrow::Result<std::optional<dom::array>> OptArray(dom::object o, std::string_view key);

/// \brief Append a QUANTITY as a uint64 (Opt: null when absent).
arrow::Status AppendU64(U64* b, dom::object o, std::string_view key);
arrow::Status AppendOptU64(U64* b, dom::object o, std::string_view key);
/// \brief Append a DATA field of exactly the builder's byte width (hashes, addresses).
arrow::Status AppendFixedValue(Fixed* b, std::string_view key, std::string_view hex);
arrow::Status AppendFixed(Fixed* b, dom::object o, std::string_view key);
arrow::Status AppendOptFixed(Fixed* b, dom::object o, std::string_view key);
/// \brief Append a 32-byte word written as a QUANTITY (signature r, s); zeros when absent.
arrow::Status AppendWordOrZero(Fixed* b, dom::object o, std::string_view key);
/// \brief Append a 32-byte word written as a QUANTITY (signature r, s); null when absent.
arrow::Status AppendOptWord(Fixed* b, dom::object o, std::string_view key);
/// \brief Append a DATA field of any length; `scratch` is reused between calls.
arrow::Status AppendData(Bin* b, dom::object o, std::string_view key, std::string* scratch);
/// \brief Append a QUANTITY as Decimal128(38, 0); Invalid above 38 digits.
arrow::Status AppendDecimalValue(Dec* b, std::string_view key, std::string_view hex);
arrow::Status AppendDecimal(Dec* b, dom::object o, std::string_view key);
arrow::Status AppendOptDecimal(Dec* b, dom::object o, std::string_view key);
/// \brief A transaction's signature parity: `yParity`, else derived from `v`
/// (v in {0,1}: v; 27/28; EIP-155 v = 35 + 2 chain_id + parity); nullopt when both
/// are absent.
arrow::Result<std::optional<bool>> Parity(dom::object tx);
/// \brief Append the list of hashes at `key` (null when absent).
arrow::Status AppendHashList(List* b, dom::object tx, std::string_view key);
/// \brief Append `accessList` (EIP-2930): [{address, storageKeys: [hash, …]}, …].
arrow::Status AppendAccessList(List* b, dom::object tx);
/// \brief Append `authorizationList` (EIP-7702): [{chainId, address, nonce, yParity, r, s}, …].
arrow::Status AppendAuthorizationList(List* b, dom::object tx);

}  // namespace sluice::ingest::evm_json
