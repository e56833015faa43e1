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
