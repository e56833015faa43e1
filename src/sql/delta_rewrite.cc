#include "sql/delta_rewrite.h"

#include <map>
#include <set>
#include <vector>

#include "sql/block_names.h"
#include "sql/parse_tree.h"

namespace sluice::sql {

namespace {

using json = nlohmann::json;
using tree::Array;
using tree::Field;
using tree::Lower;
using tree::Str;

constexpr int kMaxDepth = 512;
constexpr size_t kMaxJoinedItems = 8;  // 2^8 - 1 terms at most

const char* StateSuffix(RangeState state) {
  switch (state) {
    case RangeState::kDelta:
      return "d";
    case RangeState::kHistory:
      return "h";
    case RangeState::kNew:
      return "n";
  }
  return "n";
}

bool IsChainRef(const json& e, const Relations& relations) {
  return Str(e, "type") == "BASE_TABLE" &&
         relations.chain_table(Str(e, "catalog_name"), Str(e, "schema_name"),
                               Str(e, "table_name"))
             .has_value();
}

bool ReadsChain(const json& e, const Relations& relations) {
  return tree::ContainsNode(e, [&](const json& x) { return IsChainRef(x, relations); });
}

// The FROM items of a join tree (inner, cross and natural joins), as JSON pointers.
void LeafPaths(const json& ref, const json::json_pointer& at, std::vector<json::json_pointer>* out) {
  if (Str(ref, "type") == "JOIN") {
    for (const char* side : {"left", "right"}) {
      if (const json* c = Field(ref, side)) LeafPaths(*c, at / side, out);
    }
    return;
  }
  out->push_back(at);
}

// The relation names (lower case) of the FROM items below a join node.
void LeafNames(const json& ref, std::set<std::string>* out) {
  if (Str(ref, "type") == "JOIN") {
    for (const char* side : {"left", "right"}) {
      if (const json* c = Field(ref, side)) LeafNames(*c, out);
    }
    return;
  }
  std::string alias = Lower(Str(ref, "alias"));
  if (alias.empty() && Str(ref, "type") == "BASE_TABLE") alias = Lower(Str(ref, "table_name"));
  if (!alias.empty()) out->insert(alias);
}

class Delta {
 public:
  Delta(const Relations& relations, const DeltaOptions& options)
      : relations_(relations), options_(options) {}

  // Δ of a query node; null when it reads no chain table.
  arrow::Result<json> D(const json& node) {
    if (++depth_ > kMaxDepth) return arrow::Status::Invalid("query nests too deeply");
    auto r = DImpl(node);
    --depth_;
    return r;
  }

  // Whether a SELECT groups or deduplicates (keyed by block, per the check).
  bool Grouped(const json& s) const { return IsGrouped(s); }

  // A copy of `e` with every chain table reference read in `state`.
  json S(const json& e, RangeState state) const {
    if (e.is_object()) {
      if (IsChainRef(e, relations_)) return StateRef(e, state);
      json out = json::object();
      for (const auto& [k, v] : e.items()) out[k] = S(v, state);
      return out;
    }
    if (e.is_array()) {
      json out = json::array();
      for (const auto& v : e) out.push_back(S(v, state));
      return out;
    }
    return e;
  }

 private:
  json StateRef(const json& ref, RangeState state) const {
    auto chain = relations_.chain_table(Str(ref, "catalog_name"), Str(ref, "schema_name"),
                                        Str(ref, "table_name"));
    json out = ref;
    out["catalog_name"] = "";
    out["schema_name"] = kStreamSchema;
    out["table_name"] = StateViewName(chain->dataset, chain->table, state);
    if (Str(ref, "alias").empty()) out["alias"] = Str(ref, "table_name");
    return out;
  }

  arrow::Result<json> DImpl(const json& node) {
    const std::string type = Str(node, "type");
    if (type == "SELECT_NODE") return DSelect(node);
    if (type == "SET_OPERATION_NODE") {
      json out = node;
      json parts[2];
      int n = 0;
      for (const char* side : {"left", "right"}) {
        const json* c = Field(node, side);
        if (c == nullptr) continue;
        ARROW_ASSIGN_OR_RAISE(json d, D(*c));
        out[side] = d;
        if (!d.is_null()) parts[n++] = std::move(d);
      }
      if (n == 0) return json();
      if (n == 1) return std::move(parts[0]);
      return out;
    }
    return arrow::Status::Invalid("cannot stream a query node of type ", type);
  }

  // Δ of a FROM item; null when it reads no chain table.
  arrow::Result<json> DRef(const json& ref) {
    const std::string type = Str(ref, "type");
    if (IsChainRef(ref, relations_)) return StateRef(ref, RangeState::kDelta);
    if (type == "SUBQUERY") {
      const json* sub = Field(ref, "subquery");
      const json* node = sub ? Field(*sub, "node") : nullptr;
      if (node == nullptr) return json();
      ARROW_ASSIGN_OR_RAISE(json d, D(*node));
      if (d.is_null()) return json();
      json out = ref;
      out["subquery"]["node"] = std::move(d);
      return out;
    }
    if (type == "PIVOT") {  // UNPIVOT (the check refuses PIVOT): row by row
      const json* source = Field(ref, "source");
      if (source == nullptr || !ReadsChain(*source, relations_)) return json();
      if (Str(*source, "type") == "JOIN") {
        return arrow::Status::Invalid("UNPIVOT of a join cannot stream; UNPIVOT a subquery");
      }
      ARROW_ASSIGN_OR_RAISE(json d, DRef(*source));
      json out = ref;
      out["source"] = std::move(d);
      return out;
    }
    return json();
  }

  bool IsGrouped(const json& s) const {
    for (const auto& m : Array(s, "modifiers")) {
      if (Str(m, "type") == "DISTINCT_MODIFIER") return true;
    }
    return tree::AggregatingSelect(s, options_.is_aggregate);
  }

  // Whether every join of the FROM with chain tables on both sides equates the
  // block_num of two chain tables, one on each side (in its ON, USING or the WHERE).
  bool JoinsAligned(const json& ref, const json* where) const {
    if (Str(ref, "type") != "JOIN") return true;
    const json* left = Field(ref, "left");
    const json* right = Field(ref, "right");
    if (left == nullptr || right == nullptr) return false;
    if (!JoinsAligned(*left, where) || !JoinsAligned(*right, where)) return false;
    if (!ReadsChain(*left, relations_) || !ReadsChain(*right, relations_)) return true;
    for (const auto& c : Array(ref, "using_columns")) {
      if (c.is_string() && Lower(c.get<std::string>()) == "block_num") return true;
    }
    std::set<std::string> l, r;
    ChainNames(*left, &l);
    ChainNames(*right, &r);
    std::vector<const json*> conjuncts;
    if (const json* c = Field(ref, "condition")) conjuncts.push_back(c);
    if (where != nullptr) conjuncts.push_back(where);
    for (size_t i = 0; i < conjuncts.size(); ++i) {
      const json& c = *conjuncts[i];
      if (Str(c, "type") == "CONJUNCTION_AND") {
        for (const auto& child : Array(c, "children")) conjuncts.push_back(&child);
        continue;
      }
      const std::string type = Str(c, "type");
      if (type != "COMPARE_EQUAL" && type != "COMPARE_NOT_DISTINCT_FROM") continue;
      const json* a = Field(c, "left");
      const json* b = Field(c, "right");
      if (a == nullptr || b == nullptr || tree::ColumnName(*a) != "block_num" ||
          tree::ColumnName(*b) != "block_num") {
        continue;
      }
      const std::string qa = tree::Qualifier(*a), qb = tree::Qualifier(*b);
      if ((l.count(qa) && r.count(qb)) || (l.count(qb) && r.count(qa))) return true;
    }
    return false;
  }

  // Names of the chain tables (not subqueries) among the FROM items below `ref`.
  void ChainNames(const json& ref, std::set<std::string>* out) const {
    if (Str(ref, "type") == "JOIN") {
      for (const char* side : {"left", "right"}) {
        if (const json* c = Field(ref, side)) ChainNames(*c, out);
      }
      return;
    }
    if (IsChainRef(ref, relations_)) LeafNames(ref, out);
  }

  // The terms of Δ of a SELECT without its grouping (see the header).
  arrow::Result<std::vector<json>> Terms(const json& s) {
    std::vector<json::json_pointer> leaves;
    if (const json* from = Field(s, "from_table")) {
      LeafPaths(*from, json::json_pointer("/from_table"), &leaves);
    }
    std::vector<size_t> chain;
    for (size_t i = 0; i < leaves.size(); ++i) {
      if (ReadsChain(s.at(leaves[i]), relations_)) chain.push_back(i);
    }
    if (chain.size() > kMaxJoinedItems) {
      return arrow::Status::Invalid("a streaming query may join at most ", kMaxJoinedItems,
                                    " tables in one FROM");
    }
    std::vector<json> terms;
    const json* where = Field(s, "where_clause");
    const bool aligned = JoinsAligned(s["from_table"], where);
    const uint32_t all = (1u << chain.size()) - 1;
    for (uint32_t mask = aligned ? all : 1; mask <= all && mask != 0; ++mask) {
      json term = s;
      bool empty = false;
      for (size_t j = 0; j < chain.size(); ++j) {
        const auto& at = leaves[chain[j]];
        if (mask & (1u << j)) {
          ARROW_ASSIGN_OR_RAISE(json d, DRef(s.at(at)));
          if (d.is_null()) empty = true;
          term[at] = std::move(d);
        } else {
          term[at] = S(s.at(at), RangeState::kHistory);
        }
      }
      if (!empty) terms.push_back(S(term, RangeState::kNew));
    }
    if (where != nullptr && ReadsChain(*where, relations_)) {
      // Rows of earlier blocks that qualify only now.
      json term = s;
      for (size_t j : chain) term[leaves[j]] = S(s.at(leaves[j]), RangeState::kHistory);
      term["where_clause"] = tree::And(
          {S(*where, RangeState::kNew), tree::IsNotTrue(S(*where, RangeState::kHistory))});
      terms.push_back(S(term, RangeState::kNew));
    }
    return terms;
  }

  static json Fold(std::vector<json> terms) {
    json out = std::move(terms[0]);
    for (size_t i = 1; i < terms.size(); ++i) out = tree::UnionAll(std::move(out), std::move(terms[i]));
    return out;
  }

  arrow::Result<json> DSelect(const json& s) {
    ARROW_ASSIGN_OR_RAISE(auto terms, Terms(s));
    if (terms.empty()) return json();
    if (terms.size() == 1 || !IsGrouped(s)) return Fold(std::move(terms));
    return Wrap(s);
  }

  // A grouped SELECT over several terms: the grouping over a subquery holding the
  // union of the terms of its ungrouped core.
  arrow::Result<json> Wrap(const json& s) {
    json outer = s;
    json core = s;
    core["select_list"] = json::array();
    core["modifiers"] = json::array();
    core["group_expressions"] = json::array();
    core["group_sets"] = json::array();
    core["having"] = nullptr;
    core["qualify"] = nullptr;
    core["aggregate_handling"] = "STANDARD_HANDLING";

    std::set<std::string> aliases;
    for (const auto& item : s["select_list"]) {
      if (!Str(item, "alias").empty()) aliases.insert(Lower(Str(item, "alias")));
    }
    std::map<std::string, std::string> lifted;  // column path → lifted name
    auto lift = [&](json& e, bool in_select_list, auto&& self) -> void {
      if (e.is_array()) {
        for (auto& v : e) self(v, in_select_list, self);
        return;
      }
      if (!e.is_object()) return;
      const std::string cls = Str(e, "class");
      if (cls == "SUBQUERY" || cls == "LAMBDA") return;
      if (cls == "COLUMN_REF") {
        const json& names = Array(e, "column_names");
        if (!in_select_list && names.size() == 1 && aliases.count(Lower(names[0].get<std::string>()))) {
          return;  // a select alias (GROUP BY b)
        }
        std::string key;
        for (const auto& n : names) key += Lower(n.get<std::string>()) + '\x1f';
        auto it = lifted.find(key);
        if (it == lifted.end()) {
          std::string name = "__sluice_c" + std::to_string(lifted.size() + 1);
          it = lifted.emplace(key, name).first;
          json item = e;
          item["alias"] = name;
          core["select_list"].push_back(std::move(item));
        }
        std::string alias = Str(e, "alias");
        e = tree::ColumnRef({it->second}, alias);
        return;
      }
      for (auto& [k, v] : e.items()) self(v, in_select_list, self);
    };

    int structs = 0;
    std::vector<std::string> star_excludes;
    for (auto& item : outer["select_list"]) {
      if (Str(item, "class") == "STAR") {
        const std::string rel = Str(item, "relation_name");
        if (rel.empty()) {
          json star = item;
          star["alias"] = "";
          core["select_list"].push_back(std::move(star));
          item["exclude_list"] = json::array();  // applied in the core
        } else {
          std::string name = "__sluice_s" + std::to_string(++structs);
          core["select_list"].push_back(tree::ColumnRef({rel}, name));
          item["relation_name"] = name;
          star_excludes.push_back(name);
        }
        continue;
      }
      if (tree::IsColumnRef(item) && Str(item, "alias").empty()) {
        item["alias"] = Array(item, "column_names").back().get<std::string>();
      }
      lift(item, true, lift);
    }
    for (const char* key : {"group_expressions", "having", "qualify", "modifiers"}) {
      if (json* e = tree::MutableField(outer, key)) lift(*e, false, lift);
    }
    // An unqualified * of the outer query sees the lifted columns and structs too.
    for (auto& item : outer["select_list"]) {
      if (Str(item, "class") != "STAR" || !Str(item, "relation_name").empty()) continue;
      for (const auto& [k, name] : lifted) item["exclude_list"].push_back(name);
      for (const auto& name : star_excludes) item["exclude_list"].push_back(name);
    }
    if (core["select_list"].empty()) core["select_list"].push_back(tree::BoolConstant(true));
    ARROW_ASSIGN_OR_RAISE(auto terms, Terms(core));
    if (terms.empty()) return json();
    outer["from_table"] = tree::SubqueryRef(Fold(std::move(terms)), "__sluice_rows");
    outer["where_clause"] = nullptr;
    return outer;
  }

  const Relations& relations_;
  const DeltaOptions& options_;
  int depth_ = 0;
};

// The datasets whose chain tables a json value reads.
void DatasetsOf(const json& e, const Relations& relations, std::set<std::string>* out) {
  if (e.is_object()) {
    if (Str(e, "type") == "BASE_TABLE") {
      if (auto chain = relations.chain_table(Str(e, "catalog_name"), Str(e, "schema_name"),
                                             Str(e, "table_name"))) {
        out->insert(chain->dataset);
      }
    }
    for (const auto& [k, v] : e.items()) DatasetsOf(v, relations, out);
  } else if (e.is_array()) {
    for (const auto& v : e) DatasetsOf(v, relations, out);
  }
}

std::string Names(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " and ") + n;
  return out;
}

// Every SELECT node of a json value.
void ForEachSelect(const json& e, const std::function<arrow::Status(const json&)>& f,
                   arrow::Status* st) {
  if (!st->ok()) return;
  if (e.is_object()) {
    if (Str(e, "type") == "SELECT_NODE") *st = f(e);
    for (const auto& [k, v] : e.items()) ForEachSelect(v, f, st);
  } else if (e.is_array()) {
    for (const auto& v : e) ForEachSelect(v, f, st);
  }
}

}  // namespace

arrow::Status CheckOneDatasetPerRow(const nlohmann::json& node, const Relations& relations,
                                   const std::function<bool(const std::string&)>& is_aggregate) {
  DeltaOptions options;
  options.is_aggregate = is_aggregate;
  Delta delta(relations, options);
  arrow::Status st;
  ForEachSelect(
      node,
      [&](const json& s) -> arrow::Status {
        std::set<std::string> from, joined, where;
        std::vector<json::json_pointer> leaves;
        if (const json* f = Field(s, "from_table")) {
          LeafPaths(*f, json::json_pointer("/from_table"), &leaves);
          DatasetsOf(*f, relations, &from);
        }
        int reading = 0;
        for (const auto& at : leaves) reading += ReadsChain(s.at(at), relations) ? 1 : 0;
        if (reading > 1 && from.size() > 1) {
          return arrow::Status::Invalid(
              "NonIncrementalOp: a join across datasets (", Names(from),
              ") cannot stream: each network's blocks advance on their own, so a row made of "
              "two networks' blocks has no one block to be sent in nor one reorg that takes it "
              "back; stream each dataset (or UNION ALL them), or join them in a batch query");
        }
        if (const json* w = Field(s, "where_clause")) DatasetsOf(*w, relations, &where);
        where.insert(from.begin(), from.end());
        if (where.size() > 1) {
          return arrow::Status::Invalid(
              "NonIncrementalOp: EXISTS / IN (subquery) across datasets (", Names(where),
              ") cannot stream: whether a row of one network qualifies would change with the "
              "blocks of another; query them in a batch query");
        }
        if (from.size() > 1 && delta.Grouped(s)) {
          return arrow::Status::Invalid(
              "NonIncrementalOp: GROUP BY or DISTINCT over rows of several datasets (",
              Names(from), ") cannot stream: blocks of different networks never close a group "
              "together");
        }
        return arrow::Status::OK();
      },
      &st);
  return st;
}

std::string StateViewName(const std::string& dataset, const std::string& table,
                          RangeState state) {
  return dataset + "__" + table + "__" + StateSuffix(state);
}

arrow::Result<nlohmann::json> DeltaQuery(const nlohmann::json& node, const Relations& relations,
                                         const DeltaOptions& options) {
  if (!relations.chain_table || !options.is_aggregate) {
    return arrow::Status::Invalid("DeltaQuery: relations and is_aggregate are required");
  }
  Delta delta(relations, options);
  ARROW_ASSIGN_OR_RAISE(json d, delta.D(node));
  if (d.is_null()) {
    return arrow::Status::Invalid("a streaming query must read a chain table, e.g. eth_rpc.blocks");
  }
  if (!options.ordered) return d;
  return tree::SelectStarOrderedBy(std::move(d), "__sluice_delta", kBlockColumn);
}

}  // namespace sluice::sql
