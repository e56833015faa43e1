#include <cstdlib>
#include <filesystem>
#include <set>
#include <unistd.h>
#include <fstream>

#include "common/config.h"
#include "gtest/gtest.h"

namespace sluice {

namespace {
std::string WriteTemp(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("sluice_config_test_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << text;
  return path.string();
}
}  // namespace

TEST(Config, SeedKeysFromToml) {
  Config c;
  auto path = WriteTemp("server_microbatch_max_interval = 100\nkeep_alive_interval = 60\n");
  ASSERT_TRUE(ApplyTomlFile(&c, path).ok());
  EXPECT_EQ(c.server_microbatch_max_interval, 100);
  EXPECT_EQ(c.keep_alive_interval, 60);
  EXPECT_TRUE(c.Validate().ok());
}

TEST(Config, UnknownKeyNamed) {
  Config c;
  auto st = ApplyTomlFile(&c, WriteTemp("keep_alive_intervall = 60\n"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("keep_alive_intervall"), std::string::npos);
}

TEST(Config, WrongTypeNamed) {
  Config c;
  auto st = ApplyTomlFile(&c, WriteTemp("keep_alive_interval = \"sixty\"\n"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("keep_alive_interval"), std::string::npos);
}

TEST(Config, KeepAliveMinimum) {
  Config c;
  ASSERT_TRUE(SetFromString(&c, "keep_alive_interval", "29").ok());
  auto st = c.Validate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("keep_alive_interval"), std::string::npos);
}

TEST(Config, FlagsAndEnvironment) {
  Config c;
  ASSERT_TRUE(SetFromString(&c, "rows_per_batch", "1000").ok());
  EXPECT_EQ(c.rows_per_batch, 1000);
  EXPECT_FALSE(SetFromString(&c, "rows_per_batch", "lots").ok());
  EXPECT_FALSE(SetFromString(&c, "no_such_key", "1").ok());
  ::setenv("AMP_CONFIG_DATASET", "eth", 1);
  ASSERT_TRUE(ApplyEnvironment(&c).ok());
  ::unsetenv("AMP_CONFIG_DATASET");
  EXPECT_EQ(c.dataset, "eth");
}

TEST(Config, EverySettingDeclaredOnce) {
  std::set<std::string> names;
  for (const auto& s : Settings()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_FALSE(s.description.empty()) << s.name;
  }
  EXPECT_TRUE(names.count("server_microbatch_max_interval"));
}

}  // namespace sluice

namespace sluice {

TEST(Config, DerivedTables) {
  Config c;
  auto path = WriteTemp(
      "[[derived_tables]]\nname = \"eth.a\"\nsql = \"SELECT 1\"\n"
      "[[derived_tables]]\nname = \"eth.b\"\nsql = \"SELECT 2\"\n");
  ASSERT_TRUE(ApplyTomlFile(&c, path).ok());
  ASSERT_EQ(c.derived_tables.size(), 2u);
  EXPECT_EQ(c.derived_tables[1].name, "eth.b");
  EXPECT_EQ(c.derived_tables[1].sql, "SELECT 2");
  Config d;
  auto st = ApplyTomlFile(&d, WriteTemp("[[derived_tables]]\nname = \"eth.a\"\nquery = \"x\"\n"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("query"), std::string::npos);
  EXPECT_FALSE(ApplyTomlFile(&d, WriteTemp("derived_tables = 5\n")).ok());
}

}  // namespace sluice

namespace sluice {

TEST(Config, DatasetsTablesOverTopLevelDefaults) {
  Config c;
  auto path = WriteTemp(
      "poll_interval_secs = 0.5\nrpc_batch_blocks = 10\n"
      "[[datasets]]\nname = \"mainnet\"\nnetwork = \"mainnet\"\n"
      "rpc_url = [\"https://a.example/k1\", \"https://b.example/k2\"]\nfinalized_only = true\n"
      "[[datasets]]\nname = \"base\"\nnetwork = \"base\"\nrpc_url = \"https://c.example\"\n"
      "rpc_batch_blocks = 20\n");
  ASSERT_TRUE(ApplyTomlFile(&c, path).ok());
  ASSERT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  auto ds = c.Datasets();
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[0].dataset, "mainnet");
  EXPECT_EQ(ds[0].rpc_url, (StringList{"https://a.example/k1", "https://b.example/k2"}));
  EXPECT_EQ(ds[0].EffectiveFinalityTag(), "finalized");
  EXPECT_EQ(ds[0].rpc_batch_blocks, 10);  // the top-level default
  EXPECT_EQ(ds[1].rpc_batch_blocks, 20);  // its own
  EXPECT_DOUBLE_EQ(ds[1].poll_interval_secs, 0.5);
  EXPECT_EQ(ds[1].rpc_url, StringList{"https://c.example"});
  // A flag sets the default of every table that does not set the key itself.
  ASSERT_TRUE(SetFromString(&c, "rpc_max_in_flight", "2").ok());
  EXPECT_EQ(c.Datasets()[1].rpc_max_in_flight, 2);
}

TEST(Config, ShorthandIsOneDataset) {
  Config c;
  ASSERT_TRUE(SetFromString(&c, "rpc_url", "http://x:1, http://y:2").ok());
  ASSERT_TRUE(SetFromString(&c, "dataset", "eth").ok());
  auto ds = c.Datasets();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].dataset, "eth");
  EXPECT_EQ(ds[0].rpc_url, (StringList{"http://x:1", "http://y:2"}));
  EXPECT_TRUE(c.Validate().ok());
}

TEST(Config, DatasetsMistakesAreNamed) {
  auto fails = [](const std::string& toml, const std::string& word) {
    Config c;
    auto st = ApplyTomlFile(&c, WriteTemp(toml));
    if (st.ok()) st = c.Validate();
    ASSERT_FALSE(st.ok()) << toml;
    EXPECT_NE(st.message().find(word), std::string::npos) << st.message();
  };
  const std::string a = "[[datasets]]\nname = \"a\"\nnetwork = \"n1\"\nrpc_url = \"http://a\"\n";
  fails(a + "[[datasets]]\nname = \"b\"\nnetwork = \"n1\"\nrpc_url = \"http://b\"\n", "n1");
  fails(a + "[[datasets]]\nname = \"a\"\nnetwork = \"n2\"\nrpc_url = \"http://b\"\n", "twice");
  fails("rpc_url = \"http://x\"\n" + a, "rpc_url");
  fails("[[datasets]]\nname = \"a\"\nrpc_url = \"http://a\"\n", "network");
  fails("[[datasets]]\nname = \"a\"\nnetwork = \"n\"\nrpc_urls = \"http://a\"\n", "rpc_urls");
  fails("[[datasets]]\ndataset = \"a\"\n", "name");
  fails("[[datasets]]\nname = \"a-b\"\nnetwork = \"n\"\nrpc_url = \"http://a\"\n", "identifier");
  fails(a + "finality_tag = \"latest-ish\"\n", "finality_tag");
  fails(a + "rpc_receipts = \"maybe\"\n", "rpc_receipts");
}

TEST(Config, EveryDatasetSettingIsAFlagToo) {
  std::set<std::string> dataset_settings;
  for (const auto& s : Settings()) {
    if (s.per_dataset) dataset_settings.insert(s.name);
  }
  for (const char* name : {"rpc_url", "network", "start_block", "finality_tag", "rpc_receipts",
                           "rpc_batch_max_calls", "rpc_failback_secs"}) {
    EXPECT_TRUE(dataset_settings.count(name)) << name;
  }
}

}  // namespace sluice
