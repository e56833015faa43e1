#include "sql/incremental.h"

#include <map>
#include <memory>
#include <utility>

#include "sql/incremental_internal.h"
#include "sql/parse_tree.h"

namespace sluice::sql {

namespace {

using json = nlohmann::json;
using incremental::Grouping;
using incremental::Summary;
using tree::Array;
using tree::Bool;
using tree::Field;
using tree::IsColumnRef;
using tree::Lower;
using tree::Qualifier;
using tree::RootNode;
using tree::Str;
using tree::Upper;

constexpr int kMaxDepth = 512;  // nesting of query nodes, views and CTE references

template <typename... Args>
arrow::Status NonIncremental(Args&&... args) {
  return arrow::Status::Invalid("NonIncrementalOp: ", std::forward<Args>(args)...);
}

// How a function is named in messages: upper case, COUNT(*) as COUNT.
std::string DisplayName(const std::string& function_name) {
  std::string name = Lower(function_name);
  if (name == "count_star") name = "count";
  return Upper(name);
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
      ARROW_ASSIGN_OR_RAISE(int tables, Predicate(*where, scope, true));
      from.subquery_tables += tables;
      from.late = from.late || tables > 0;
    }
    const json& select_list = Array(node, "select_list");
    Grouping grouping = incremental::GroupingOf(node, from, [this](const json& e) { return ContainsAggregate(e); });
    if (grouping == Grouping::kLeafBlock) {
      return NonIncremental(
          "GROUP BY block_num over a join requires the join condition to equate block_num of "
          "both sides, so that each block's groups close with the block; group by block_num() "
          "(the later of the joined blocks) instead");
    }
    if (grouping == Grouping::kBlock && from.late) return LateGrouping("GROUP BY");
    const bool aggregates_ok = grouping == Grouping::kBlock;
    for (const auto& item : select_list) {
      ARROW_RETURN_NOT_OK(Expr(item, scope, aggregates_ok, "the select list"));
    }
    if (const json* having = Field(node, "having")) {
      ARROW_RETURN_NOT_OK(Expr(*having, scope, aggregates_ok, "HAVING"));
    }
    if (const json* qualify = Field(node, "qualify")) {
      ARROW_RETURN_NOT_OK(Expr(*qualify, scope, aggregates_ok, "QUALIFY"));
    }
    for (const auto& g : Array(node, "group_expressions")) {
      ARROW_RETURN_NOT_OK(Expr(g, scope, false, "GROUP BY"));
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
    // What a query reading this node as a subquery sees.
    return incremental::SelectOutput(select_list, from);
  }

  arrow::Status LateGrouping(const char* what) {
    return NonIncremental(what,
                          " block_num over EXISTS or IN (subquery) requires knowing a block's "
                          "rows when it closes, but a row can qualify when a later block adds "
                          "its match");
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
    bool first = true;
    for (const json* c : children) {
      ARROW_ASSIGN_OR_RAISE(Summary cs, Node(*c, scope, false));
      if (cs.tables == 0) {
        return NonIncremental(
            "a UNION ALL branch that reads no chain table has no block to send its rows in");
      }
      s.tables += cs.tables;
      s.subquery_tables += cs.subquery_tables;
      s.aligned = s.aligned && cs.aligned;
      s.late = s.late || cs.late;
      if (first) {
        s.output_names = cs.output_names;
        s.block_at = cs.block_at;
        if (op == "UNION_BY_NAME") s.block_columns = cs.block_columns;
        first = false;
      } else if (op == "UNION_BY_NAME") {
        std::set<std::string> both;
        for (const auto& c : cs.block_columns) {
          if (s.block_columns.count(c)) both.insert(c);
        }
        s.block_columns = std::move(both);
      } else if (s.block_at && cs.block_at && s.block_at->size() == cs.block_at->size()) {
        for (size_t i = 0; i < s.block_at->size(); ++i) (*s.block_at)[i] = (*s.block_at)[i] && (*cs.block_at)[i];
      } else {
        s.block_at.reset();
      }
    }
    if (op == "UNION" && s.block_at && s.output_names) {
      for (size_t i = 0; i < s.block_at->size(); ++i) {
        if ((*s.block_at)[i] && !(*s.output_names)[i].empty()) s.block_columns.insert((*s.output_names)[i]);
      }
    }
    ARROW_RETURN_NOT_OK(Modifiers(node, scope, top, false, nullptr, s));
    return s;
  }

  // ORDER BY (rejected at the top level only), LIMIT/OFFSET (anywhere), DISTINCT
  // (unless keyed by the rows' block; only SELECT nodes pass `block_distinct`).
  arrow::Status Modifiers(const json& node, const Scope* scope, bool top, bool aggregates_ok,
                          bool* block_distinct, const Summary& from) {
    for (const auto& m : Array(node, "modifiers")) {
      const std::string type = Str(m, "type");
      if (type == "DISTINCT_MODIFIER") {
        const json& targets = Array(m, "distinct_on_targets");
        const json& select_list = Array(node, "select_list");
        Grouping keyed = Grouping::kOther;
        auto consider = [&](Grouping g) {
          if (g == Grouping::kBlock || (g == Grouping::kLeafBlock && keyed != Grouping::kBlock)) {
            keyed = g;
          }
        };
        if (!targets.empty()) {
          for (const auto& t : targets) consider(incremental::KeyKind(t, select_list, from));
        } else {
          for (const auto& item : select_list) consider(incremental::KeyKind(item, select_list, from));
        }
        const char* what = targets.empty() ? "DISTINCT" : "DISTINCT ON";
        if (keyed == Grouping::kOther || block_distinct == nullptr) {
          if (!targets.empty()) {
            return NonIncremental(
                "DISTINCT ON requires global deduplication state unless one of its keys is "
                "block_num");
          }
          return NonIncremental("DISTINCT requires global deduplication state");
        }
        if (keyed == Grouping::kLeafBlock) {
          return NonIncremental(what,
                                " block_num over a join requires the join condition to equate "
                                "block_num of both sides, so that each block's rows close with "
                                "the block; use block_num() (the later of the joined blocks)");
        }
        if (from.late) return LateGrouping(what);
        *block_distinct = true;
        for (const auto& t : targets) ARROW_RETURN_NOT_OK(Expr(t, scope, false, "DISTINCT ON"));
      } else if (type == "LIMIT_MODIFIER" || type == "LIMIT_PERCENT_MODIFIER") {
        if (Field(m, "limit") == nullptr && Field(m, "offset") != nullptr) {
          return NonIncremental("OFFSET requires counting rows across batches");
        }
        return NonIncremental("LIMIT requires counting rows across batches");
      } else if (type == "ORDER_MODIFIER") {
        if (top) return NonIncremental("ORDER BY requires seeing all rows before sorting");
        for (const auto& o : Array(m, "orders")) {
          if (const json* e = Field(o, "expression")) {
            ARROW_RETURN_NOT_OK(Expr(*e, scope, aggregates_ok, "ORDER BY"));
          }
        }
      } else {
        return NonIncremental("query modifier ", type, " is not supported in streaming queries");
      }
    }
    return arrow::Status::OK();
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

  // A WHERE (or an inner join's ON): EXISTS / IN / ANY (subquery) over chain tables
  // may appear where more rows can only make it true — under AND and OR, not under
  // NOT. Returns the chain tables such subqueries read (> 0: rows may qualify late).
  arrow::Result<int> Predicate(const json& e, const Scope* scope, bool positive) {
    const std::string cls = Str(e, "class");
    const std::string type = Str(e, "type");
    if (cls == "CONJUNCTION" || (cls == "OPERATOR" && type == "OPERATOR_NOT")) {
      const bool p = cls == "CONJUNCTION" ? positive : !positive;
      int tables = 0;
      for (const auto& c : Array(e, "children")) {
        ARROW_ASSIGN_OR_RAISE(int t, Predicate(c, scope, p));
        tables += t;
      }
      return tables;
    }
    if (cls == "SUBQUERY") {
      const std::string kind = Str(e, "subquery_type");
      if (kind == "EXISTS" || kind == "ANY") {
        ARROW_ASSIGN_OR_RAISE(int tables, ExpressionSubquery(e, scope));
        if (tables == 0 || positive) return tables;
        if (kind == "EXISTS") {
          return NonIncremental(
              "NOT EXISTS requires knowing that no matching row arrives in a later block");
        }
        if (Str(e, "comparison_type") == "COMPARE_EQUAL") {
          return NonIncremental(
              "NOT IN (subquery) requires knowing that no matching row arrives in a later "
              "block");
        }
        return NonIncremental(
            "ALL (subquery) requires comparing with every row, including those of later "
            "blocks");
      }
    }
    ARROW_RETURN_NOT_OK(Expr(e, scope, false, "WHERE"));
    return 0;
  }

  // Check a subquery expression's query (and its ANY child); the tables it reads.
  arrow::Result<int> ExpressionSubquery(const json& e, const Scope* scope) {
    if (recording()) info_->has_subquery_expression = true;
    if (const json* child = Field(e, "child")) ARROW_RETURN_NOT_OK(Expr(*child, scope, false, "WHERE"));
    const json* sub = Field(e, "subquery");
    const json* node = sub ? Field(*sub, "node") : nullptr;
    if (node == nullptr) return 0;
    ARROW_ASSIGN_OR_RAISE(Summary s, Node(*node, scope, false));
    return s.tables + s.subquery_tables;
  }

  arrow::Status Expr(const json& e, const Scope* scope, bool aggregates_ok, const char* clause) {
    if (e.is_array()) {
      for (const auto& v : e) ARROW_RETURN_NOT_OK(Expr(v, scope, aggregates_ok, clause));
      return arrow::Status::OK();
    }
    if (!e.is_object()) return arrow::Status::OK();
    const std::string cls = Str(e, "class");
    if (cls == "SUBQUERY") {
      ARROW_ASSIGN_OR_RAISE(int tables, ExpressionSubquery(e, scope));
      if (tables > 0) {
        const std::string kind = Str(e, "subquery_type");
        if (kind == "SCALAR") {
          return NonIncremental(
              "a scalar subquery over chain tables requires its value over all blocks, which a "
              "later block may change (in ", clause, ")");
        }
        return NonIncremental(
            "a subquery over chain tables here (in ", clause,
            ") requires its answer over all blocks, which a later block may change; EXISTS and "
            "IN (subquery) stream in WHERE, under AND and OR");
      }
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
    for (const auto& [k, v] : e.items()) ARROW_RETURN_NOT_OK(Expr(v, scope, aggregates_ok, clause));
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
    const json& column_aliases = Array(ref, "column_name_alias");
    if (const json* sample = Field(ref, "sample")) ARROW_RETURN_NOT_OK(Sample(*sample));
    if (type == "BASE_TABLE") return BaseTable(ref, scope);
    if (type == "JOIN") return Join(ref, scope, where);
    if (type == "SUBQUERY") {
      const json* sub = Field(ref, "subquery");
      const json* node = sub ? Field(*sub, "node") : nullptr;
      if (node == nullptr) return arrow::Status::Invalid("parse tree SUBQUERY has no node");
      ARROW_ASSIGN_OR_RAISE(Summary s, Node(*node, scope, false));
      return incremental::OneLeaf(alias, std::move(s), column_aliases);
    }
    if (type == "TABLE_FUNCTION") {
      std::string name = alias;
      if (const json* fn = Field(ref, "function")) {
        ARROW_RETURN_NOT_OK(Expr(*fn, scope, false, "a table function's arguments"));
        if (name.empty()) name = Lower(Str(*fn, "function_name"));
      }
      return incremental::OneLeaf(name, Summary{}, column_aliases);
    }
    if (type == "EXPRESSION_LIST") {
      ARROW_RETURN_NOT_OK(Expr(Array(ref, "values"), scope, false, "VALUES"));
      return incremental::OneLeaf(alias, Summary{}, column_aliases);
    }
    if (type == "EMPTY") return Summary{};
    if (type == "PIVOT") {
      if (!Array(ref, "aggregates").empty()) {
        return NonIncremental("PIVOT requires aggregating across batches");
      }
      const json* source = Field(ref, "source");
      if (source == nullptr) return arrow::Status::Invalid("parse tree PIVOT has no source");
      ARROW_ASSIGN_OR_RAISE(Summary s, Ref(*source, scope, where));  // UNPIVOT: row by row
      s.block_columns.clear();
      for (const auto& leaf : s.leaves) s.block_columns.insert(leaf.block_columns.begin(), leaf.block_columns.end());
      return incremental::OneLeaf(alias, std::move(s), column_aliases);
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
    const std::string name = Lower(t.alias.empty() ? t.table : t.alias);
    const json& column_aliases = Array(ref, "column_name_alias");
    if (t.catalog.empty() && t.schema.empty()) {
      if (const Scope* cte = LookupCte(scope, Lower(t.table))) {
        ARROW_ASSIGN_OR_RAISE(Summary body, Node(*cte->body, cte->parent, false));
        return incremental::OneLeaf(name, std::move(body), column_aliases);
      }
    }
    std::optional<json> view;
    if (ctx_.view_tree) view = ctx_.view_tree(t.schema, t.table);
    if (!view.has_value()) {
      if (recording()) info_->tables.push_back(t);
      Summary s;
      s.tables = 1;
      s.block_columns = {"block_num", "_block_num"};
      return incremental::OneLeaf(name, std::move(s), json::array());
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
    return incremental::OneLeaf(name, std::move(*body), column_aliases);
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
    const bool semi = join_type == "SEMI" || join_type == "RIGHT_SEMI";
    if (join_type != "INNER" && !semi) {
      if (join_type == "OUTER") join_type = "FULL";
      if (join_type == "LEFT" || join_type == "RIGHT" || join_type == "FULL") {
        return NonIncremental(join_type, " JOIN requires tracking unmatched rows across batches");
      }
      if (join_type == "ANTI" || join_type == "RIGHT_ANTI") {
        return NonIncremental(
            "ANTI JOIN requires knowing that no matching row arrives in a later block");
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
    bool late = l.late || r.late;
    int condition_tables = 0;
    if (const json* condition = Field(ref, "condition")) {
      ARROW_ASSIGN_OR_RAISE(condition_tables, Predicate(*condition, scope, true));
      late = late || condition_tables > 0;
    }
    if (semi) {
      // A semi join is an EXISTS: the kept side's rows, each once, when it matches.
      Summary& kept = join_type == "SEMI" ? l : r;
      Summary& other = join_type == "SEMI" ? r : l;
      kept.subquery_tables += other.tables + other.subquery_tables + condition_tables;
      if (other.tables > 0) kept.late = true;
      kept.late = kept.late || late;
      if (recording() && other.tables > 0) info_->has_subquery_expression = true;
      return kept;
    }
    const bool tables_on_both_sides = l.tables > 0 && r.tables > 0;
    if (tables_on_both_sides && recording()) info_->has_join = true;
    Summary s;
    s.tables = l.tables + r.tables;
    s.subquery_tables = l.subquery_tables + r.subquery_tables + condition_tables;
    s.late = late;
    s.leaves = l.leaves;
    s.leaves.insert(s.leaves.end(), r.leaves.begin(), r.leaves.end());
    s.aligned = l.aligned && r.aligned &&
                (!tables_on_both_sides || incremental::EquatesBlocks(ref, Field(ref, "condition"), where, l, r));
    return s;
  }

  const IncrementalContext& ctx_;
  IncrementalInfo* info_;
  int quiet_ = 0;
  int depth_ = 0;
  std::vector<std::string> view_stack_;
};

}  // namespace

arrow::Status CheckIncremental(const nlohmann::json& tree, const IncrementalContext& ctx,
                               IncrementalInfo* info) {
  if (!ctx.is_aggregate) return arrow::Status::Invalid("IncrementalContext::is_aggregate is not set");
  ARROW_ASSIGN_OR_RAISE(const json* root, RootNode(tree));
  if (info != nullptr) *info = IncrementalInfo{};
  Checker checker(ctx, info);
  ARROW_ASSIGN_OR_RAISE(auto summary, checker.Node(*root, nullptr, /*top=*/true));
  if (summary.tables == 0 && summary.subquery_tables > 0) {
    return NonIncremental(
        "a query that reads chain tables only in a subquery of its WHERE has no block to send "
        "its rows in");
  }
  if (info != nullptr) {
    info->joins_on_block_num = summary.aligned;
    info->late_rows = summary.late;
  }
  return arrow::Status::OK();
}

}  // namespace sluice::sql
