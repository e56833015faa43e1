// Arrow record batches as JSON Lines (protocol.md §6): one JSON object per row,
// its keys the column names in column order, each line ended by "\n".
//
// Values (docs/http.md lists them with examples):
//   null                          null (at any depth)
//   boolean                       true / false
//   integers (8 to 64 bits)       JSON numbers, exact digits (uint64 above 2^53 too)
//   decimal (32 to 256 bits)      JSON numbers, exact digits with the type's scale:
//                                 1000000000000000000000, 12.50 — never rounded; read
//                                 them with a decimal-aware parser to keep every digit
//   float, double                 shortest JSON number that reads back exactly;
//                                 NaN, Infinity, -Infinity as strings "NaN", "Infinity",
//                                 "-Infinity" (JSON has no such numbers)
//   string                        JSON string (", \, control characters escaped)
//   binary, fixed-size binary     "0x…" lower-case hex (hashes, addresses, input data)
//   timestamp (any unit or zone)  ISO-8601 UTC: "2024-01-01T00:00:00Z", with a
//                                 fraction of the unit's digits (3, 6 or 9) when not 0
//   date                          "2024-01-01"
//   time                          "12:34:56" (fraction when not 0)
//   duration                      JSON number in the type's unit
//   interval                      {"months": m, "days": d, "nanoseconds": n} (the
//                                 fields of its Arrow type)
//   list, fixed-size list         JSON array
//   struct                        JSON object (field names as keys)
//   map                           JSON object; keys written as strings (a string key
//                                 as is, others as their JSON text)
//   dictionary                    its value; union: the value of its current member
//   anything else                 a JSON string of Arrow's text form of the value
#pragma once

#include <string>
#include <vector>

#include "arrow/record_batch.h"
#include "arrow/status.h"

namespace sluice::http {

/// \brief Writes rows of one schema as JSON Lines. Not thread-safe; cheap to make.
class JsonLinesEncoder {
 public:
  explicit JsonLinesEncoder(const arrow::Schema& schema);

  /// \brief Append rows [begin, end) of `batch` (whose schema is the encoder's)
  /// to `out`, one line per row.
  void Append(const arrow::RecordBatch& batch, int64_t begin, int64_t end,
              std::string* out) const;

 private:
  std::vector<std::string> keys_;  // `{"name":` for the first column, `,"name":` after
};

/// \brief Append the JSON text of `array[i]` to `out` (the encoding above).
void AppendJsonValue(const arrow::Array& array, int64_t i, std::string* out);

/// \brief Append `s` as a JSON string, quoted and escaped.
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace sluice::http
