#include "common/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "arrow/util/base64.h"
#include "common/hex.h"
#include "common/metrics.h"

namespace sluice::common {

namespace {

constexpr std::string_view kTokenPrefix = "sluice1.";
constexpr size_t kKeyIdBytes = 8;
constexpr size_t kMinKeyLength = 16;
constexpr size_t kMaxKeyLength = 512;
constexpr std::string_view kTokenContext = "sluice auth tokens v1";

std::string Sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

// Hex without the 0x prefix.
std::string Hex(std::string_view bytes) { return ToHex(bytes).substr(2); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

arrow::Status CheckKey(const std::string& key, size_t index) {
  // The message names the key's position, never its text.
  if (key.size() < kMinKeyLength || key.size() > kMaxKeyLength) {
    return arrow::Status::Invalid("API key #", index + 1, " must have ", kMinKeyLength, " to ",
                                  kMaxKeyLength, " characters (it has ", key.size(), ")");
  }
  for (char c : key) {
    if (c <= ' ' || c > '~') {
      return arrow::Status::Invalid("API key #", index + 1,
                                    " must be printable ASCII without spaces");
    }
  }
  return arrow::Status::OK();
}

Counter& FailureCounter(const std::string& endpoint) {
  return Registry::Default().GetCounter("sluice_auth_failures_total",
                                        "Calls refused for a missing or invalid API key or token",
                                        {{"endpoint", endpoint}});
}

}  // namespace

arrow::Result<std::shared_ptr<Authenticator>> Authenticator::Make(AuthOptions options) {
  std::shared_ptr<Authenticator> auth(new Authenticator());
  auth->token_ttl_ = options.token_ttl;
  if (options.token_ttl.count() < 0) {
    return arrow::Status::Invalid("setting auth_token_ttl_secs must be >= 0");
  }
  // A key of its own, so that a token can never pass for a ticket or back.
  auth->secret_ = std::string(kTokenContext);
  if (!options.secret_hex.empty()) {
    auto bytes = FromHex(options.secret_hex);
    if (!bytes.ok()) return arrow::Status::Invalid("setting ticket_secret must be hex");
    auth->secret_ = Hmac(std::string(bytes->begin(), bytes->end()), kTokenContext);
  }
  for (size_t i = 0; i < options.api_keys.size(); ++i) {
    ARROW_RETURN_NOT_OK(CheckKey(options.api_keys[i], i));
    auth->digests_.push_back(Sha256(options.api_keys[i]));
    const std::string& digest = auth->digests_.back();
    auth->key_ids_.push_back(
        Hmac(auth->secret_, std::string("key id:").append(digest)).substr(0, kKeyIdBytes));
    auth->token_keys_.push_back(Hmac(auth->secret_, std::string("token key:").append(digest)));
  }
  if (auth->enabled()) {
    for (const char* endpoint : {"flight", "jsonl", "admin"}) FailureCounter(endpoint);  // at 0
  }
  return auth;
}

std::optional<KeyId> Authenticator::Verify(std::string_view credential) const {
  if (digests_.empty() || credential.empty() || credential.size() > 4096) return std::nullopt;
  if (credential.substr(0, kTokenPrefix.size()) == kTokenPrefix) {
    if (auto id = VerifyToken(credential)) return id;
  }
  // Every digest is compared, match or not: the time depends on the number of
  // keys only.
  const std::string digest = Sha256(credential);
  int match = -1;
  for (size_t i = 0; i < digests_.size(); ++i) {
    int same = CRYPTO_memcmp(digest.data(), digests_[i].data(), digest.size()) == 0;
    match = same && match < 0 ? static_cast<int>(i) : match;
  }
  if (match < 0) return std::nullopt;
  return KeyId{key_ids_[static_cast<size_t>(match)]};
}

std::string Authenticator::IssueToken(const KeyId& id) const {
  // Expiry 0: valid as long as the key is configured.
  const int64_t expires = token_ttl_.count() > 0 ? NowMs() + token_ttl_.count() * 1000 : 0;
  char exp_hex[17];
  std::snprintf(exp_hex, sizeof exp_hex, "%016llx", static_cast<unsigned long long>(expires));
  std::string body = std::string(kTokenPrefix) + exp_hex + "." + Hex(id.bytes);
  for (size_t i = 0; i < key_ids_.size(); ++i) {
    if (key_ids_[i] == id.bytes) return body + "." + Hex(Hmac(token_keys_[i], body));
  }
  return std::string();  // not an id of a configured key: no token
}

std::optional<KeyId> Authenticator::VerifyToken(std::string_view token) const {
  // sluice1.<16 hex>.<16 hex>.<64 hex>
  const size_t body_size = kTokenPrefix.size() + 16 + 1 + 2 * kKeyIdBytes;
  if (token.size() != body_size + 1 + 64 || token[body_size] != '.') return std::nullopt;
  std::string_view body = token.substr(0, body_size);
  auto id = FromHex(body.substr(kTokenPrefix.size() + 17));
  if (!id.ok()) return std::nullopt;
  std::string id_bytes(id->begin(), id->end());
  // Key ids are not secret: finding the token's key by its id tells nothing.
  for (size_t i = 0; i < key_ids_.size(); ++i) {
    if (key_ids_[i] != id_bytes) continue;
    const std::string mac = Hex(Hmac(token_keys_[i], body));
    if (CRYPTO_memcmp(mac.data(), token.data() + body_size + 1, mac.size()) != 0) {
      return std::nullopt;
    }
    // Genuine: the fields are what IssueToken wrote.
    auto expires = std::strtoull(std::string(body.substr(kTokenPrefix.size(), 16)).c_str(),
                                 nullptr, 16);
    if (expires != 0 && static_cast<int64_t>(expires) < NowMs()) return std::nullopt;
    return KeyId{id_bytes};
  }
  return std::nullopt;  // its key is not configured (any more)
}

std::optional<std::string> Authenticator::CredentialOf(std::string_view authorization,
                                                       bool* basic) {
  if (basic) *basic = false;
  authorization = Trim(authorization);
  auto space = authorization.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string_view scheme = authorization.substr(0, space);
  std::string_view value = Trim(authorization.substr(space + 1));
  if (value.empty()) return std::nullopt;
  if (EqualsIgnoreCase(scheme, "Bearer")) return std::string(value);
  if (EqualsIgnoreCase(scheme, "Basic")) {
    // arrow-go's AuthenticateBasicToken sends base64 without its '=' padding.
    std::string padded(value);
    if (padded.size() % 4 != 0) padded.append(4 - padded.size() % 4, '=');
    auto decoded = arrow::util::base64_decode(padded);
    if (!decoded.ok()) return std::nullopt;
    auto colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    if (basic) *basic = true;
    return decoded->substr(colon + 1);
  }
  return std::nullopt;
}

arrow::Result<std::vector<std::string>> ReadApiKeyFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return arrow::Status::IOError("api_keys_file ", path, ": cannot read");
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(f, line)) {
    auto key = Trim(line);
    if (key.empty() || key.front() == '#') continue;
    keys.emplace_back(key);
  }
  if (f.bad()) return arrow::Status::IOError("api_keys_file ", path, ": cannot read");
  return keys;
}

void CountAuthFailure(const std::string& endpoint) { FailureCounter(endpoint).Increment(); }

}  // namespace sluice::common
