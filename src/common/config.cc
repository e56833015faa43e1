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
  if constexpr (std::is_same_v<T, StringList>) return "list";
  if constexpr (std::is_same_v<T, std::string>) return "string";
  if constexpr (std::is_same_v<T, bool>) return "boolean";
  if constexpr (std::is_integral_v<T>) return "integer";
  return "float";
}

template <typename T>
std::string Print(const T& v) {
  if constexpr (std::is_same_v<T, StringList>) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", \"" : "\"") + v[i] + "\"";
    return out + "]";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return "\"" + v + "\"";
  }
  if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  if constexpr (std::is_arithmetic_v<T>) {
    std::ostringstream os;
    os << v;
    return os.str();
  }
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

template <typename T>
arrow::Status Parse(const std::string& key, const std::string& text, T* out) {
  if constexpr (std::is_same_v<T, StringList>) {
    // Comma-separated; empty items are dropped.
    out->clear();
    std::string_view rest(text);
    while (true) {
      auto comma = rest.find(',');
      std::string item = Trim(rest.substr(0, comma));
      if (!item.empty()) out->push_back(std::move(item));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return arrow::Status::OK();
  } else if constexpr (std::is_same_v<T, std::string>) {
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
  if constexpr (std::is_same_v<T, StringList>) {
    if (auto v = node.value<std::string>()) {
      *out = {*v};
      return arrow::Status::OK();
    }
    if (const auto* array = node.as_array()) {
      StringList list;
      for (const auto& item : *array) {
        auto v = item.value<std::string>();
        if (!v) return arrow::Status::Invalid("setting ", key, ": expected strings in the array");
        list.push_back(*v);
      }
      *out = std::move(list);
      return arrow::Status::OK();
    }
    return arrow::Status::Invalid("setting ", key, ": expected a string or an array of strings");
  } else if constexpr (std::is_same_v<T, std::string>) {
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
  s.push_back({#name, TypeName<type>(), Print<type>(defaults.name), desc, false});
    SLUICE_SETTINGS(SLUICE_INFO)
#undef SLUICE_INFO
#define SLUICE_INFO(name, type, def, desc) \
  s.push_back({#name, TypeName<type>(), Print<type>(defaults.name), desc, true});
    SLUICE_DATASET_SETTINGS(SLUICE_INFO)
#undef SLUICE_INFO
    return s;
  }();
  return settings;
}

namespace {

bool IsDatasetSetting(const std::string& name) {
#define SLUICE_IS(field, type, def, desc) \
  if (name == #field) return true;
  SLUICE_DATASET_SETTINGS(SLUICE_IS)
#undef SLUICE_IS
  return false;
}

// Set dataset setting `name` of `d` from a TOML value. Invalid when unknown.
arrow::Status DatasetFromToml(DatasetConfig* d, const std::string& name, const toml::node& node) {
#define SLUICE_TOML(field, type, def, desc) \
  if (name == #field) return FromToml<type>(name, node, &d->field);
  SLUICE_DATASET_SETTINGS(SLUICE_TOML)
#undef SLUICE_TOML
  return arrow::Status::Invalid("unknown key '", name, "'");
}

// Copy dataset setting `name` from `from` to `to`.
void CopyDatasetSetting(const DatasetConfig& from, DatasetConfig* to, const std::string& name) {
#define SLUICE_COPY(field, type, def, desc) \
  if (name == #field) to->field = from.field;
  SLUICE_DATASET_SETTINGS(SLUICE_COPY)
#undef SLUICE_COPY
}

// [[datasets]]: an array of tables of dataset settings, the name as `name`.
arrow::Status ApplyDatasetTables(Config* config, const std::string& path, const toml::node& node) {
  const auto bad = arrow::Status::Invalid(
      "config file ", path,
      ": datasets must be an array of tables, e.g. [[datasets]] name = \"mainnet\" "
      "network = \"mainnet\" rpc_url = \"https://…\" (docs/datasets.md)");
  const auto* array = node.as_array();
  if (array == nullptr) return bad;
  for (const auto& entry : *array) {
    const auto* t = entry.as_table();
    if (t == nullptr) return bad;
    Config::DatasetTable table;
    for (const auto& [k, v] : *t) {
      std::string key(k.str());
      const std::string where = "config file " + path + ": datasets[" +
                                std::to_string(config->dataset_tables.size()) + "]: ";
      if (key == "dataset") {
        return arrow::Status::Invalid(where, "the dataset's name is the key `name` here");
      }
      std::string field = key == "name" ? "dataset" : key;
      auto st = DatasetFromToml(&table.values, field, v);
      if (!st.ok()) {
        if (st.message().rfind("unknown key", 0) == 0) {
          return arrow::Status::Invalid(where, "unknown key '", key,
                                        "' (a dataset takes name and the dataset settings of "
                                        "`sluice serve --help`)");
        }
        return arrow::Status::Invalid(where, st.message());
      }
      table.keys.insert(field);
    }
    config->dataset_tables.push_back(std::move(table));
  }
  return arrow::Status::OK();
}

bool IsIdentifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

}  // namespace

arrow::Status SetFromString(Config* config, const std::string& name, const std::string& value) {
#define SLUICE_SET(field, type, def, desc) \
  if (name == #field) return Parse<type>(name, value, &config->field);
  SLUICE_SETTINGS(SLUICE_SET)
#undef SLUICE_SET
#define SLUICE_SET(field, type, def, desc)                                 \
  if (name == #field) {                                                    \
    ARROW_RETURN_NOT_OK(Parse<type>(name, value, &config->field));         \
    config->top_level_keys.insert(name);                                   \
    return arrow::Status::OK();                                            \
  }
  SLUICE_DATASET_SETTINGS(SLUICE_SET)
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
    if (name == "datasets") {
      ARROW_RETURN_NOT_OK(ApplyDatasetTables(config, path, node));
      continue;
    }
    arrow::Status st = arrow::Status::Invalid("config file ", path, ": unknown key '", name, "'");
#define SLUICE_TOML(field, type, def, desc) \
  if (name == #field) st = FromToml<type>(name, node, &config->field);
    SLUICE_SETTINGS(SLUICE_TOML)
#undef SLUICE_TOML
    if (IsDatasetSetting(name)) {
      st = DatasetFromToml(config, name, node);
      if (st.ok()) config->top_level_keys.insert(name);
    }
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
      std::string key = Trim(rest.substr(0, comma));
      if (!key.empty()) config->api_keys.push_back(std::move(key));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return arrow::Status::OK();
}

std::vector<DatasetConfig> Config::Datasets() const {
  const DatasetConfig& top = *this;
  if (dataset_tables.empty()) return {top};
  std::vector<DatasetConfig> out;
  for (const auto& t : dataset_tables) {
    DatasetConfig d = top;
    for (const auto& key : t.keys) CopyDatasetSetting(t.values, &d, key);
    out.push_back(std::move(d));
  }
  return out;
}

arrow::Status DatasetConfig::Validate() const {
  if (!IsIdentifier(dataset)) {
    return arrow::Status::Invalid("setting dataset: '", dataset,
                                  "' must be an identifier (letters, digits, _), as it is the "
                                  "SQL schema of the tables");
  }
  if (network.empty()) return arrow::Status::Invalid("setting network must not be empty");
  if (extract && rpc_url.empty()) {
    return arrow::Status::Invalid("setting rpc_url: no JSON-RPC endpoint given");
  }
  if (start_block < 0) return arrow::Status::Invalid("setting start_block must be >= 0");
  if (poll_interval_secs <= 0) {
    return arrow::Status::Invalid("setting poll_interval_secs must be > 0");
  }
  if (finality_depth < 0) return arrow::Status::Invalid("setting finality_depth must be >= 0");
  if (finality_tag != "latest" && finality_tag != "safe" && finality_tag != "finalized") {
    return arrow::Status::Invalid("setting finality_tag: '", finality_tag,
                                  "' is not latest, safe or finalized");
  }
  if (finalized_only && finality_tag == "safe") {
    return arrow::Status::Invalid("settings finalized_only = true and finality_tag = \"safe\" "
                                  "contradict each other; set one of them");
  }
  if (max_reorg_depth < 1) return arrow::Status::Invalid("setting max_reorg_depth must be >= 1");
  if (rpc_batch_blocks < 1 || rpc_max_in_flight < 1) {
    return arrow::Status::Invalid("settings rpc_batch_blocks and rpc_max_in_flight must be >= 1");
  }
  if (rpc_batch_max_calls < 0) {
    return arrow::Status::Invalid("setting rpc_batch_max_calls must be >= 0 (0: no limit)");
  }
  if (rpc_receipts != "auto" && rpc_receipts != "block" && rpc_receipts != "transaction") {
    return arrow::Status::Invalid("setting rpc_receipts: '", rpc_receipts,
                                  "' is not auto, block or transaction");
  }
  if (rpc_failback_secs <= 0) return arrow::Status::Invalid("setting rpc_failback_secs must be > 0");
  if (rpc_retry_after_max_secs < 0) {
    return arrow::Status::Invalid("setting rpc_retry_after_max_secs must be >= 0");
  }
  if (rpc_max_requests_per_sec < 0) {
    return arrow::Status::Invalid("setting rpc_max_requests_per_sec must be >= 0 (0: no limit)");
  }
  if (rpc_timeout_secs <= 0) return arrow::Status::Invalid("setting rpc_timeout_secs must be > 0");
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
  if (tls_cert_file.empty() != tls_key_file.empty()) {
    return arrow::Status::Invalid("settings tls_cert_file and tls_key_file go together: set both "
                                  "for TLS, or neither");
  }
  if (auth_token_ttl_secs < 0) {
    return arrow::Status::Invalid(
        "setting auth_token_ttl_secs must be >= 0 (0: tokens live as long as their key)");
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
  if (eth_call_timeout_secs <= 0) {
    return arrow::Status::Invalid("setting eth_call_timeout_secs must be > 0");
  }
  if (eth_call_max_calls < 0) {
    return arrow::Status::Invalid("setting eth_call_max_calls must be >= 0 (0: eth_call is off)");
  }
  if (!dataset_tables.empty()) {
    for (const char* key : {"dataset", "network", "rpc_url"}) {
      if (top_level_keys.count(key)) {
        return arrow::Status::Invalid(
            "setting ", key, " is given at the top level while [[datasets]] lists the datasets; "
            "give it in each [[datasets]] table (", key == std::string("dataset") ? "as name" : key,
            ")");
      }
    }
    for (size_t i = 0; i < dataset_tables.size(); ++i) {
      for (const char* key : {"dataset", "network"}) {
        if (!dataset_tables[i].keys.count(key)) {
          return arrow::Status::Invalid("datasets[", i, "]: missing key ",
                                        key == std::string("dataset") ? "name" : key);
        }
      }
      if (!dataset_tables[i].keys.count("rpc_url") &&
          (dataset_tables[i].keys.count("extract") ? dataset_tables[i].values.extract : extract)) {
        return arrow::Status::Invalid("datasets[", i, "] (", dataset_tables[i].values.dataset,
                                      "): missing key rpc_url");
      }
    }
  }
  std::set<std::string> names, networks;
  for (const auto& d : Datasets()) {
    auto st = d.Validate();
    if (!st.ok()) {
      if (dataset_tables.empty()) return st;
      return arrow::Status::Invalid("dataset ", d.dataset, ": ", st.message());
    }
    if (!names.insert(d.dataset).second) {
      return arrow::Status::Invalid("dataset ", d.dataset, " is listed twice in [[datasets]]");
    }
    if (!networks.insert(d.network).second) {
      return arrow::Status::Invalid(
          "network ", d.network, " is the network of two datasets; each dataset follows its own "
          "network (cursors and app_metadata ranges are keyed by network)");
    }
  }
  return arrow::Status::OK();
}

}  // namespace sluice
