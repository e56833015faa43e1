// Fuzzes the SETTINGS clause pre-parser (sql/settings_clause.h) and the
// amp-stream header parser with arbitrary query text.
//
// Beyond "no crash, no sanitizer report", it checks what the header promises:
// the query handed to the engine is a prefix of the original text, and the text
// is unchanged when no setting was found.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sql/settings_clause.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  auto settings = sluice::sql::ExtractSettings(sql);
  if (settings.ok()) {
    if (settings->sql.size() > sql.size() || sql.substr(0, settings->sql.size()) != settings->sql) {
      std::abort();  // the query without its clause must be a prefix of the original
    }
    if (settings->stream.has_value() && settings->sql.size() == sql.size()) {
      std::abort();  // a setting was found, so a clause was removed
    }
  } else if (settings.status().message().empty()) {
    std::abort();  // errors name the problem
  }
  auto header = sluice::sql::ParseStreamHeader(sql);
  (void)header;
  return 0;
}
