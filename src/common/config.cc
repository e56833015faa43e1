#include "common/config.h"

#include <cstdlib>
#include <limits>
#include <sstream>
#include <string_view>
#include <type_traits>

#include "toml++/toml.h"

namespace sluice {

namespace {

template <typename T>
std::string TypeName() {
  if constexpr (std::is_same_v<T, std::string>) return "string";
  if constexpr (std::is_same_v<T, bool>) return "boolean";
  if constexpr (std::is_integral_v<T>) return "integer";
  return "float";
}

template <typename T>
std::string Print(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) return "\"" + v + "\"";
  if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  std::ostringstream os;
  os << v;
  return os.str();
}

template <typename T>
arrow::Status Parse(const std::string& key, const std::string& text, T* out) {
  if constexpr (std::is_same_v<T, std::string>) {
    *out = text;
    return arrow::Status::OK();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (text == "true" || text == "1") {
      *out = true;
    } else if (text == "false" || text == "0") {
      *out = false;
    } else {
      return arrow::Status::Invalid("setting ", key, ": expected true or false, got '", text, "'");
    }
    return arrow::Status::OK();
  } else {
    std::istringstream is(text);
    T v{};
    is >> v;
    if (is.fail() || !is.eof()) {
      return arrow::Status::Invalid("setting ", key, ": expected ", TypeName<T>(), ", got '",
                                    text, "'");
    }
    *out = v;
    return arrow::Status::OK();
  }
}

template <typename T>
arrow::Status FromToml(const std::string& key, const toml::node& node, T* out) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = node.value<std::string>()) {
      *out = *v;
      return arrow::Status::OK();
    }
  } else if constexpr (std::is_same_v<T, bool>) {
    if (auto v = node.value<bool>()) {
      *out = *v;
      return arrow::Status::OK();
    }
  } else if constexpr (std::is_integral_v<T>) {
    if (node.is_integer()) {
      *out = static_cast<T>(*node.value<int64_t>());
      return arrow::Status::OK();
    }
  } else {
    if (auto v = node.value<double>()) {
      *out = *v;
      return arrow::Status::OK();
    }
  }
  return arrow::Status::Invalid("setting ", key, ": expected a ", TypeName<T>());
}

arrow::Status ApplyDerivedTables(Config* config, const std::string& path, const toml::node& node) {
  const auto bad = arrow::Status::Invalid(
      "config file ", path,
      ": derived_tables must be an array of tables with keys name and sql, e.g. "
      "[[derived_tables]] name = \"eth.nft_transfers\" sql = \"SELECT …\"");
  const auto* array = node.as_array();
  if (array == nullptr) return bad;
  for (const auto& entry : *array) {
    const auto* t = entry.as_table();
    if (t == nullptr) return bad;
    DerivedTable d;
    for (const auto& [k, v] : *t) {
      std::string key(k.str());
      if (key == "name" && v.is_string()) {
        d.name = *v.value<std::string>();
      } else if (key == "sql" && v.is_string()) {
        d.sql = *v.value<std::string>();
      } else {
        return arrow::Status::Invalid("config file ", path, ": derived_tables: unknown key '",
                                      key, "' (known: name, sql)");
      }
    }
    if (d.name.empty() || d.sql.empty()) return bad;
    config->derived_tables.push_back(std::move(d));
  }
  return arrow::Status::OK();
}

arrow::Status ApplyApiKeys(Config* config, const std::string& path, const toml::node& node) {
  // Never quote a key in a message.
  const auto* array = node.as_array();
  if (array == nullptr) {
    return arrow::Status::Invalid(
        "config file ", path, ": api_keys must be an array of strings, e.g. api_keys = [\"…\"]");
  }
  for (const auto& entry : *array) {
    auto v = entry.value<std::string>();
    if (!v) return arrow::Status::Invalid("config file ", path, ": api_keys must hold strings");
    config->api_keys.push_back(*v);
  }
  return arrow::Status::OK();
}

}  // namespace

const std::vector<SettingInfo>& Settings() {
  static const std::vector<SettingInfo> settings = [] {
    std::vector<SettingInfo> s;
    Config defaults;
#define SLUICE_INFO(name, type, def, desc) \
  s.push_back({#name, TypeName<type>(), Print<type>(defaults.name), desc});
    SLUICE_SETTINGS(SLUICE_INFO)
#undef SLUICE_INFO
    return s;
  }();
  return settings;
}

arrow::Status SetFromString(Config* config, const std::string& name, const std::string& value) {
#define SLUICE_SET(field, type, def, desc) \
  if (name == #field) return Parse<type>(name, value, &config->field);
  SLUICE_SETTINGS(SLUICE_SET)
#undef SLUICE_SET
  return arrow::Status::Invalid("unknown setting '", name, "'");
}

arrow::Status ApplyTomlFile(Config* config, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << e.description() << " at line " << e.source().begin.line;
    return arrow::Status::Invalid("config file ", path, ": ", os.str());
  }
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (name == "derived_tables") {
      ARROW_RETURN_NOT_OK(ApplyDerivedTables(config, path, node));
      continue;
    }
    if (name == "api_keys") {
      ARROW_RETURN_NOT_OK(ApplyApiKeys(config, path, node));
      continue;
    }
    arrow::Status st = arrow::Status::Invalid("config file ", path, ": unknown key '", name, "'");
#define SLUICE_TOML(field, type, def, desc) \
  if (name == #field) st = FromToml<type>(name, node, &config->field);
    SLUICE_SETTINGS(SLUICE_TOML)
#undef SLUICE_TOML
    if (!st.ok()) {
      if (st.message().rfind("config file", 0) == 0) return st;
      return arrow::Status::Invalid("config file ", path, ": ", st.message());
    }
  }
  return arrow::Status::OK();
}

arrow::Status ApplyEnvironment(Config* config) {
  for (const auto& s : Settings()) {
    std::string var = "AMP_CONFIG_";
    for (char c : s.name) var += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (const char* v = std::getenv(var.c_str())) {
      auto st = SetFromString(config, s.name, v);
      if (!st.ok()) return arrow::Status::Invalid("environment ", var, ": ", st.message());
    }
  }
  if (const char* keys = std::getenv("SLUICE_API_KEYS")) {
    std::string_view rest(keys);
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string key(rest.substr(0, comma));
      key.erase(0, key.find_first_not_of(" \t"));
      key.erase(key.find_last_not_of(" \t") + 1);
      if (!key.empty()) config->api_keys.push_back(std::move(key));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return arrow::Status::OK();
}

arrow::Status Config::Validate() const {
  if (keep_alive_interval < 30) {
    return arrow::Status::Invalid("setting keep_alive_interval: ", keep_alive_interval,
                                  " is below the minimum of 30 seconds");
  }
  if (testing_keep_alive_interval_ms < 0) {
    return arrow::Status::Invalid("setting testing_keep_alive_interval_ms must be >= 0");
  }
  if (server_microbatch_max_interval < 1) {
    return arrow::Status::Invalid("setting server_microbatch_max_interval must be at least 1");
  }
  if (rows_per_batch < 1) return arrow::Status::Invalid("setting rows_per_batch must be >= 1");
  if (ticket_ttl_secs < 1) return arrow::Status::Invalid("setting ticket_ttl_secs must be >= 1");
  if (start_block < 0) return arrow::Status::Invalid("setting start_block must be >= 0");
  if (poll_interval_secs <= 0) {
    return arrow::Status::Invalid("setting poll_interval_secs must be > 0");
  }
  if (finality_depth < 0) return arrow::Status::Invalid("setting finality_depth must be >= 0");
  if (max_reorg_depth < 1) return arrow::Status::Invalid("setting max_reorg_depth must be >= 1");
  if (tls_cert_file.empty() != tls_key_file.empty()) {
    return arrow::Status::Invalid("settings tls_cert_file and tls_key_file go together: set both "
                                  "for TLS, or neither");
  }
  if (auth_token_ttl_secs < 1) {
    return arrow::Status::Invalid("setting auth_token_ttl_secs must be >= 1");
  }
  if (max_concurrent_queries < 0 || max_concurrent_streams < 0) {
    return arrow::Status::Invalid(
        "settings max_concurrent_queries and max_concurrent_streams must be >= 0 (0: no limit)");
  }
  if (query_timeout_secs < 0) {
    return arrow::Status::Invalid("setting query_timeout_secs must be >= 0 (0: no limit)");
  }
  if (scan_cache_max_mb < 0) {
    return arrow::Status::Invalid("setting scan_cache_max_mb must be >= 0 (0: no cache)");
  }
  if (segment_cache_max_mb < 1) {
    return arrow::Status::Invalid("setting segment_cache_max_mb must be >= 1");
  }
  if (gc_grace_secs < 0) return arrow::Status::Invalid("setting gc_grace_secs must be >= 0");
  if (lease_poll_secs <= 0) return arrow::Status::Invalid("setting lease_poll_secs must be > 0");
  if (endpoint_max_blocks < 0) {
    return arrow::Status::Invalid("setting endpoint_max_blocks must be >= 0 (0: one endpoint)");
  }
  if (testing_commit_pause_ms < 0) {
    return arrow::Status::Invalid("setting testing_commit_pause_ms must be >= 0");
  }
  if (!object_store_url.empty() && object_store_url.rfind("s3://", 0) != 0) {
    return arrow::Status::Invalid("setting object_store_url must start with s3://");
  }
  if (rpc_batch_blocks < 1 || rpc_max_in_flight < 1) {
    return arrow::Status::Invalid("settings rpc_batch_blocks and rpc_max_in_flight must be >= 1");
  }
  return arrow::Status::OK();
}

}  // namespace sluice
