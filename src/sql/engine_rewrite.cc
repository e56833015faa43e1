// The engine's query rewrites: the names a rewrite needs (chain tables, derived
// tables), a streaming query's check and delta (sql/incremental.h,
// sql/delta_rewrite.h), and `_block_num` / `block_num()` in batch queries
// (sql/block_names.h).
#include "common/log.h"
#include "sql/block_names.h"
#include "sql/delta_rewrite.h"
#include "sql/engine.h"
#include "sql/parse_tree.h"
#include "sql/sandbox.h"

namespace sluice::sql {

using json = nlohmann::json;

Relations Engine::relations() const {
  Relations r;
  r.chain_table = [this](const std::string& catalog, const std::string& schema,
                         const std::string& table) -> std::optional<ChainTable> {
    if (!catalog.empty() && tree::Lower(catalog) != tree::Lower(catalog_)) return std::nullopt;
    for (const auto& [name, store] : datasets_) {
      if (tree::Lower(name) != tree::Lower(schema)) continue;
      for (const auto& t : store->snapshot()->tables) {
        if (tree::Lower(t.name) == tree::Lower(table)) return ChainTable{name, t.name};
      }
    }
    return std::nullopt;
  };
  r.view_tree = [this](const std::string& schema,
                       const std::string& table) -> std::optional<nlohmann::json> {
    const std::string key = tree::Lower(schema + "." + table);
    for (const auto& [name, t] : derived_trees_) {
      if (tree::Lower(name) == key) return t;
    }
    return std::nullopt;
  };
  return r;
}

arrow::Result<StreamingCheck> Session::CheckStreaming(const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto query, Check(sql));  // parsed, through the sandbox
  const json& parsed = query->tree;
  const Relations relations = engine_->relations();
  IncrementalContext ctx;
  ctx.is_aggregate = [this](const std::string& name) { return engine_->IsAggregate(name); };
  ctx.view_tree = relations.view_tree;
  StreamingCheck check;
  ARROW_RETURN_NOT_OK(CheckIncremental(parsed, ctx, &check.info));
  // eth_call cannot stream, whether the query or a view it reads calls it.
  std::vector<const nlohmann::json*> view_trees;
  for (const auto& v : check.info.views) {
    auto it = engine_->derived_trees_.find(v.schema + "." + v.table);
    if (it != engine_->derived_trees_.end()) view_trees.push_back(&it->second);
  }
  ARROW_RETURN_NOT_OK(CheckStreamingEvmCalls(parsed, view_trees));
  if (check.info.tables.size() <= 1 && !check.info.has_block_grouping) return check;

  // The delta query: normalized, block names, delta (sql/delta_rewrite.h).
  json delta_tree = parsed;
  ARROW_ASSIGN_OR_RAISE(json* root, tree::MutableRootNode(delta_tree));
  NormalizeOptions normalize;
  normalize.predicates_to_where = true;
  ARROW_RETURN_NOT_OK(NormalizeQuery(root, relations, normalize));
  std::set<std::string> datasets;
  for (const auto& t : check.info.tables) {
    if (auto chain = relations.chain_table(t.catalog, t.schema, t.table)) datasets.insert(chain->dataset);
  }
  if (datasets.size() > 1) ARROW_RETURN_NOT_OK(CheckOneDatasetPerRow(*root, relations, ctx.is_aggregate));
  BlockNameOptions names;
  names.is_aggregate = ctx.is_aggregate;
  names.top_block = true;
  ARROW_RETURN_NOT_OK(RewriteBlockNames(root, relations, names, &check.ordered));
  DeltaOptions delta;
  delta.is_aggregate = ctx.is_aggregate;
  delta.ordered = check.ordered;
  ARROW_ASSIGN_OR_RAISE(*root, DeltaQuery(*root, relations, delta));
  ARROW_ASSIGN_OR_RAISE(check.delta_sql, tree::Deparse(conn_.get(), delta_tree));
  LOG_DEBUG("streaming delta of {}: {}", sql, check.delta_sql);
  return check;
}

arrow::Result<std::string> Session::EngineSql(const std::string& sql, const nlohmann::json& parsed) {
  if (!UsesBlockNames(parsed)) return sql;
  json rewritten = parsed;
  ARROW_ASSIGN_OR_RAISE(json* root, tree::MutableRootNode(rewritten));
  const Relations relations = engine_->relations();
  ARROW_RETURN_NOT_OK(NormalizeQuery(root, relations, NormalizeOptions{}));
  BlockNameOptions names;
  names.is_aggregate = [this](const std::string& name) { return engine_->IsAggregate(name); };
  ARROW_RETURN_NOT_OK(RewriteBlockNames(root, relations, names));
  return tree::Deparse(conn_.get(), rewritten);
}

namespace {

// Every table reference (BASE_TABLE node) of a parse tree, anywhere in it.
void CollectTables(const nlohmann::json& node,
                   std::vector<std::pair<std::string, std::string>>* out) {
  if (node.is_object()) {
    auto type = node.find("type");
    if (type != node.end() && type->is_string() && *type == "BASE_TABLE") {
      out->emplace_back(node.value("schema_name", ""), node.value("table_name", ""));
    }
    for (const auto& [k, v] : node.items()) CollectTables(v, out);
  } else if (node.is_array()) {
    for (const auto& v : node) CollectTables(v, out);
  }
}

}  // namespace

std::set<std::string> Session::DatasetsRead() const {
  auto lower = [](const std::string& s) { return tree::Lower(s); };
  std::map<std::string, std::string> datasets;  // lower case -> name (SQL names ignore case)
  for (const auto& [name, store] : engine_->datasets_) datasets[lower(name)] = name;
  std::map<std::string, const nlohmann::json*> derived;
  for (const auto& [name, tree] : engine_->derived_trees_) derived[lower(name)] = &tree;
  std::set<std::string> out;
  std::set<std::string> expanded;  // derived tables already walked
  std::vector<const nlohmann::json*> trees = {&checked_tree_};
  while (!trees.empty()) {
    const nlohmann::json* tree = trees.back();
    trees.pop_back();
    std::vector<std::pair<std::string, std::string>> refs;
    CollectTables(*tree, &refs);
    for (const auto& [schema, table] : refs) {
      if (auto d = datasets.find(lower(schema)); d != datasets.end()) {
        out.insert(d->second);
        continue;
      }
      const std::string qualified = lower(schema + "." + table);
      auto it = derived.find(qualified);
      if (it != derived.end() && expanded.insert(qualified).second) trees.push_back(it->second);
    }
  }
  return out;
}

}  // namespace sluice::sql
