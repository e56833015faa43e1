#include "sql/incremental.h"

#include <cctype>
#include <map>
#include <memory>
#include <utility>

#include "sql/duckdb_handles.h"

namespace sluice::sql {

namespace {

using json = nlohmann::json;

constexpr int kMaxDepth = 512;  // nesting of query nodes, views and CTE references

template <typename... Args>
arrow::Status NonIncremental(Args&&... args) {
  return arrow::Status::Invalid("NonIncrementalOp: ", std::forward<Args>(args)...);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The member `key` of an object, or null when absent or JSON null.
const json* Field(const json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}
std::string Str(const json& o, const char* key) {
  const json* f = Field(o, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}
bool Bool(const json& o, const char* key) {
  const json* f = Field(o, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}
const json& Array(const json& o, const char* key) {
  static const json empty = json::array();
  const json* f = Field(o, key);
  return f != nullptr && f->is_array() ? *f : empty;
}

// How a function is named in messages: upper case, COUNT(*) as COUNT.
std::string DisplayName(const std::string& function_name) {
  std::string name = Lower(function_name);
  if (name == "count_star") name = "count";
  return Upper(name);
}

bool IsColumnRef(const json& e) { return Str(e, "class") == "COLUMN_REF"; }

// A reference to a column named block_num: `block_num`, `t.block_num`, `s.t.block_num`.
bool IsBlockNumRef(const json& e) {
  if (!IsColumnRef(e)) return false;
  const json& names = Array(e, "column_names");
  return !names.empty() && names.back().is_string() &&
         Lower(names.back().get<std::string>()) == "block_num";
}

// The relation a column reference names (lower case), "" when unqualified.
std::string Qualifier(const json& column_ref) {
  const json& names = Array(column_ref, "column_names");
  if (names.size() < 2 || !names[names.size() - 2].is_string()) return "";
  return Lower(names[names.size() - 2].get<std::string>());
}

// The query node of a json_serialize_sql output, of a statement, or a node itself.
arrow::Result<const json*> RootNode(const json& tree) {
  if (!tree.is_object()) return arrow::Status::Invalid("parse tree is not a JSON object");
  if (Bool(tree, "error")) return arrow::Status::Invalid(Str(tree, "error_message"));
  if (tree.contains("statements")) {
    const json& statements = Array(tree, "statements");
    if (statements.size() != 1) {
      return arrow::Status::Invalid("a query must be exactly one SELECT statement, got ",
                                    statements.size());
    }
    const json* node = Field(statements[0], "node");
    if (node == nullptr) return arrow::Status::Invalid("parse tree statement has no node");
    return node;
  }
  if (const json* node = Field(tree, "node")) return node;
  if (tree.contains("type")) return &tree;
  return arrow::Status::Invalid("not a parse tree of json_serialize_sql");
}

// One CTE in scope; `parent` is both the enclosing scope for lookups and the scope
// its body was defined in (a CTE sees the CTEs before it, not itself).
struct Scope {
  std::string name;  // lower case
  const json* body;  // query node
  const Scope* parent;
};

const Scope* LookupCte(const Scope* scope, const std::string& name) {
  for (; scope != nullptr; scope = scope->parent) {
    if (scope->name == name) return scope;
  }
  return nullptr;
}

// What the walk learns about a FROM item or query node.
struct Summary {
  int tables = 0;        // base tables read through FROM (not expression subqueries)
  bool aligned = true;   // every join below equates block_num of its two sides
  std::set<std::string> names;  // relation names it exposes (lower case)
};

enum class Grouping { kNone, kBlock, kOther };

class Checker {
 public:
  Checker(const IncrementalContext& ctx, IncrementalInfo* info) : ctx_(ctx), info_(info) {}

  arrow::Result<Summary> Node(const json& node, const Scope* scope, bool top) {
    if (++depth_ > kMaxDepth) return arrow::Status::Invalid("query nests too deeply");
    auto result = NodeImpl(node, scope, top);
    --depth_;
    return result;
  }

 private:
  bool recording() const { return quiet_ == 0 && info_ != nullptr; }

  // A node checked for its own sake but read by nothing (yet): a CTE's definition.
  arrow::Status CheckQuietly(const json& node, const Scope* scope) {
    ++quiet_;
    auto r = Node(node, scope, /*top=*/false);
    --quiet_;
    return r.status();
  }

  arrow::Result<Summary> NodeImpl(const json& node, const Scope* scope, bool top) {
    // CTEs: each checked where defined, then expanded at each reference.
    std::vector<std::unique_ptr<Scope>> frames;
    const Scope* inner = scope;
    if (const json* cte_map = Field(node, "cte_map")) {
      for (const auto& entry : Array(*cte_map, "map")) {
        const json* value = Field(entry, "value");
        const json* query = value ? Field(*value, "query") : nullptr;
        const json* body = query ? Field(*query, "node") : nullptr;
        if (body == nullptr) continue;
        ARROW_RETURN_NOT_OK(CheckQuietly(*body, inner));
        frames.push_back(std::make_unique<Scope>(Scope{Lower(Str(entry, "key")), body, inner}));
        inner = frames.back().get();
      }
    }
    const std::string type = Str(node, "type");
    if (type == "SELECT_NODE") return Select(node, inner, top);
    if (type == "SET_OPERATION_NODE") return SetOperation(node, inner, top);
    if (type == "RECURSIVE_CTE_NODE") {
      return NonIncremental("Recursive query requires state across batches");
    }
    if (type == "CTE_NODE") {  // a materialized CTE; its child holds the query proper
      const json* child = Field(node, "child");
      if (child == nullptr) return arrow::Status::Invalid("parse tree CTE_NODE has no child");
      const json* query = Field(node, "query");
      bool defined_in_child = false;
      if (const json* child_ctes = Field(*child, "cte_map")) {
        for (const auto& entry : Array(*child_ctes, "map")) {
          if (Lower(Str(entry, "key")) == Lower(Str(node, "cte_name"))) defined_in_child = true;
        }
      }
      if (query != nullptr && !defined_in_child) ARROW_RETURN_NOT_OK(CheckQuietly(*query, inner));
      Summary none;
      ARROW_RETURN_NOT_OK(Modifiers(node, inner, top, false, nullptr, none));
      return Node(*child, inner, top);
    }
    return NonIncremental("query node ", type, " is not supported in streaming queries");
  }

  arrow::Result<Summary> Select(const json& node, const Scope* scope, bool top) {
    Summary from;
    if (const json* f = Field(node, "from_table")) {
      ARROW_ASSIGN_OR_RAISE(from, Ref(*f, scope, Field(node, "where_clause")));
    }
    if (const json* sample = Field(node, "sample")) ARROW_RETURN_NOT_OK(Sample(*sample));
    if (const json* where = Field(node, "where_clause")) {
      ARROW_RETURN_NOT_OK(Expr(*where, scope, false));
    }
    const json& select_list = Array(node, "select_list");
    Grouping grouping = GroupingOf(node);
    if (grouping == Grouping::kBlock && !from.aligned) {
      return NonIncremental(
          "GROUP BY block_num over a join requires the join condition to equate block_num of "
          "both sides, so that each block's groups close with the block");
    }
    const bool aggregates_ok = grouping == Grouping::kBlock;
    for (const auto& item : select_list) ARROW_RETURN_NOT_OK(Expr(item, scope, aggregates_ok));
    if (const json* having = Field(node, "having")) {
      ARROW_RETURN_NOT_OK(Expr(*having, scope, aggregates_ok));
    }
    if (const json* qualify = Field(node, "qualify")) {
      ARROW_RETURN_NOT_OK(Expr(*qualify, scope, aggregates_ok));
    }
    for (const auto& g : Array(node, "group_expressions")) {
      ARROW_RETURN_NOT_OK(Expr(g, scope, false));
    }
    if (grouping == Grouping::kOther) {
      return NonIncremental(
          "GROUP BY requires maintaining group state across batches unless one of its keys is "
          "block_num");
    }
    bool block_distinct = false;
    ARROW_RETURN_NOT_OK(Modifiers(node, scope, top, aggregates_ok, &block_distinct, from));
    if (recording() && (grouping == Grouping::kBlock || block_distinct)) {
      info_->has_block_grouping = true;
    }
    return from;
  }

  arrow::Result<Summary> SetOperation(const json& node, const Scope* scope, bool top) {
    const std::string op = Str(node, "setop_type");
    const bool all = Bool(node, "setop_all");
    if (op == "UNION" || op == "UNION_BY_NAME") {
      if (!all) {
        return NonIncremental(op == "UNION" ? "UNION" : "UNION BY NAME",
                              " (without ALL) requires global deduplication state");
      }
    } else if (op == "EXCEPT" || op == "INTERSECT") {
      return NonIncremental(op, all ? " ALL" : "",
                            " requires comparing rows with all rows of the other side across "
                            "batches");
    } else {
      return NonIncremental("set operation ", op, " is not supported in streaming queries");
    }
    std::vector<const json*> children;
    for (const auto& c : Array(node, "children")) children.push_back(&c);
    if (children.empty()) {
      for (const char* side : {"left", "right"}) {
        if (const json* c = Field(node, side)) children.push_back(c);
      }
    }
    Summary s;
    for (const json* c : children) {
      ARROW_ASSIGN_OR_RAISE(Summary cs, Node(*c, scope, false));
      s.tables += cs.tables;
      s.aligned = s.aligned && cs.aligned;
    }
    ARROW_RETURN_NOT_OK(Modifiers(node, scope, top, false, nullptr, s));
    return s;
  }

  // ORDER BY (rejected at the top level only), LIMIT/OFFSET (anywhere), DISTINCT
  // (unless keyed by block_num; only SELECT nodes pass `block_distinct`).
  arrow::Status Modifiers(const json& node, const Scope* scope, bool top, bool aggregates_ok,
                          bool* block_distinct, const Summary& from) {
    for (const auto& m : Array(node, "modifiers")) {
      const std::string type = Str(m, "type");
      if (type == "DISTINCT_MODIFIER") {
        const json& targets = Array(m, "distinct_on_targets");
        const json& select_list = Array(node, "select_list");
        bool keyed = false;
        if (!targets.empty()) {
          for (const auto& t : targets) keyed = keyed || IsBlockKey(t, select_list);
        } else {
          for (const auto& item : select_list) keyed = keyed || IsBlockNumRef(item);
        }
        if (!keyed || block_distinct == nullptr) {
          if (!targets.empty()) {
            return NonIncremental(
                "DISTINCT ON requires global deduplication state unless one of its keys is "
                "block_num");
          }
          return NonIncremental("DISTINCT requires global deduplication state");
        }
        if (!from.aligned) {
          return NonIncremental(
              targets.empty() ? "DISTINCT" : "DISTINCT ON",
              " block_num over a join requires the join condition to equate block_num of both "
              "sides, so that each block's rows close with the block");
        }
        *block_distinct = true;
        for (const auto& t : targets) ARROW_RETURN_NOT_OK(Expr(t, scope, false));
      } else if (type == "LIMIT_MODIFIER" || type == "LIMIT_PERCENT_MODIFIER") {
        if (Field(m, "limit") == nullptr && Field(m, "offset") != nullptr) {
          return NonIncremental("OFFSET requires counting rows across batches");
        }
        return NonIncremental("LIMIT requires counting rows across batches");
      } else if (type == "ORDER_MODIFIER") {
        if (top) return NonIncremental("ORDER BY requires seeing all rows before sorting");
        for (const auto& o : Array(m, "orders")) {
          if (const json* e = Field(o, "expression")) {
            ARROW_RETURN_NOT_OK(Expr(*e, scope, aggregates_ok));
          }
        }
      } else {
        return NonIncremental("query modifier ", type, " is not supported in streaming queries");
      }
    }
    return arrow::Status::OK();
  }

  // Whether a grouping/deduplication key is the column block_num: directly, by
  // position (GROUP BY 1) or through a select alias of it (GROUP BY b).
  bool IsBlockKey(const json& key, const json& select_list) const {
    if (IsBlockNumRef(key)) {
      if (!Qualifier(key).empty()) return true;
      // An unqualified `block_num` could bind to a select alias of another expression.
      for (const auto& item : select_list) {
        if (Lower(Str(item, "alias")) == "block_num" && !IsBlockNumRef(item)) return false;
      }
      return true;
    }
    if (Str(key, "class") == "CONSTANT") {
      const json* value = Field(key, "value");
      const json* v = value ? Field(*value, "value") : nullptr;
      if (v != nullptr && v->is_number_integer()) {
        int64_t k = v->get<int64_t>();
        if (k >= 1 && static_cast<size_t>(k) <= select_list.size()) {
          return IsBlockNumRef(select_list[k - 1]);
        }
      }
      return false;
    }
    if (IsColumnRef(key) && Array(key, "column_names").size() == 1 &&
        Array(key, "column_names")[0].is_string()) {
      std::string name = Lower(Array(key, "column_names")[0].get<std::string>());
      for (const auto& item : select_list) {
        if (Lower(Str(item, "alias")) == name) return IsBlockNumRef(item);
      }
    }
    return false;
  }

  Grouping GroupingOf(const json& node) const {
    const json& select_list = Array(node, "select_list");
    if (Str(node, "aggregate_handling") == "FORCE_AGGREGATES") {  // GROUP BY ALL
      bool any_key = false;
      for (const auto& item : select_list) {
        if (ContainsAggregate(item)) continue;
        any_key = true;
        if (IsBlockKey(item, select_list)) return Grouping::kBlock;
      }
      return any_key ? Grouping::kOther : Grouping::kNone;
    }
    const json& groups = Array(node, "group_expressions");
    if (groups.empty()) return Grouping::kNone;
    // block_num must be a key of every grouping set (ROLLUP/CUBE have a global one).
    const json& sets = Array(node, "group_sets");
    for (size_t i = 0; i < groups.size(); ++i) {
      if (!IsBlockKey(groups[i], select_list)) continue;
      bool in_every_set = true;
      for (const auto& set : sets) {
        bool found = false;
        for (const auto& index : set) {
          found = found || (index.is_number_unsigned() && index.get<size_t>() == i);
        }
        in_every_set = in_every_set && found;
      }
      if (in_every_set) return Grouping::kBlock;
    }
    return Grouping::kOther;
  }

  // Whether an expression calls an aggregate or window function outside a subquery.
  bool ContainsAggregate(const json& e) const {
    if (e.is_object()) {
      const std::string cls = Str(e, "class");
      if (cls == "SUBQUERY") return false;
      if (cls == "WINDOW") return true;
      if (cls == "FUNCTION" && ctx_.is_aggregate(Lower(Str(e, "function_name")))) return true;
      for (const auto& [k, v] : e.items()) {
        if (ContainsAggregate(v)) return true;
      }
    } else if (e.is_array()) {
      for (const auto& v : e) {
        if (ContainsAggregate(v)) return true;
      }
    }
    return false;
  }

  arrow::Status Expr(const json& e, const Scope* scope, bool aggregates_ok) {
    if (e.is_array()) {
      for (const auto& v : e) ARROW_RETURN_NOT_OK(Expr(v, scope, aggregates_ok));
      return arrow::Status::OK();
    }
    if (!e.is_object()) return arrow::Status::OK();
    const std::string cls = Str(e, "class");
    if (cls == "SUBQUERY") {
      if (recording()) info_->has_subquery_expression = true;
      if (const json* child = Field(e, "child")) ARROW_RETURN_NOT_OK(Expr(*child, scope, aggregates_ok));
      const json* sub = Field(e, "subquery");
      const json* node = sub ? Field(*sub, "node") : nullptr;
      if (node != nullptr) return Node(*node, scope, false).status();
      return arrow::Status::OK();
    }
    if (cls == "WINDOW") {
      return NonIncremental("Window function ", DisplayName(Str(e, "function_name")),
                            " requires state and sorting across batches");
    }
    if (cls == "FUNCTION" && !aggregates_ok &&
        ctx_.is_aggregate(Lower(Str(e, "function_name")))) {
      return NonIncremental("Aggregate function ", DisplayName(Str(e, "function_name")),
                            " requires maintaining state across batches");
    }
    if (cls.empty() && e.contains("select_list")) {  // a query node (defensive)
      return Node(e, scope, false).status();
    }
    for (const auto& [k, v] : e.items()) ARROW_RETURN_NOT_OK(Expr(v, scope, aggregates_ok));
    return arrow::Status::OK();
  }

  arrow::Status Sample(const json& sample) {
    if (Lower(Str(sample, "method")) == "reservoir") {
      return NonIncremental(
          "SAMPLE of a fixed number of rows (reservoir sampling) requires state across batches");
    }
    return arrow::Status::OK();
  }

  // `where`: the WHERE clause of the SELECT whose FROM this is (its conjuncts hold
  // for every join of that FROM), or null.
  arrow::Result<Summary> Ref(const json& ref, const Scope* scope, const json* where) {
    const std::string type = Str(ref, "type");
    const std::string alias = Lower(Str(ref, "alias"));
    if (const json* sample = Field(ref, "sample")) ARROW_RETURN_NOT_OK(Sample(*sample));
    if (type == "BASE_TABLE") return BaseTable(ref, scope);
    if (type == "JOIN") return Join(ref, scope, where);
    if (type == "SUBQUERY") {
      const json* sub = Field(ref, "subquery");
      const json* node = sub ? Field(*sub, "node") : nullptr;
      if (node == nullptr) return arrow::Status::Invalid("parse tree SUBQUERY has no node");
      ARROW_ASSIGN_OR_RAISE(Summary s, Node(*node, scope, false));
      s.names = {alias};
      return s;
    }
    if (type == "TABLE_FUNCTION") {
      Summary s;
      if (const json* fn = Field(ref, "function")) {
        ARROW_RETURN_NOT_OK(Expr(*fn, scope, false));
        s.names = {alias.empty() ? Lower(Str(*fn, "function_name")) : alias};
      }
      return s;
    }
    if (type == "EXPRESSION_LIST") {
      ARROW_RETURN_NOT_OK(Expr(Array(ref, "values"), scope, false));
      Summary s;
      s.names = {alias};
      return s;
    }
    if (type == "EMPTY") return Summary{};
    if (type == "PIVOT") {
      if (!Array(ref, "aggregates").empty()) {
        return NonIncremental("PIVOT requires aggregating across batches");
      }
      const json* source = Field(ref, "source");
      if (source == nullptr) return arrow::Status::Invalid("parse tree PIVOT has no source");
      ARROW_ASSIGN_OR_RAISE(Summary s, Ref(*source, scope, where));  // UNPIVOT: row by row
      if (!alias.empty()) s.names = {alias};
      return s;
    }
    if (type == "SHOW_REF") {
      if (Str(ref, "show_type") == "SUMMARY") {
        return NonIncremental("SUMMARIZE requires aggregating all rows across batches");
      }
      return NonIncremental(Str(ref, "show_type"),
                            " is not a query over blocks and cannot run as a streaming query");
    }
    return NonIncremental("FROM item ", type, " is not supported in streaming queries");
  }

  arrow::Result<Summary> BaseTable(const json& ref, const Scope* scope) {
    TableReference t{Str(ref, "catalog_name"), Str(ref, "schema_name"), Str(ref, "table_name"),
                     Str(ref, "alias")};
    Summary s;
    s.names = {Lower(t.alias.empty() ? t.table : t.alias)};
    if (t.catalog.empty() && t.schema.empty()) {
      if (const Scope* cte = LookupCte(scope, Lower(t.table))) {
        ARROW_ASSIGN_OR_RAISE(Summary body, Node(*cte->body, cte->parent, false));
        s.tables = body.tables;
        s.aligned = body.aligned;
        return s;
      }
    }
    std::optional<json> view;
    if (ctx_.view_tree) view = ctx_.view_tree(t.schema, t.table);
    if (!view.has_value()) {
      if (recording()) info_->tables.push_back(t);
      s.tables = 1;
      return s;
    }
    const std::string key = t.schema.empty() ? t.table : t.schema + "." + t.table;
    for (const auto& v : view_stack_) {
      if (Lower(v) == Lower(key)) return arrow::Status::Invalid("view ", key, " refers to itself");
    }
    auto root = RootNode(*view);
    if (!root.ok()) return arrow::Status::Invalid("view ", key, ": ", root.status().message());
    if (recording()) info_->views.push_back(t);
    view_stack_.push_back(key);
    auto body = Node(**root, nullptr, false);  // a view sees none of the query's CTEs
    view_stack_.pop_back();
    ARROW_RETURN_NOT_OK(body.status());
    s.tables = body->tables;
    s.aligned = body->aligned;
    return s;
  }

  arrow::Result<Summary> Join(const json& ref, const Scope* scope, const json* where) {
    const std::string ref_type = Str(ref, "ref_type");
    std::string join_type = Str(ref, "join_type");
    if (ref_type == "ASOF") {
      return NonIncremental(
          "ASOF JOIN requires finding the nearest row of the other side across batches");
    }
    if (ref_type == "POSITIONAL") {
      return NonIncremental("POSITIONAL JOIN requires row positions across batches");
    }
    if (ref_type != "REGULAR" && ref_type != "CROSS" && ref_type != "NATURAL") {
      return NonIncremental(ref_type, " JOIN is not supported in streaming queries");
    }
    if (join_type != "INNER") {
      if (join_type == "OUTER") join_type = "FULL";
      if (join_type == "LEFT" || join_type == "RIGHT" || join_type == "FULL") {
        return NonIncremental(join_type, " JOIN requires tracking unmatched rows across batches");
      }
      if (join_type == "SEMI" || join_type == "RIGHT_SEMI") {
        return NonIncremental(
            "SEMI JOIN requires matching rows against all rows of the other side across "
            "batches");
      }
      if (join_type == "ANTI" || join_type == "RIGHT_ANTI") {
        return NonIncremental(
            "ANTI JOIN requires knowing that no matching row arrives in a later batch");
      }
      return NonIncremental(join_type, " JOIN is not supported in streaming queries");
    }
    const json* left = Field(ref, "left");
    const json* right = Field(ref, "right");
    if (left == nullptr || right == nullptr) {
      return arrow::Status::Invalid("parse tree JOIN lacks a side");
    }
    ARROW_ASSIGN_OR_RAISE(Summary l, Ref(*left, scope, where));
    ARROW_ASSIGN_OR_RAISE(Summary r, Ref(*right, scope, where));
    const json* condition = Field(ref, "condition");
    if (condition != nullptr) ARROW_RETURN_NOT_OK(Expr(*condition, scope, false));
    const bool tables_on_both_sides = l.tables > 0 && r.tables > 0;
    if (tables_on_both_sides && recording()) info_->has_join = true;
    Summary s;
    s.tables = l.tables + r.tables;
    s.names = l.names;
    s.names.insert(r.names.begin(), r.names.end());
    s.aligned = l.aligned && r.aligned &&
                (!tables_on_both_sides || EquatesBlockNum(ref, condition, where, l.names, r.names));
    return s;
  }

  // Whether a join's USING has block_num, or its ON (or the enclosing WHERE) has a
  // conjunct `x.block_num = y.block_num` with x on one side and y on the other.
  static bool EquatesBlockNum(const json& ref, const json* condition, const json* where,
                              const std::set<std::string>& left,
                              const std::set<std::string>& right) {
    for (const auto& c : Array(ref, "using_columns")) {
      if (c.is_string() && Lower(c.get<std::string>()) == "block_num") return true;
    }
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
      if (a == nullptr || b == nullptr || !IsBlockNumRef(*a) || !IsBlockNumRef(*b)) continue;
      std::string qa = Qualifier(*a), qb = Qualifier(*b);
      if (qa.empty() || qb.empty()) continue;  // unqualified: side unknown
      if ((left.count(qa) && right.count(qb)) || (left.count(qb) && right.count(qa))) return true;
    }
    return false;
  }

  const IncrementalContext& ctx_;
  IncrementalInfo* info_;
  int quiet_ = 0;
  int depth_ = 0;
  std::vector<std::string> view_stack_;
};

// The functions a macro's definition calls outside subqueries (lower case).
void CalledFunctions(const json& e, std::set<std::string>* out) {
  if (e.is_object()) {
    const std::string cls = Str(e, "class");
    if (cls == "SUBQUERY") return;
    if (cls == "FUNCTION") out->insert(Lower(Str(e, "function_name")));
    for (const auto& [k, v] : e.items()) CalledFunctions(v, out);
  } else if (e.is_array()) {
    for (const auto& v : e) CalledFunctions(v, out);
  }
}

}  // namespace

arrow::Status CheckIncremental(const nlohmann::json& tree, const IncrementalContext& ctx,
                               IncrementalInfo* info) {
  if (!ctx.is_aggregate) return arrow::Status::Invalid("IncrementalContext::is_aggregate is not set");
  ARROW_ASSIGN_OR_RAISE(const json* root, RootNode(tree));
  if (info != nullptr) *info = IncrementalInfo{};
  Checker checker(ctx, info);
  ARROW_ASSIGN_OR_RAISE(auto summary, checker.Node(*root, nullptr, /*top=*/true));
  if (info != nullptr) info->joins_on_block_num = summary.aligned;
  return arrow::Status::OK();
}

arrow::Result<std::set<std::string>> AggregateFunctionNames(duckdb_connection conn) {
  static constexpr const char* kQuery =
      "SELECT function_name, function_type, "
      "CASE WHEN function_type = 'macro' "
      "THEN json_serialize_sql('SELECT ' || macro_definition) END "
      "FROM duckdb_functions() WHERE function_type IN ('aggregate', 'macro')";
  Result res;
  if (duckdb_query(conn, kQuery, res.out()) != DuckDBSuccess) return ResultStatus(res.out());
  auto text = [&](idx_t col, idx_t row) -> std::optional<std::string> {
    char* v = duckdb_value_varchar(res.out(), col, row);
    if (v == nullptr) return std::nullopt;
    std::string s(v);
    duckdb_free(v);
    return s;
  };
  std::set<std::string> aggregates;
  std::multimap<std::string, std::set<std::string>> macros;  // name → functions it calls
  const idx_t rows = duckdb_row_count(res.out());
  for (idx_t r = 0; r < rows; ++r) {
    auto name = text(0, r);
    auto type = text(1, r);
    if (!name || !type) continue;
    if (*type == "aggregate") {
      aggregates.insert(Lower(*name));
      continue;
    }
    auto tree_text = text(2, r);
    if (!tree_text) continue;
    json tree = json::parse(*tree_text, nullptr, /*allow_exceptions=*/false);
    if (tree.is_discarded() || Bool(tree, "error")) continue;
    std::set<std::string> called;
    CalledFunctions(tree, &called);
    macros.emplace(Lower(*name), std::move(called));
  }
  // A macro is an aggregate when it calls one (macros may call macros): fixpoint.
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& [name, called] : macros) {
      if (aggregates.count(name)) continue;
      for (const auto& f : called) {
        if (aggregates.count(f)) {
          aggregates.insert(name);
          changed = true;
          break;
        }
      }
    }
  }
  return aggregates;
}

}  // namespace sluice::sql
