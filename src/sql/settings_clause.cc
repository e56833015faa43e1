#include "sql/settings_clause.h"

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "arrow/status.h"

namespace sluice::sql {

namespace {

// ---- lexer ------------------------------------------------------------------------
// Just enough of DuckDB's (PostgreSQL's) lexical rules to know what is code and what
// is inside a string, a quoted identifier or a comment, and how deep in brackets.

enum class TokenKind { kWord, kQuotedIdent, kString, kNumber, kPunct };

struct Token {
  TokenKind kind;
  size_t begin = 0;  // byte offsets into the query: [begin, end)
  size_t end = 0;
  int depth = 0;     // bracket depth at the token
  std::string text;  // words and punctuation as written; strings and quoted
                     // identifiers decoded
};

struct Lexed {
  std::vector<Token> tokens;
  // Set when the query ends inside a string, quoted identifier or comment.
  std::string unterminated;
};

bool IsIdentStart(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool IsIdentChar(unsigned char c) { return IsIdentStart(c) || std::isdigit(c) || c == '$'; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Lexed Lex(std::string_view sql) {
  Lexed out;
  const size_t n = sql.size();
  size_t i = 0;
  int depth = 0;
  auto at = [&](size_t k) -> unsigned char { return k < n ? sql[k] : '\0'; };
  // A string delimited by `quote`, where a doubled quote stands for itself and, in
  // E'' strings, a backslash escapes the next character.
  auto quoted = [&](char quote, bool backslash, TokenKind kind, size_t begin) {
    std::string text;
    size_t k = i + 1;
    while (true) {
      if (k >= n) {
        out.unterminated = kind == TokenKind::kString ? "quoted string" : "quoted identifier";
        i = n;
        return;
      }
      char c = sql[k];
      if (backslash && c == '\\' && k + 1 < n) {
        text += sql[k + 1];
        k += 2;
      } else if (c == quote && at(k + 1) == static_cast<unsigned char>(quote)) {
        text += quote;
        k += 2;
      } else if (c == quote) {
        ++k;
        break;
      } else {
        text += c;
        ++k;
      }
    }
    out.tokens.push_back({kind, begin, k, depth, std::move(text)});
    i = k;
  };

  while (i < n) {
    unsigned char c = sql[i];
    if (std::isspace(c)) {
      ++i;
    } else if (c == '-' && at(i + 1) == '-') {  // line comment
      while (i < n && sql[i] != '\n') ++i;
    } else if (c == '/' && at(i + 1) == '*') {  // block comment; they nest
      int nesting = 1;
      i += 2;
      while (i < n && nesting > 0) {
        if (sql[i] == '/' && at(i + 1) == '*') {
          ++nesting;
          i += 2;
        } else if (sql[i] == '*' && at(i + 1) == '/') {
          --nesting;
          i += 2;
        } else {
          ++i;
        }
      }
      if (nesting > 0) out.unterminated = "comment";
    } else if (c == '\'') {
      quoted('\'', false, TokenKind::kString, i);
    } else if ((c == 'e' || c == 'E') && at(i + 1) == '\'') {  // E'…' escape string
      ++i;
      quoted('\'', true, TokenKind::kString, i - 1);
    } else if (c == '"') {
      quoted('"', false, TokenKind::kQuotedIdent, i);
    } else if (c == '$' && (at(i + 1) == '$' || IsIdentStart(at(i + 1)))) {
      // $tag$ … $tag$ dollar-quoted string ($$ … $$ when the tag is empty).
      size_t k = i + 1;
      while (k < n && sql[k] != '$' && IsIdentChar(sql[k])) ++k;
      if (at(k) != '$') {  // not a dollar quote after all
        out.tokens.push_back({TokenKind::kPunct, i, i + 1, depth, "$"});
        ++i;
        continue;
      }
      std::string_view tag = sql.substr(i, k + 1 - i);
      size_t close = sql.find(tag, k + 1);
      if (close == std::string_view::npos) {
        out.unterminated = "dollar-quoted string";
        i = n;
      } else {
        out.tokens.push_back({TokenKind::kString, i, close + tag.size(), depth,
                              std::string(sql.substr(k + 1, close - k - 1))});
        i = close + tag.size();
      }
    } else if (IsIdentStart(c)) {
      size_t k = i;
      while (k < n && IsIdentChar(sql[k])) ++k;
      out.tokens.push_back({TokenKind::kWord, i, k, depth, std::string(sql.substr(i, k - i))});
      i = k;
    } else if (std::isdigit(c) || (c == '.' && std::isdigit(at(i + 1)))) {
      size_t k = i;
      while (k < n && (std::isalnum(static_cast<unsigned char>(sql[k])) || sql[k] == '_' ||
                       sql[k] == '.')) {
        ++k;
      }
      out.tokens.push_back({TokenKind::kNumber, i, k, depth, std::string(sql.substr(i, k - i))});
      i = k;
    } else {
      if (c == ')' || c == ']' || c == '}') --depth;
      out.tokens.push_back({TokenKind::kPunct, i, i + 1, depth, std::string(1, c)});
      if (c == '(' || c == '[' || c == '{') ++depth;
      ++i;
    }
  }
  return out;
}

bool IsWord(const Token& t, std::string_view lower) {
  return t.kind == TokenKind::kWord && Lower(t.text) == lower;
}
bool IsPunct(const Token& t, char c) {
  return t.kind == TokenKind::kPunct && t.text.size() == 1 && t.text[0] == c;
}

// ---- values and the declared settings -----------------------------------------------

struct Value {
  enum Kind { kBool, kInteger, kString } kind;
  std::string written;  // as in the query, for messages
  bool boolean = false;
  int64_t integer = 0;
  std::string string;
};

std::optional<bool> AsBool(const Value& v) {
  switch (v.kind) {
    case Value::kBool:
      return v.boolean;
    case Value::kInteger:
      if (v.integer == 1) return true;
      if (v.integer == 0) return false;
      return std::nullopt;
    case Value::kString: {
      std::string s = Lower(v.string);
      if (s == "true" || s == "1") return true;
      if (s == "false" || s == "0") return false;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// Every setting the clause knows, declared once: its name, what it means, and how
// its value is checked and stored.
struct SettingDef {
  const char* name;
  const char* description;
  arrow::Status (*apply)(const Value& value, QuerySettings* out);
};

const std::vector<SettingDef>& KnownSettings() {
  static const std::vector<SettingDef> defs = {
      {"stream", "run as a streaming query, microbatch by microbatch (protocol.md §3)",
       [](const Value& v, QuerySettings* out) -> arrow::Status {
         auto b = AsBool(v);
         if (!b) {
           return arrow::Status::Invalid(
               "setting 'stream' in SETTINGS clause must be a boolean (true, false, 1 or 0), got ",
               v.written);
         }
         out->stream = *b;
         return arrow::Status::OK();
       }},
  };
  return defs;
}

std::string KnownSettingNames() {
  std::string names;
  for (const auto& d : KnownSettings()) {
    if (!names.empty()) names += ", ";
    names += d.name;
  }
  return names;
}

// ---- the clause --------------------------------------------------------------------

// Where the clause starts: the first top-level unquoted SETTINGS followed by a key
// and '='. Returns tokens.size() when there is none.
size_t FindClause(const std::vector<Token>& tokens) {
  for (size_t i = 0; i + 2 < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (t.depth != 0 || !IsWord(t, "settings")) continue;
    const Token& key = tokens[i + 1];
    if ((key.kind == TokenKind::kWord || key.kind == TokenKind::kQuotedIdent) &&
        IsPunct(tokens[i + 2], '=')) {
      return i;
    }
  }
  return tokens.size();
}

std::string Describe(const Token* t) {
  if (t == nullptr) return "the end of the query";
  return "'" + t->text + "'";
}

}  // namespace

arrow::Result<QuerySettings> ExtractSettings(std::string_view sql) {
  Lexed lexed = Lex(sql);
  const auto& tokens = lexed.tokens;
  QuerySettings out;
  size_t start = FindClause(tokens);
  if (start == tokens.size()) {
    out.sql = std::string(sql);
    return out;
  }
  if (!lexed.unterminated.empty()) {
    return arrow::Status::Invalid("SETTINGS clause: unterminated ", lexed.unterminated);
  }
  if (start == 0) {
    return arrow::Status::Invalid("the query is empty: only a SETTINGS clause was given");
  }

  auto token = [&](size_t k) -> const Token* { return k < tokens.size() ? &tokens[k] : nullptr; };
  std::vector<std::string> seen;
  size_t k = start + 1;
  while (true) {
    // key
    const Token* key = token(k);
    if (key == nullptr ||
        !(key->kind == TokenKind::kWord || key->kind == TokenKind::kQuotedIdent)) {
      return arrow::Status::Invalid("SETTINGS clause: expected a setting name, got ",
                                    Describe(key));
    }
    std::string name = Lower(key->text);
    ++k;
    if (token(k) == nullptr || !IsPunct(*token(k), '=')) {
      return arrow::Status::Invalid("SETTINGS clause: expected '=' after '", key->text,
                                    "', got ", Describe(token(k)));
    }
    ++k;
    // value
    const Token* v = token(k);
    if (v == nullptr) {
      return arrow::Status::Invalid("SETTINGS clause: missing value of '", key->text, "'");
    }
    Value value;
    value.written = std::string(sql.substr(v->begin, v->end - v->begin));
    if (v->kind == TokenKind::kWord && (IsWord(*v, "true") || IsWord(*v, "false"))) {
      value.kind = Value::kBool;
      value.boolean = IsWord(*v, "true");
      ++k;
    } else if (v->kind == TokenKind::kString) {
      value.kind = Value::kString;
      value.string = v->text;
      ++k;
    } else if (v->kind == TokenKind::kNumber ||
               ((IsPunct(*v, '-') || IsPunct(*v, '+')) && token(k + 1) != nullptr &&
                token(k + 1)->kind == TokenKind::kNumber)) {
      bool negative = IsPunct(*v, '-');
      const Token* digits = v->kind == TokenKind::kNumber ? v : token(k + 1);
      value.written = std::string(sql.substr(v->begin, digits->end - v->begin));
      value.kind = Value::kInteger;
      const std::string& d = digits->text;
      bool ok = !d.empty() && d.size() <= 18;
      for (char c : d) ok = ok && std::isdigit(static_cast<unsigned char>(c));
      if (!ok) {
        return arrow::Status::Invalid("SETTINGS clause: value of '", key->text,
                                      "' must be true, false, an integer or a quoted string, got ",
                                      value.written);
      }
      value.integer = std::stoll(d) * (negative ? -1 : 1);
      k = (digits == v ? k : k + 1) + 1;
    } else {
      return arrow::Status::Invalid("SETTINGS clause: value of '", key->text,
                                    "' must be true, false, an integer or a quoted string, got ",
                                    Describe(v));
    }
    // apply
    const SettingDef* def = nullptr;
    for (const auto& d : KnownSettings()) {
      if (name == d.name) def = &d;
    }
    if (def == nullptr) {
      return arrow::Status::Invalid("unknown setting '", key->text,
                                    "' in SETTINGS clause (known: ", KnownSettingNames(), ")");
    }
    for (const auto& s : seen) {
      if (s == name) {
        return arrow::Status::Invalid("setting '", key->text,
                                      "' is given twice in SETTINGS clause");
      }
    }
    seen.push_back(name);
    ARROW_RETURN_NOT_OK(def->apply(value, &out));
    // ',' → another setting; ';'s and the end → done; anything else is an error.
    const Token* next = token(k);
    if (next != nullptr && IsPunct(*next, ',')) {
      ++k;
      continue;
    }
    while (token(k) != nullptr && IsPunct(*token(k), ';')) ++k;
    if (token(k) != nullptr) {
      return arrow::Status::Invalid(
          "SETTINGS clause must end the query: unexpected ", Describe(token(k)), " after '",
          key->text, " = ", value.written, "'");
    }
    break;
  }
  out.sql = std::string(sql.substr(0, tokens[start - 1].end));
  return out;
}

arrow::Result<std::optional<bool>> ParseStreamHeader(std::string_view value) {
  size_t b = 0, e = value.size();
  while (b < e && std::isspace(static_cast<unsigned char>(value[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(value[e - 1]))) --e;
  std::string v = Lower(value.substr(b, e - b));
  if (v.empty()) return std::optional<bool>();
  if (v == "true" || v == "1") return std::optional<bool>(true);
  if (v == "false" || v == "0") return std::optional<bool>(false);
  return arrow::Status::Invalid("amp-stream header must be true, false, 1 or 0, got '",
                                std::string(value), "'");
}

}  // namespace sluice::sql
