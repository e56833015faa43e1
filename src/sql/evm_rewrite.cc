#include "sql/evm_rewrite.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "sql/evm_udf.h"

namespace sluice::sql {

namespace {

// A typed-decoding call found in the tree.
struct Call {
  const nlohmann::json* node;  // the FUNCTION node
  DecodeKind kind;
  std::string signature;
  uint64_t location;  // byte offset of the call (its first identifier) in the query
};

std::optional<DecodeKind> KindOf(const std::string& name) {
  if (name == "evm_decode_log" || name == "evm_decode") return DecodeKind::kLog;
  if (name == "evm_decode_params") return DecodeKind::kParams;
  if (name == "evm_decode_type") return DecodeKind::kType;
  return std::nullopt;
}

bool IsFunction(const nlohmann::json& node) {
  auto cls = node.find("class");
  return cls != node.end() && cls->is_string() && *cls == "FUNCTION" &&
         node.contains("function_name") && node["function_name"].is_string();
}

// The string literal of a CONSTANT node, if it is one.
std::optional<std::string> Literal(const nlohmann::json& node) {
  if (!node.is_object() || node.value("class", "") != "CONSTANT") return std::nullopt;
  const auto& value = node.find("value");
  if (value == node.end() || !value->is_object() || value->value("is_null", true)) {
    return std::nullopt;
  }
  const auto& type = value->find("type");
  if (type == value->end() || !type->is_object() || type->value("id", "") != "VARCHAR") {
    return std::nullopt;
  }
  const auto& v = value->find("value");
  if (v == value->end() || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

// Functions that take exact numbers: integer literals beyond HUGEINT in their
// arguments, which DuckDB's parser makes (inexact) DOUBLE constants, go as text.
bool TakesExactNumbers(const std::string& name) {
  return name == "evm_encode_params" || name == "evm_encode_type" || name == "shift_units";
}

// The DOUBLE constants among a call's arguments (direct ones only: inside a list a
// string would not mix with the other elements' type).
void CollectDoubleConstants(const nlohmann::json& args, std::set<uint64_t>* out) {
  if (!args.is_array()) return;
  for (const auto& node : args) {
    if (!node.is_object() || node.value("class", "") != "CONSTANT") continue;
    const auto& value = node.find("value");
    if (value != node.end() && value->is_object() && !value->value("is_null", true) &&
        value->contains("type") && (*value)["type"].is_object() &&
        (*value)["type"].value("id", "") == "DOUBLE") {
      out->insert(node.value("query_location", UINT64_MAX));
    }
  }
}

void Collect(const nlohmann::json& node, std::vector<Call>* out, std::set<uint64_t>* wide) {
  if (node.is_object()) {
    if (IsFunction(node)) {
      if (TakesExactNumbers(node["function_name"].get<std::string>()) && node.contains("children")) {
        CollectDoubleConstants(node["children"], wide);
      }
      auto kind = KindOf(node["function_name"].get<std::string>());
      const auto& children = node.find("children");
      if (kind && children != node.end() && children->is_array() && !children->empty()) {
        if (auto sig = Literal(children->back())) {
          uint64_t loc = node.value("query_location", uint64_t{0});
          out->push_back(Call{&node, *kind, std::move(*sig), loc});
        }
      }
    }
    for (const auto& [k, v] : node.items()) Collect(v, out, wide);
  } else if (node.is_array()) {
    for (const auto& v : node) Collect(v, out, wide);
  }
}

// The span of an integer literal at `pos` ("-" allowed, then digits and nothing
// that makes it a decimal), and its text without spaces.
std::optional<std::pair<size_t, std::string>> IntegerLiteral(const std::string& sql, size_t pos) {
  std::string text;
  size_t i = pos;
  if (i < sql.size() && sql[i] == '-') {
    text = "-";
    ++i;
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  }
  size_t digits = i;
  while (i < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i]))) text += sql[i++];
  if (i == digits) return std::nullopt;
  if (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '.' ||
                         sql[i] == '_')) {
    return std::nullopt;  // 1.5, 1e40, 1_000: not a plain integer literal
  }
  return std::make_pair(i, text);
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// The span [begin, end) of the last identifier of the dotted name starting at
// `pos` (`name`, `schema.name`, `"quoted".name`, with spaces around dots), and its
// text folded to lower case (a quoted one unquoted).
struct Span {
  size_t begin = 0, end = 0;
  std::string folded;
};

std::optional<Span> LastIdentifier(const std::string& sql, size_t pos) {
  std::optional<Span> last;
  while (true) {
    while (pos < sql.size() && std::isspace(static_cast<unsigned char>(sql[pos]))) ++pos;
    Span s;
    s.begin = pos;
    if (pos < sql.size() && sql[pos] == '"') {
      ++pos;
      while (pos < sql.size()) {
        if (sql[pos] == '"') {
          if (pos + 1 < sql.size() && sql[pos + 1] == '"') {
            s.folded += '"';
            pos += 2;
            continue;
          }
          break;
        }
        s.folded += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[pos++])));
      }
      if (pos >= sql.size()) return std::nullopt;
      ++pos;  // closing quote
    } else if (pos < sql.size() && IsIdentStart(sql[pos])) {
      while (pos < sql.size() && IsIdentChar(sql[pos])) {
        s.folded += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[pos++])));
      }
    } else {
      return last;
    }
    s.end = pos;
    last = std::move(s);
    size_t after = pos;
    while (after < sql.size() && std::isspace(static_cast<unsigned char>(sql[after]))) ++after;
    if (after >= sql.size() || sql[after] != '.') return last;
    pos = after + 1;
  }
}

// Walks a tree for FUNCTION nodes named eth_call.
bool FindEthCall(const nlohmann::json& node) {
  if (node.is_object()) {
    if (IsFunction(node) && node["function_name"] == "eth_call") return true;
    for (const auto& [k, v] : node.items()) {
      if (FindEthCall(v)) return true;
    }
  } else if (node.is_array()) {
    for (const auto& v : node) {
      if (FindEthCall(v)) return true;
    }
  }
  return false;
}

// The decoder names of `calls`, registering them through `conn`.
arrow::Result<std::vector<std::string>> DecoderNames(EvmFunctions* functions,
                                                     duckdb_connection conn,
                                                     const std::vector<Call>& calls) {
  std::vector<std::string> names;
  for (const auto& c : calls) {
    auto type = DecodeResultType(c.kind, c.signature);
    if (!type.ok()) {
      return arrow::Status::Invalid(c.node->value("function_name", ""), ": ",
                                    type.status().message());
    }
    ARROW_ASSIGN_OR_RAISE(auto name, functions->TypedDecoder(conn, c.kind, *type));
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace

arrow::Result<EvmRewrite> RewriteEvmCalls(EvmFunctions* functions, duckdb_connection conn,
                                          const std::string& sql, const nlohmann::json& tree) {
  EvmRewrite out;
  {
    udf::ClientContext context;
    duckdb_connection_get_client_context(conn, context.out());
    out.eth_call_quota =
        functions->eth_calls().BeginQuery(duckdb_client_context_get_connection_id(context.get()));
  }
  std::vector<Call> calls;
  std::set<uint64_t> wide;
  Collect(tree, &calls, &wide);
  out.sql = sql;
  if (calls.empty() && wide.empty()) return out;
  ARROW_ASSIGN_OR_RAISE(auto names, DecoderNames(functions, conn, calls));
  // Edit from the end of the text, so earlier offsets stay valid.
  std::map<uint64_t, std::pair<Span, std::string>, std::greater<>> edits;
  for (uint64_t loc : wide) {
    auto literal = loc < sql.size() ? IntegerLiteral(sql, loc) : std::nullopt;
    if (!literal) continue;  // a DOUBLE written as one (1.5, 1e40): left alone
    Span span;
    span.begin = loc;
    span.end = literal->first;
    edits[loc] = {span, "'" + literal->second + "'"};
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    const Call& c = calls[i];
    auto span = c.location < sql.size() ? LastIdentifier(sql, c.location) : std::nullopt;
    const std::string function = c.node->value("function_name", "");
    if (!span || span->folded != function) {
      return arrow::Status::Invalid(function, ": cannot find the call at byte ", c.location,
                                    " of the query to give it a typed result");
    }
    edits[span->begin] = {*span, names[i]};
  }
  for (const auto& [begin, edit] : edits) {
    out.sql.replace(edit.first.begin, edit.first.end - edit.first.begin, edit.second);
  }
  return out;
}

arrow::Result<int> RewriteEvmCallsInTree(EvmFunctions* functions, duckdb_connection conn,
                                         nlohmann::json* tree) {
  std::vector<Call> calls;
  std::set<uint64_t> wide;
  Collect(*tree, &calls, &wide);
  ARROW_ASSIGN_OR_RAISE(auto names, DecoderNames(functions, conn, calls));
  for (size_t i = 0; i < calls.size(); ++i) {
    // The nodes are `tree`'s own, which the caller lets us change.
    (*const_cast<nlohmann::json*>(calls[i].node))["function_name"] = names[i];
  }
  return static_cast<int>(calls.size());
}

bool CallsEthCall(const nlohmann::json& tree) { return FindEthCall(tree); }

arrow::Status CheckStreamingEvmCalls(const nlohmann::json& tree,
                                     const std::vector<const nlohmann::json*>& view_trees) {
  bool calls = FindEthCall(tree);
  for (const auto* v : view_trees) calls = calls || (v != nullptr && FindEthCall(*v));
  if (calls) {
    return arrow::Status::Invalid(
        "NonIncrementalOp: eth_call asks the node at query time; its answer is not part of the "
        "chain's blocks and can change between microbatches, so a streaming query cannot use "
        "it (run it as a batch query)");
  }
  return arrow::Status::OK();
}

}  // namespace sluice::sql
