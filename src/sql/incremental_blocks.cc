#include <utility>

#include "sql/incremental_internal.h"
#include "sql/parse_tree.h"

namespace sluice::sql::incremental {

namespace {

using tree::Array;
using tree::Field;
using tree::IsColumnRef;
using tree::Lower;
using tree::Qualifier;
using tree::Str;

constexpr const char* kBlockNumCall = "block_num()";

bool IsBlockNumCall(const json& e) { return tree::IsCall(e, "block_num", 0); }

}  // namespace

bool IsOutputBlock(const json& e, const Summary& from) {
  bool any_chain = false;
  for (const auto& leaf : from.leaves) any_chain = any_chain || leaf.reads_chain;
  if (IsBlockNumCall(e)) return any_chain;
  if (!IsColumnRef(e)) return false;
  const std::string name = tree::ColumnName(e);
  const std::string q = Qualifier(e);
  const bool joined = from.leaves.size() > 1;
  for (const auto& leaf : from.leaves) {
    if (!q.empty() && leaf.name != q) continue;
    if (!leaf.block_columns.count(name)) continue;
    if (!joined || from.aligned) return true;
  }
  return false;
}

// A column of some FROM item that holds that item's block, but not the joined
// row's (a join that does not equate the blocks).
bool IsLeafBlock(const json& e, const Summary& from) {
  if (!IsColumnRef(e)) return false;
  const std::string name = tree::ColumnName(e);
  const std::string q = Qualifier(e);
  for (const auto& leaf : from.leaves) {
    if ((q.empty() || leaf.name == q) &&
        (leaf.block_columns.count(name) || leaf.partial_block_columns.count(name))) {
      return true;
    }
  }
  return false;
}

// What a grouping/deduplication key is: the rows' block, directly, by position
// (GROUP BY 1) or through a select alias of it (GROUP BY b).
Grouping KeyKind(const json& key, const json& select_list, const Summary& from) {
  auto of = [&](const json& e) {
    if (IsOutputBlock(e, from)) return Grouping::kBlock;
    if (IsLeafBlock(e, from)) return Grouping::kLeafBlock;
    return Grouping::kOther;
  };
  if (IsBlockNumCall(key)) return of(key);
  if (IsColumnRef(key) && Array(key, "column_names").size() == 1) {
    // An unqualified name binds to a select alias first.
    std::string name = tree::ColumnName(key);
    for (const auto& item : select_list) {
      if (Lower(Str(item, "alias")) == name) return of(item);
    }
    return of(key);
  }
  if (IsColumnRef(key)) return of(key);
  if (Str(key, "class") == "CONSTANT") {
    const json* value = Field(key, "value");
    const json* v = value ? Field(*value, "value") : nullptr;
    if (v != nullptr && v->is_number_integer()) {
      int64_t k = v->get<int64_t>();
      if (k >= 1 && static_cast<size_t>(k) <= select_list.size()) return of(select_list[k - 1]);
    }
  }
  return Grouping::kOther;
}


Grouping GroupingOf(const json& node, const Summary& from,
                    const std::function<bool(const json&)>& contains_aggregate) {
  const json& select_list = Array(node, "select_list");
  if (Str(node, "aggregate_handling") == "FORCE_AGGREGATES") {  // GROUP BY ALL
    bool any_key = false;
    Grouping best = Grouping::kOther;
    for (const auto& item : select_list) {
      if (contains_aggregate(item)) continue;
      any_key = true;
      Grouping g = KeyKind(item, select_list, from);
      if (g == Grouping::kBlock) return g;
      if (g == Grouping::kLeafBlock) best = g;
    }
    return any_key ? best : Grouping::kNone;
  }
  const json& groups = Array(node, "group_expressions");
  if (groups.empty()) return Grouping::kNone;
  // The key must be in every grouping set (ROLLUP/CUBE have a global one).
  const json& sets = Array(node, "group_sets");
  Grouping best = Grouping::kOther;
  for (size_t i = 0; i < groups.size(); ++i) {
    Grouping g = KeyKind(groups[i], select_list, from);
    if (g == Grouping::kOther) continue;
    bool in_every_set = true;
    for (const auto& set : sets) {
      bool found = false;
      for (const auto& index : set) {
        found = found || (index.is_number_unsigned() && index.get<size_t>() == i);
      }
      in_every_set = in_every_set && found;
    }
    if (!in_every_set) continue;
    if (g == Grouping::kBlock) return g;
    best = g;
  }
  return best;
}


Summary OneLeaf(std::string name, Summary s, const json& column_aliases) {
  Leaf leaf;
  leaf.name = std::move(name);
  leaf.reads_chain = s.tables > 0;
  if (column_aliases.is_array() && !column_aliases.empty()) {
    // `AS s(a, b, …)` renames the columns by position.
    if (s.block_at) {
      for (size_t i = 0; i < s.block_at->size() && i < column_aliases.size(); ++i) {
        if ((*s.block_at)[i] && column_aliases[i].is_string()) {
          leaf.block_columns.insert(Lower(column_aliases[i].get<std::string>()));
        }
      }
    }
  } else {
    leaf.block_columns = s.block_columns;
    leaf.partial_block_columns = s.partial_block_columns;
  }
  s.leaves = {std::move(leaf)};
  return s;
}


Summary SelectOutput(const json& select_list, const Summary& from) {
  Summary out;
  out.tables = from.tables;
  out.subquery_tables = from.subquery_tables;
  out.aligned = from.aligned;
  out.late = from.late;
  std::vector<std::string> names;
  std::vector<bool> at;
  bool positional = true;
  for (const auto& item : select_list) {
    if (Str(item, "class") == "STAR") {
      positional = false;
      std::set<std::string> excluded;
      for (const auto& x : Array(item, "exclude_list")) {
        if (x.is_string()) excluded.insert(Lower(x.get<std::string>()));
      }
      const std::string rel = Lower(Str(item, "relation_name"));
      for (const auto& leaf : from.leaves) {
        if (!rel.empty() && leaf.name != rel) continue;
        if (from.leaves.size() > 1 && !from.aligned) continue;
        for (const auto& c : leaf.block_columns) {
          if (!excluded.count(c)) out.block_columns.insert(c);
        }
      }
      continue;
    }
    std::string name = Lower(Str(item, "alias"));
    if (name.empty() && IsColumnRef(item)) name = tree::ColumnName(item);
    if (name.empty() && IsBlockNumCall(item)) name = kBlockNumCall;
    const bool is_block = IsOutputBlock(item, from);
    if (is_block && !name.empty()) out.block_columns.insert(name);
    if (!is_block && !name.empty() && IsLeafBlock(item, from)) out.partial_block_columns.insert(name);
    names.push_back(name);
    at.push_back(is_block);
  }
  if (positional) {
    out.output_names = std::move(names);
    out.block_at = std::move(at);
  }
  return out;
}

bool EquatesBlocks(const json& ref, const json* condition, const json* where, const Summary& left,
                   const Summary& right) {
  for (const auto& c : Array(ref, "using_columns")) {
    if (c.is_string() && Lower(c.get<std::string>()) == "block_num") return true;
  }
  auto block_of = [](const json& e, const Summary& side) {
    const std::string q = Qualifier(e);
    const std::string name = tree::ColumnName(e);
    if (q.empty()) return false;  // unqualified: side unknown
    for (const auto& leaf : side.leaves) {
      if (leaf.name == q && leaf.block_columns.count(name)) return true;
    }
    return false;
  };
  std::vector<const json*> conjuncts;
  if (condition != nullptr) conjuncts.push_back(condition);
  if (where != nullptr) conjuncts.push_back(where);
  for (size_t i = 0; i < conjuncts.size(); ++i) {
    const json& c = *conjuncts[i];
    if (Str(c, "type") == "CONJUNCTION_AND") {
      for (const auto& child : Array(c, "children")) conjuncts.push_back(&child);
      continue;
    }
    const std::string type = Str(c, "type");
    if (Str(c, "class") != "COMPARISON" ||
        (type != "COMPARE_EQUAL" && type != "COMPARE_NOT_DISTINCT_FROM")) {
      continue;
    }
    const json* a = Field(c, "left");
    const json* b = Field(c, "right");
    if (a == nullptr || b == nullptr) continue;
    if ((block_of(*a, left) && block_of(*b, right)) || (block_of(*b, left) && block_of(*a, right))) {
      return true;
    }
  }
  return false;
}


}  // namespace sluice::sql::incremental
