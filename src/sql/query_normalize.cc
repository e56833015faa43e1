#include "sql/query_normalize.h"

#include <memory>
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

// One CTE in scope; `parent` is the scope its body was defined in.
struct Cte {
  std::string name;  // lower case
  const json* body;  // query node
  json aliases;      // column aliases, `WITH c(a, b) AS …`
  const Cte* parent;
};

const Cte* Lookup(const Cte* scope, const std::string& name) {
  for (; scope != nullptr; scope = scope->parent) {
    if (scope->name == name) return scope;
  }
  return nullptr;
}

bool ContainsSubquery(const json& e) {
  return tree::ContainsNode(e, [](const json& x) { return Str(x, "class") == "SUBQUERY"; });
}

// The conjuncts of an AND tree.
void Conjuncts(json e, std::vector<json>* out) {
  if (Str(e, "class") == "CONJUNCTION" && Str(e, "type") == "CONJUNCTION_AND") {
    for (auto& c : e["children"]) Conjuncts(std::move(c), out);
    return;
  }
  out->push_back(std::move(e));
}

// The name a FROM item is referred to by, when it is a single named relation.
std::string RelationName(const json& ref) {
  std::string alias = Str(ref, "alias");
  if (!alias.empty()) return alias;
  if (Str(ref, "type") == "BASE_TABLE") return Str(ref, "table_name");
  return "";
}

class Normalizer {
 public:
  Normalizer(const Relations& relations, const NormalizeOptions& options)
      : relations_(relations), options_(options) {}

  arrow::Status Node(json& node, const Cte* scope) {
    if (++depth_ > kMaxDepth) return arrow::Status::Invalid("query nests too deeply");
    auto st = NodeImpl(node, scope);
    --depth_;
    return st;
  }

 private:
  arrow::Status NodeImpl(json& node, const Cte* scope) {
    // CTEs: in scope for the node, expanded at each reference, then dropped.
    std::vector<std::unique_ptr<Cte>> frames;
    const Cte* inner = scope;
    bool recursive = false;
    if (json* cte_map = MutableField(node, "cte_map")) {
      for (const auto& entry : Array(*cte_map, "map")) {
        const json* value = Field(entry, "value");
        const json* query = value ? Field(*value, "query") : nullptr;
        const json* body = query ? Field(*query, "node") : nullptr;
        if (body == nullptr) continue;
        if (Str(*body, "type") == "RECURSIVE_CTE_NODE") recursive = true;
        json aliases = value && Field(*value, "aliases") ? (*value)["aliases"] : json::array();
        frames.push_back(std::make_unique<Cte>(
            Cte{Lower(Str(entry, "key")), body, std::move(aliases), inner}));
        inner = frames.back().get();
      }
    }
    if (recursive) return arrow::Status::OK();  // refused by the streaming check
    const std::string type = Str(node, "type");
    if (type == "CTE_NODE") {  // a materialized CTE: `query` is its body, `child` the query
      const json* query = Field(node, "query");
      json* child = MutableField(node, "child");
      if (query == nullptr || child == nullptr) return arrow::Status::OK();
      Cte frame{Lower(Str(node, "cte_name")), query, json::array(), inner};
      json copy = *child;
      ARROW_RETURN_NOT_OK(Node(copy, &frame));
      node = std::move(copy);
      return arrow::Status::OK();
    }
    if (type == "SELECT_NODE") {
      ARROW_RETURN_NOT_OK(Select(node, inner));
    } else if (type == "SET_OPERATION_NODE") {
      for (const char* side : {"left", "right"}) {
        if (json* c = MutableField(node, side)) ARROW_RETURN_NOT_OK(Node(*c, inner));
      }
      if (json* children = MutableField(node, "children")) {
        for (auto& c : *children) ARROW_RETURN_NOT_OK(Node(c, inner));
      }
      ARROW_RETURN_NOT_OK(Expressions(node["modifiers"], inner));
    }
    if (json* cte_map = MutableField(node, "cte_map")) (*cte_map)["map"] = json::array();
    return arrow::Status::OK();
  }

  arrow::Status Select(json& node, const Cte* scope) {
    std::vector<json> predicates;  // conjuncts for the WHERE, from SEMI JOINs and ONs
    if (json* from = MutableField(node, "from_table")) {
      ARROW_RETURN_NOT_OK(Ref(*from, scope, &predicates));
    }
    for (const char* key : {"select_list", "where_clause", "group_expressions", "having",
                            "qualify", "modifiers"}) {
      if (json* e = MutableField(node, key)) ARROW_RETURN_NOT_OK(Expressions(*e, scope));
    }
    if (!predicates.empty()) {
      if (const json* where = Field(node, "where_clause")) predicates.insert(predicates.begin(), *where);
      node["where_clause"] = tree::And(std::move(predicates));
    }
    return arrow::Status::OK();
  }

  // The subqueries of expressions, normalized in this scope.
  arrow::Status Expressions(json& e, const Cte* scope) {
    arrow::Status st;
    tree::ForEachExpressionSubquery(e, [&](json& sub) {
      if (st.ok()) st = Node(sub, scope);
    });
    return st;
  }

  arrow::Status Ref(json& ref, const Cte* scope, std::vector<json>* predicates) {
    const std::string type = Str(ref, "type");
    if (type == "BASE_TABLE") return BaseTable(ref, scope);
    if (type == "SUBQUERY") {
      json* sub = MutableField(ref, "subquery");
      json* node = sub ? MutableField(*sub, "node") : nullptr;
      return node != nullptr ? Node(*node, scope) : arrow::Status::OK();
    }
    if (type == "JOIN") return Join(ref, scope, predicates);
    if (type == "PIVOT") {
      if (json* source = MutableField(ref, "source")) ARROW_RETURN_NOT_OK(Ref(*source, scope, predicates));
    }
    return Expressions(ref, scope);  // table functions, VALUES, PIVOT's expressions
  }

  arrow::Status BaseTable(json& ref, const Cte* scope) {
    const std::string catalog = Str(ref, "catalog_name");
    const std::string schema = Str(ref, "schema_name");
    const std::string table = Str(ref, "table_name");
    std::string alias = Str(ref, "alias");
    if (catalog.empty() && schema.empty()) {
      if (const Cte* cte = Lookup(scope, Lower(table))) {
        json body = *cte->body;
        ARROW_RETURN_NOT_OK(Node(body, cte->parent));
        json aliases = ref.contains("column_name_alias") && !Array(ref, "column_name_alias").empty()
                           ? ref["column_name_alias"]
                           : cte->aliases;
        json sample = ref.value("sample", json());
        ref = tree::SubqueryRef(std::move(body), alias.empty() ? table : alias, std::move(aliases));
        ref["sample"] = std::move(sample);
        return arrow::Status::OK();
      }
    }
    if (options_.inline_views && relations_.view_tree && catalog.empty()) {
      if (auto view = relations_.view_tree(schema, table)) {
        const std::string key = Lower(schema + "." + table);
        for (const auto& v : view_stack_) {
          if (v == key) return arrow::Status::Invalid("view ", schema, ".", table, " refers to itself");
        }
        ARROW_ASSIGN_OR_RAISE(const json* root, tree::RootNode(*view));
        json body = *root;
        view_stack_.push_back(key);
        auto st = Node(body, nullptr);  // a view sees none of the query's CTEs
        view_stack_.pop_back();
        ARROW_RETURN_NOT_OK(st);
        json aliases = ref.value("column_name_alias", json::array());
        json sample = ref.value("sample", json());
        ref = tree::SubqueryRef(std::move(body), alias.empty() ? table : alias, std::move(aliases));
        ref["sample"] = std::move(sample);
        return arrow::Status::OK();
      }
    }
    if (alias.empty() && relations_.chain_table(catalog, schema, table)) ref["alias"] = table;
    return arrow::Status::OK();
  }

  arrow::Status Join(json& ref, const Cte* scope, std::vector<json>* predicates) {
    for (const char* side : {"left", "right"}) {
      if (json* c = MutableField(ref, side)) ARROW_RETURN_NOT_OK(Ref(*c, scope, predicates));
    }
    if (json* condition = MutableField(ref, "condition")) {
      ARROW_RETURN_NOT_OK(Expressions(*condition, scope));
    }
    if (!options_.predicates_to_where) return arrow::Status::OK();
    const std::string join_type = Str(ref, "join_type");
    const std::string ref_type = Str(ref, "ref_type");
    if (join_type == "SEMI" || join_type == "RIGHT_SEMI") {
      const bool right_semi = join_type == "RIGHT_SEMI";
      json kept = ref[right_semi ? "right" : "left"];
      json other = ref[right_semi ? "left" : "right"];
      json condition = ref.value("condition", json());
      const json& using_columns = Array(ref, "using_columns");
      if (!using_columns.empty()) {
        const std::string k = RelationName(kept), o = RelationName(other);
        if (k.empty() || o.empty()) {
          return arrow::Status::Invalid(
              "a SEMI JOIN with USING between joins cannot stream; write its condition with ON");
        }
        std::vector<json> equal;
        for (const auto& c : using_columns) {
          const std::string name = c.get<std::string>();
          equal.push_back({{"class", "COMPARISON"},
                           {"type", "COMPARE_EQUAL"},
                           {"alias", ""},
                           {"query_location", 18446744073709551615ULL},
                           {"left", tree::ColumnRef({k, name})},
                           {"right", tree::ColumnRef({o, name})}});
        }
        condition = tree::And(std::move(equal));
      }
      predicates->push_back(tree::Exists(tree::SelectOneFrom(std::move(other), std::move(condition))));
      ref = std::move(kept);
      return arrow::Status::OK();
    }
    if (join_type == "INNER" && ref_type == "REGULAR") {
      json* condition = MutableField(ref, "condition");
      if (condition == nullptr || !ContainsSubquery(*condition)) return arrow::Status::OK();
      std::vector<json> all, kept;
      Conjuncts(std::move(*condition), &all);
      for (auto& c : all) (ContainsSubquery(c) ? predicates : &kept)->push_back(std::move(c));
      ref["condition"] = kept.empty() ? tree::BoolConstant(true) : tree::And(std::move(kept));
    }
    return arrow::Status::OK();
  }

  const Relations& relations_;
  const NormalizeOptions& options_;
  int depth_ = 0;
  std::vector<std::string> view_stack_;
};

}  // namespace

arrow::Status NormalizeQuery(nlohmann::json* node, const Relations& relations,
                             const NormalizeOptions& options) {
  if (!relations.chain_table) return arrow::Status::Invalid("Relations::chain_table is not set");
  Normalizer n(relations, options);
  return n.Node(*node, nullptr);
}

}  // namespace sluice::sql
