#include "sql/table_refs.h"

#include <algorithm>
#include <cctype>

namespace sluice::sql {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

struct Walker {
  const std::map<std::string, nlohmann::json>& views;
  const std::map<std::string, std::vector<std::string>>& tables;
  std::set<std::string> out;
  std::set<std::string> expanded;  // views already walked (and cycles)

  void Reference(const std::string& schema, const std::string& table) {
    const std::string s = Lower(schema), t = Lower(table);
    for (const auto& [dataset, names] : tables) {
      if (!s.empty() && Lower(dataset) != s) continue;
      for (const auto& name : names) {
        if (Lower(name) == t) out.insert(dataset + "." + name);
      }
    }
    for (const auto& [qualified, tree] : views) {
      auto dot = qualified.find('.');
      const std::string vs = Lower(qualified.substr(0, dot)), vt = Lower(qualified.substr(dot + 1));
      if ((s.empty() || vs == s) && vt == t && expanded.insert(qualified).second) Walk(tree);
    }
  }

  void Walk(const nlohmann::json& node) {
    if (node.is_object()) {
      auto type = node.find("type");
      if (type != node.end() && type->is_string() && *type == "BASE_TABLE") {
        Reference(node.value("schema_name", ""), node.value("table_name", ""));
      }
      for (const auto& [key, value] : node.items()) Walk(value);
    } else if (node.is_array()) {
      for (const auto& value : node) Walk(value);
    }
  }
};

}  // namespace

std::set<std::string> ChainTablesRead(const nlohmann::json& tree,
                                      const std::map<std::string, nlohmann::json>& views,
                                      const std::map<std::string, std::vector<std::string>>& tables) {
  Walker w{views, tables, {}, {}};
  w.Walk(tree);
  return std::move(w.out);
}

}  // namespace sluice::sql
