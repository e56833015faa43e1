// Which chain tables a query reads, from its parse tree: the tables whose
// segments must be local (fetched from an object store into the segment cache)
// before DuckDB or a direct scan opens them.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace sluice::sql {

/// \brief Every chain table `tree` (DuckDB's json_serialize_sql of a query) may
/// read, as "dataset.table" spelled as in `tables` (dataset -> its table names):
/// each BASE_TABLE reference, and those of the derived tables it names (`views`,
/// "schema.table" -> parse tree), recursively. Names match without regard to
/// case; a reference without a schema counts as the table of that name in every
/// dataset (a CTE of the same name too: a superset is safe).
std::set<std::string> ChainTablesRead(const nlohmann::json& tree,
                                      const std::map<std::string, nlohmann::json>& views,
                                      const std::map<std::string, std::vector<std::string>>& tables);

}  // namespace sluice::sql
