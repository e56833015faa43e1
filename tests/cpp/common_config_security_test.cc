#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/auth.h"
#include "common/config.h"
#include "gtest/gtest.h"

namespace sluice {

namespace {
std::string WriteTemp(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("sluice_security_test_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path.string();
}
}  // namespace

TEST(ConfigSecurity, ApiKeysFromTomlAndEnvironment) {
  Config c;
  ASSERT_TRUE(ApplyTomlFile(&c, WriteTemp("a.toml", "api_keys = [\"k1-0123456789abcdef\", "
                                                    "\"k2-0123456789abcdef\"]\n"))
                  .ok());
  ::setenv("SLUICE_API_KEYS", " k3-0123456789abcdef, ,k4-0123456789abcdef ", 1);
  auto st = ApplyEnvironment(&c);
  ::unsetenv("SLUICE_API_KEYS");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.api_keys, (std::vector<std::string>{"k1-0123456789abcdef", "k2-0123456789abcdef",
                                                  "k3-0123456789abcdef", "k4-0123456789abcdef"}));
}

TEST(ConfigSecurity, ApiKeysMustBeAnArrayOfStrings) {
  for (std::string text : {"api_keys = \"secret-0123456789abcdef\"\n", "api_keys = [1, 2]\n"}) {
    Config c;
    auto st = ApplyTomlFile(&c, WriteTemp("b.toml", text));
    ASSERT_FALSE(st.ok()) << text;
    EXPECT_NE(st.message().find("api_keys"), std::string::npos);
    EXPECT_EQ(st.message().find("secret"), std::string::npos);  // never echoed
  }
}

TEST(ConfigSecurity, NoFlagForKeys) {
  Config c;
  EXPECT_FALSE(SetFromString(&c, "api_keys", "k-0123456789abcdef").ok());
  EXPECT_TRUE(SetFromString(&c, "api_keys_file", "/etc/keys").ok());
}

TEST(ConfigSecurity, ValidatesTlsAndLimits) {
  Config c;
  c.tls_cert_file = "cert.pem";
  EXPECT_FALSE(c.Validate().ok());
  c.tls_key_file = "key.pem";
  EXPECT_TRUE(c.Validate().ok());
  c.max_concurrent_queries = -1;
  EXPECT_FALSE(c.Validate().ok());
  c.max_concurrent_queries = 0;
  c.query_timeout_secs = -1;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(ConfigSecurity, SafeDefaults) {
  Config c;
  // A batch query may not run for ever: below spicepy's 600 s client timeout.
  EXPECT_EQ(c.query_timeout_secs, 300);
  // Tokens live as long as their key (clients such as spicepy handshake once).
  EXPECT_EQ(c.auth_token_ttl_secs, 0);
  EXPECT_TRUE(c.Validate().ok());
  c.auth_token_ttl_secs = -1;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(ConfigSecurity, KeyFile) {
  auto path = WriteTemp("keys", "# comment\n\n  k1-0123456789abcdef \r\nk2-0123456789abcdef\n");
  auto keys = common::ReadApiKeyFile(path);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, (std::vector<std::string>{"k1-0123456789abcdef", "k2-0123456789abcdef"}));
  EXPECT_TRUE(common::ReadApiKeyFile(path + ".missing").status().IsIOError());
}

}  // namespace sluice
