#include <thread>

#include "arrow/util/base64.h"
#include "common/auth.h"
#include "gtest/gtest.h"

namespace sluice::common {

namespace {
const std::string kKey = "sk-test-0123456789abcdef";
const std::string kOther = "sk-other-0123456789abcd";

std::shared_ptr<Authenticator> Make(std::vector<std::string> keys, int ttl_secs = 60,
                                    std::string secret = "") {
  AuthOptions o;
  o.api_keys = std::move(keys);
  o.token_ttl = std::chrono::seconds(ttl_secs);
  o.secret_hex = std::move(secret);
  auto auth = Authenticator::Make(o);
  EXPECT_TRUE(auth.ok()) << auth.status().ToString();
  return *auth;
}
}  // namespace

TEST(Authenticator, OffWithoutKeys) {
  auto auth = Make({});
  EXPECT_FALSE(auth->enabled());
  EXPECT_FALSE(auth->Verify(kKey));
}

TEST(Authenticator, AcceptsExactlyTheKeys) {
  auto auth = Make({kKey, kOther});
  ASSERT_TRUE(auth->enabled());
  auto a = auth->Verify(kKey);
  auto b = auth->Verify(kOther);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->bytes, b->bytes);  // distinct key ids
  for (std::string bad : {std::string(), kKey.substr(1), kKey + "x", std::string(" ") + kKey,
                          std::string("sk-test-0123456789abcdeF")}) {
    EXPECT_FALSE(auth->Verify(bad)) << bad;
  }
  // Every single-bit change is refused.
  for (size_t i = 0; i < kKey.size(); ++i) {
    std::string bad = kKey;
    bad[i] ^= 0x01;
    EXPECT_FALSE(auth->Verify(bad)) << i;
  }
}

TEST(Authenticator, TokensStandForTheirKey) {
  auto auth = Make({kKey, kOther});
  auto id = *auth->Verify(kKey);
  std::string token = auth->IssueToken(id);
  EXPECT_EQ(token.rfind("sluice1.", 0), 0u);
  EXPECT_EQ(token.find(kKey), std::string::npos);
  auto back = auth->Verify(token);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->bytes, id.bytes);
  for (size_t i = 0; i < token.size(); ++i) {
    std::string bad = token;
    bad[i] = bad[i] == '0' ? '1' : '0';
    EXPECT_FALSE(auth->Verify(bad)) << "char " << i;
  }
  // Another process with the token's key accepts it (a restart keeps tokens) …
  EXPECT_TRUE(Make({kKey})->Verify(token));
  // … one without the token's key does not (removing a key revokes its tokens) …
  EXPECT_FALSE(Make({kOther})->Verify(token));
  // … nor one whose ticket_secret differs.
  EXPECT_FALSE(Make({kKey, kOther}, 60, std::string(64, 'b'))->Verify(token));
  // A token names its key: one for kKey is not one for kOther.
  auto other = *auth->Verify(kOther);
  EXPECT_NE(auth->IssueToken(other), token);
}

TEST(Authenticator, TokensWithoutTtlLiveAsLongAsTheirKey) {
  auto auth = Make({kKey}, 0);  // auth_token_ttl_secs = 0, the default
  std::string token = auth->IssueToken(*auth->Verify(kKey));
  EXPECT_EQ(token.substr(0, 25), "sluice1.0000000000000000.");  // expiry 0: none
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(auth->Verify(token));
  EXPECT_TRUE(Make({kOther, kKey}, 0)->Verify(token));  // restarted, key still there
  EXPECT_FALSE(Make({kOther}, 0)->Verify(token));       // key removed
}

TEST(Authenticator, SharedSecretSharesTokensWhileTheKeyIsConfigured) {
  const std::string secret(64, 'a');
  auto one = Make({kKey, kOther}, 60, secret);
  auto two = Make({kOther, kKey}, 60, secret);  // other order, same keys
  std::string token = one->IssueToken(*one->Verify(kKey));
  EXPECT_TRUE(two->Verify(token));
  EXPECT_FALSE(Make({kOther}, 60, secret)->Verify(token));  // key removed: token dead
}

TEST(Authenticator, TokensExpire) {
  auto auth = Make({kKey}, 1);
  std::string token = auth->IssueToken(*auth->Verify(kKey));
  EXPECT_TRUE(auth->Verify(token));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_FALSE(auth->Verify(token));
  EXPECT_TRUE(auth->Verify(kKey));
}

TEST(Authenticator, RefusesMalformedKeysWithoutQuotingThem) {
  for (std::string bad : {std::string("short"), std::string("has a space in it 0123"),
                          std::string(513, 'k'), std::string("tab\there-0123456789")}) {
    AuthOptions o;
    o.api_keys = {kKey, bad};
    auto auth = Authenticator::Make(o);
    ASSERT_FALSE(auth.ok());
    EXPECT_NE(auth.status().message().find("API key #2"), std::string::npos);
    EXPECT_EQ(auth.status().message().find(bad), std::string::npos);
  }
}

TEST(Authenticator, CredentialOfHeaders) {
  bool basic = true;
  EXPECT_EQ(*Authenticator::CredentialOf("Bearer abc", &basic), "abc");
  EXPECT_FALSE(basic);
  EXPECT_EQ(*Authenticator::CredentialOf("bearer   abc  "), "abc");
  EXPECT_EQ(*Authenticator::CredentialOf("Basic " + arrow::util::base64_encode(":" + kKey),
                                         &basic),
            kKey);
  EXPECT_TRUE(basic);
  EXPECT_EQ(*Authenticator::CredentialOf("BASIC " + arrow::util::base64_encode("u:p:q")), "p:q");
  // Without the '=' padding, as arrow-go's AuthenticateBasicToken sends it.
  std::string unpadded = arrow::util::base64_encode(":" + kKey);
  ASSERT_EQ(unpadded.back(), '=');
  while (unpadded.back() == '=') unpadded.pop_back();
  EXPECT_EQ(*Authenticator::CredentialOf("Basic " + unpadded), kKey);
  for (std::string bad : {std::string(), std::string("Bearer"), std::string("Bearer "),
                          std::string("abc"), std::string("Token abc"), std::string("Basic !!!"),
                          "Basic " + arrow::util::base64_encode("no-colon")}) {
    EXPECT_FALSE(Authenticator::CredentialOf(bad)) << bad;
  }
}

}  // namespace sluice::common
