#include "sql/block_names.h"

#include <vector>

#include "sql/parse_tree.h"

namespace sluice::sql {

namespace {

using json = nlohmann::json;
using tree::Array;
using tree::Field;
using tree::Lower;
using tree::MutableField;
using tree::Str;

constexpr int kMaxDepth = 512;
constexpr const char* kBlockNumColumn = "_block_num";
constexpr const char* kBlockNumCall = "block_num()";

bool IsBlockNumCall(const json& e) { return tree::IsCall(e, "block_num", 0); }
bool IsBlockNumColumn(const json& e) { return tree::ColumnName(e) == kBlockNumColumn; }

// Whether a json value reads a chain table anywhere (FROM items and subqueries).
bool ReadsChain(const json& e, const Relations& relations) {
  return tree::ContainsNode(e, [&](const json& x) {
    return Str(x, "type") == "BASE_TABLE" &&
           relations.chain_table(Str(x, "catalog_name"), Str(x, "schema_name"),
                                 Str(x, "table_name"));
  });
}

// Whether a query node's result has a column named _block_num.
bool ExposesBlockNumColumn(const json& node) {
  if (Str(node, "type") == "SET_OPERATION_NODE") {
    const json* left = Field(node, "left");
    return left != nullptr && ExposesBlockNumColumn(*left);
  }
  for (const auto& item : Array(node, "select_list")) {
    std::string alias = Lower(Str(item, "alias"));
    if (alias == kBlockNumColumn || (alias.empty() && IsBlockNumColumn(item))) return true;
  }
  return false;
}

bool Uses(const json& e) {
  return tree::ContainsNode(e, [](const json& x) { return IsBlockNumCall(x) || IsBlockNumColumn(x); });
}

struct Leaf {
  enum Kind { kChain, kSubquery, kOther };
  std::string name;  // lower case; "" for an unnamed subquery until it needs one
  json* ref = nullptr;
  Kind kind = kOther;
  bool hidden = false;  // the subquery carries kBlockColumn
};

struct Scope {
  std::vector<Leaf> leaves;
  const Scope* parent = nullptr;
};

class Rewriter {
 public:
  Rewriter(const Relations& relations, const BlockNameOptions& options)
      : relations_(relations), options_(options) {}

  // Rewrite `node`; with `need`, it carries kBlockColumn (when `soft`, only if it
  // can: `*added` says whether it does).
  arrow::Status Node(json& node, const Scope* parent, bool need, bool soft = false,
                     bool* added = nullptr) {
    if (++depth_ > kMaxDepth) return arrow::Status::Invalid("query nests too deeply");
    auto st = NodeImpl(node, parent, need, soft, added);
    --depth_;
    return st;
  }

 private:
  arrow::Status NodeImpl(json& node, const Scope* parent, bool need, bool soft, bool* added) {
    if (added) *added = false;
    const std::string type = Str(node, "type");
    if (type == "SELECT_NODE") return Select(node, parent, need, soft, added);
    if (type == "SET_OPERATION_NODE") {
      const std::string op = Str(node, "setop_type");
      const bool carries = Bool(node) && (op == "UNION" || op == "UNION_BY_NAME");
      if (need && !carries) {
        if (soft) need = false;
        else return arrow::Status::Invalid(
            "block_num() cannot see the block of the rows of a ", op,
            Bool(node) ? " ALL" : "", ": select their block (block_num()) in each branch");
      }
      for (const char* side : {"left", "right"}) {
        if (json* c = MutableField(node, side)) ARROW_RETURN_NOT_OK(Node(*c, parent, need));
      }
      if (added) *added = need;
      return Expressions(node["modifiers"], parent);
    }
    if (need && !soft) {
      return arrow::Status::Invalid("block_num() cannot see the block of the rows of a ", type);
    }
    return arrow::Status::OK();
  }

  static bool Bool(const json& node) { return tree::Bool(node, "setop_all"); }

  void CollectLeaves(json& ref, std::vector<Leaf>* out) {
    const std::string type = Str(ref, "type");
    if (type == "JOIN") {
      for (const char* side : {"left", "right"}) {
        if (json* c = MutableField(ref, side)) CollectLeaves(*c, out);
      }
      return;
    }
    Leaf leaf;
    leaf.ref = &ref;
    leaf.name = Lower(Str(ref, "alias"));
    if (type == "BASE_TABLE") {
      if (leaf.name.empty()) leaf.name = Lower(Str(ref, "table_name"));
      if (relations_.chain_table(Str(ref, "catalog_name"), Str(ref, "schema_name"),
                                 Str(ref, "table_name"))) {
        leaf.kind = Leaf::kChain;
      }
    } else if (type == "SUBQUERY" && ReadsChain(ref, relations_)) {
      leaf.kind = Leaf::kSubquery;
    }
    out->push_back(std::move(leaf));
  }

  json* SubqueryNode(Leaf& leaf) {
    json* sub = MutableField(*leaf.ref, "subquery");
    return sub ? MutableField(*sub, "node") : nullptr;
  }

  // The column ref naming `leaf`'s block; marks a subquery to carry it.
  json LeafBlock(Leaf& leaf) {
    if (leaf.kind == Leaf::kChain) return tree::ColumnRef({leaf.name, "block_num"});
    if (leaf.name.empty()) {
      leaf.name = "__sluice_sq" + std::to_string(++unnamed_);
      (*leaf.ref)["alias"] = leaf.name;
    }
    leaf.hidden = true;
    return tree::ColumnRef({leaf.name, kBlockColumn});
  }

  // The block of a row of `scope`'s FROM: greatest of its leaves' blocks.
  arrow::Result<json> BlockOf(Scope& scope) {
    std::vector<json> parts;
    for (auto& leaf : scope.leaves) {
      if (leaf.kind != Leaf::kOther) parts.push_back(LeafBlock(leaf));
    }
    if (parts.empty()) {
      return arrow::Status::Invalid("block_num(): this SELECT reads no chain table");
    }
    if (parts.size() == 1) return std::move(parts[0]);
    return tree::Call("greatest", std::move(parts));
  }

  // `_block_num` of a column reference, resolved in `scope` then its parents.
  arrow::Result<json> BlockNumColumn(const json& ref, Scope& scope) {
    const std::string q = tree::Qualifier(ref);
    for (Scope* s = &scope; s != nullptr; s = const_cast<Scope*>(s->parent)) {
      std::vector<Leaf*> candidates;
      for (auto& leaf : s->leaves) {
        if (q.empty() ? leaf.kind != Leaf::kOther : leaf.name == q) candidates.push_back(&leaf);
      }
      if (candidates.empty()) continue;
      if (candidates.size() > 1) {
        // Unqualified: a subquery that selects a _block_num column, or ambiguous.
        std::vector<Leaf*> exposing;
        for (Leaf* l : candidates) {
          json* n = l->kind == Leaf::kSubquery ? SubqueryNode(*l) : nullptr;
          if (n && ExposesBlockNumColumn(*n)) exposing.push_back(l);
        }
        if (exposing.size() != 1) {
          return arrow::Status::Invalid(
              "column _block_num is ambiguous: it names the block of several tables; qualify it "
              "(e.g. t._block_num) or use block_num() for the later of the joined blocks");
        }
        return ref;
      }
      Leaf& leaf = *candidates[0];
      if (leaf.kind == Leaf::kChain) {
        json names = ref["column_names"];
        names.back() = "block_num";
        json out = ref;
        out["column_names"] = std::move(names);
        return out;
      }
      if (leaf.kind == Leaf::kSubquery) {
        json* n = SubqueryNode(leaf);
        if (n && ExposesBlockNumColumn(*n)) return ref;
        return LeafBlock(leaf);
      }
      return arrow::Status::Invalid("column _block_num: ", leaf.name, " is not a chain table");
    }
    return ref;  // not ours: DuckDB binds it (or says it is not found)
  }

  // Replace block_num() and _block_num in an expression of `scope` (not in its
  // subqueries, which are rewritten as query nodes).
  arrow::Status Replace(json& e, Scope& scope) {
    if (e.is_array()) {
      for (auto& v : e) ARROW_RETURN_NOT_OK(Replace(v, scope));
      return arrow::Status::OK();
    }
    if (!e.is_object()) return arrow::Status::OK();
    if (Str(e, "class") == "SUBQUERY") {
      if (json* child = MutableField(e, "child")) ARROW_RETURN_NOT_OK(Replace(*child, scope));
      return arrow::Status::OK();
    }
    if (IsBlockNumCall(e)) {
      std::string alias = Str(e, "alias");
      ARROW_ASSIGN_OR_RAISE(e, BlockOf(scope));
      if (!alias.empty()) e["alias"] = alias;
      return arrow::Status::OK();
    }
    if (IsBlockNumColumn(e)) {
      std::string alias = Str(e, "alias");
      ARROW_ASSIGN_OR_RAISE(e, BlockNumColumn(e, scope));
      if (!alias.empty()) e["alias"] = alias;
      return arrow::Status::OK();
    }
    for (auto& [k, v] : e.items()) ARROW_RETURN_NOT_OK(Replace(v, scope));
    return arrow::Status::OK();
  }

  arrow::Status Expressions(json& e, const Scope* scope) {
    arrow::Status st;
    tree::ForEachExpressionSubquery(e, [&](json& sub) {
      if (st.ok()) st = Node(sub, scope, false);
    });
    return st;
  }

  bool IsAggregating(const json& node) const {
    return tree::AggregatingSelect(node, options_.is_aggregate);
  }

  static const json* DistinctModifier(const json& node) {
    for (const auto& m : Array(node, "modifiers")) {
      if (Str(m, "type") == "DISTINCT_MODIFIER") return &m;
    }
    return nullptr;
  }

  arrow::Status Select(json& node, const Scope* parent, bool need, bool soft, bool* added) {
    Scope scope;
    scope.parent = parent;
    if (json* from = MutableField(node, "from_table")) CollectLeaves(*from, &scope.leaves);

    // The hidden column's expression, before the select list is rewritten (a plain
    // DISTINCT carries it only when it selects its block).
    json hidden;
    if (need) {
      const json* distinct = DistinctModifier(node);
      if (distinct != nullptr && Array(*distinct, "distinct_on_targets").empty()) {
        for (const auto& item : Array(node, "select_list")) {
          if (IsBlockNumCall(item) || IsBlockNumColumn(item)) {
            hidden = item;
            hidden["alias"] = "";
            break;
          }
        }
        if (hidden.is_null()) {
          if (!soft) {
            return arrow::Status::Invalid(
                "block_num() cannot see the block of a SELECT DISTINCT's rows: add block_num() "
                "to its select list");
          }
          need = false;
        }
      }
    }
    if (added) *added = need;

    // Own expressions: select list (bare items keep their names), clauses, and
    // the expressions inside the FROM (join conditions, table function arguments).
    for (auto& item : node["select_list"]) {
      const bool bare_call = IsBlockNumCall(item) && Str(item, "alias").empty();
      const bool bare_column = IsBlockNumColumn(item) && Str(item, "alias").empty();
      ARROW_RETURN_NOT_OK(Replace(item, scope));
      if (bare_call) item["alias"] = kBlockNumCall;
      if (bare_column && Str(item, "alias").empty()) item["alias"] = kBlockNumColumn;
    }
    for (const char* key : {"where_clause", "group_expressions", "having", "qualify", "modifiers"}) {
      if (json* e = MutableField(node, key)) ARROW_RETURN_NOT_OK(Replace(*e, scope));
    }
    if (json* from = MutableField(node, "from_table")) ARROW_RETURN_NOT_OK(FromExpressions(*from, scope));
    if (need) {
      if (hidden.is_null()) {
        ARROW_ASSIGN_OR_RAISE(hidden, BlockOf(scope));
        if (IsAggregating(node)) hidden = tree::Call("max", {std::move(hidden)});
      } else {
        ARROW_RETURN_NOT_OK(Replace(hidden, scope));
      }
    }

    // Subqueries in expressions (they may name our leaves' blocks), then the leaves.
    for (const char* key : {"select_list", "where_clause", "group_expressions", "having",
                            "qualify", "modifiers"}) {
      if (json* e = MutableField(node, key)) ARROW_RETURN_NOT_OK(Expressions(*e, &scope));
    }
    if (json* from = MutableField(node, "from_table")) {
      ARROW_RETURN_NOT_OK(FromSubqueries(*from, &scope));
    }
    for (auto& leaf : scope.leaves) {
      if (leaf.kind != Leaf::kSubquery) continue;
      if (json* n = SubqueryNode(leaf)) ARROW_RETURN_NOT_OK(Node(*n, parent, leaf.hidden));
    }

    // Every * over a leaf that now carries the hidden column leaves it out.
    for (auto& item : node["select_list"]) {
      if (Str(item, "class") != "STAR") continue;
      const std::string rel = Lower(Str(item, "relation_name"));
      bool covers_hidden = false;
      for (const auto& leaf : scope.leaves) {
        covers_hidden = covers_hidden || (leaf.hidden && (rel.empty() || rel == leaf.name));
      }
      if (covers_hidden) item["exclude_list"].push_back(kBlockColumn);
    }
    if (need) {
      hidden["alias"] = kBlockColumn;
      node["select_list"].push_back(std::move(hidden));
    }
    return arrow::Status::OK();
  }

  // Expressions inside FROM items of this scope (join conditions, function args).
  arrow::Status FromExpressions(json& ref, Scope& scope) {
    const std::string type = Str(ref, "type");
    if (type == "JOIN") {
      for (const char* side : {"left", "right"}) {
        if (json* c = MutableField(ref, side)) ARROW_RETURN_NOT_OK(FromExpressions(*c, scope));
      }
      if (json* c = MutableField(ref, "condition")) ARROW_RETURN_NOT_OK(Replace(*c, scope));
      return arrow::Status::OK();
    }
    if (type == "TABLE_FUNCTION") {
      if (json* f = MutableField(ref, "function")) ARROW_RETURN_NOT_OK(Replace(*f, scope));
    }
    return arrow::Status::OK();
  }

  arrow::Status FromSubqueries(json& ref, const Scope* scope) {
    const std::string type = Str(ref, "type");
    if (type == "JOIN") {
      for (const char* side : {"left", "right"}) {
        if (json* c = MutableField(ref, side)) ARROW_RETURN_NOT_OK(FromSubqueries(*c, scope));
      }
      if (json* c = MutableField(ref, "condition")) ARROW_RETURN_NOT_OK(Expressions(*c, scope));
      return arrow::Status::OK();
    }
    if (type == "TABLE_FUNCTION" || type == "EXPRESSION_LIST") return Expressions(ref, scope);
    return arrow::Status::OK();
  }

  const Relations& relations_;
  const BlockNameOptions& options_;
  int depth_ = 0;
  int unnamed_ = 0;
};

}  // namespace

bool UsesBlockNames(const nlohmann::json& tree) { return Uses(tree); }

arrow::Status RewriteBlockNames(nlohmann::json* node, const Relations& relations,
                                const BlockNameOptions& options, bool* top_block_added) {
  if (!relations.chain_table || !options.is_aggregate) {
    return arrow::Status::Invalid("RewriteBlockNames: relations and is_aggregate are required");
  }
  Rewriter r(relations, options);
  bool added = false;
  ARROW_RETURN_NOT_OK(r.Node(*node, nullptr, options.top_block, /*soft=*/true, &added));
  if (top_block_added) *top_block_added = added;
  return arrow::Status::OK();
}

}  // namespace sluice::sql
