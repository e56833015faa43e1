// Authentication (docs/security.md): API keys and the bearer tokens handed out
// for them, shared by Arrow Flight (flight/auth.h) and HTTP (http/http_server.h).
//
// Off when no key is configured. With keys, every call must carry one of them,
// or a token issued for one:
//   - a key is an opaque string (printable ASCII, no spaces, 16 to 512
//     characters). Keys come from the config file (`api_keys = ["…"]`), the
//     environment (SLUICE_API_KEYS, comma-separated) and a key file
//     (`api_keys_file`, one per line). They are kept only as SHA-256 digests
//     and compared in constant time (CRYPTO_memcmp over every digest, no early
//     exit), so timing tells nothing of a key's content. They are never logged.
//   - a token is `sluice1.<expiry ms, hex>.<key id, hex>.<HMAC-SHA256, hex>`:
//     signed with a secret (random per process, or derived from ticket_secret so
//     that servers sharing it accept each other's tokens), valid until its expiry
//     (auth_token_ttl_secs) and only while the key it was issued for is still
//     configured. The key id is an HMAC of the key, not the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arrow/result.h"
#include "arrow/status.h"

namespace sluice::common {

/// \brief Options of the authenticator.
struct AuthOptions {
  /// The accepted API keys; empty: authentication is off.
  std::vector<std::string> api_keys;
  /// Seconds a token from IssueToken stays valid.
  std::chrono::seconds token_ttl{3600};
  /// Hex secret the token signing key is derived from (ticket_secret); empty:
  /// a random key per process (tokens die with the process).
  std::string secret_hex;
};

/// \brief Which configured key a credential stands for (an HMAC of the key,
/// 8 bytes). Opaque.
struct KeyId {
  std::string bytes;
};

/// \brief Checks API keys and issues and checks tokens. Thread-safe (immutable
/// after Make).
class Authenticator {
 public:
  /// \brief Invalid when a key is malformed (its position is named, never its
  /// text) or the secret is not hex.
  static arrow::Result<std::shared_ptr<Authenticator>> Make(AuthOptions options);

  /// \brief Whether keys are configured (authentication is on).
  bool enabled() const { return !digests_.empty(); }
  /// \brief How many keys are configured.
  size_t key_count() const { return digests_.size(); }

  /// \brief The key `credential` is, or stands for (a valid, unexpired token of a
  /// configured key); nullopt otherwise. Constant time in the keys' content.
  std::optional<KeyId> Verify(std::string_view credential) const;

  /// \brief A new token for the key `id` (from Verify), valid for token_ttl.
  std::string IssueToken(const KeyId& id) const;

  /// \brief The credential of an HTTP/gRPC `authorization` header value:
  /// `Bearer <credential>`, or `Basic base64(user:password)` whose password is
  /// the credential (the user is ignored; pyarrow's authenticate_basic_token and
  /// Flight SQL clients send an empty one). Scheme names are case-insensitive.
  /// nullopt for anything else. `*basic` says which scheme it was.
  static std::optional<std::string> CredentialOf(std::string_view authorization,
                                                 bool* basic = nullptr);

  /// \brief The token lifetime.
  std::chrono::seconds token_ttl() const { return token_ttl_; }

 private:
  Authenticator() = default;
  std::optional<KeyId> VerifyToken(std::string_view token) const;
  std::string KeyIdOf(std::string_view digest) const;

  std::vector<std::string> digests_;  // SHA-256 of each key
  std::vector<std::string> key_ids_;  // KeyId of each key, same order
  std::string secret_;                // signs tokens
  std::chrono::seconds token_ttl_{3600};
};

/// \brief The keys of a key file: one per line; blank lines and lines starting
/// with '#' are skipped, surrounding whitespace is trimmed. IOError when the
/// file cannot be read.
arrow::Result<std::vector<std::string>> ReadApiKeyFile(const std::string& path);

/// \brief The message of every refused credential, whatever was wrong with it
/// (missing, malformed, unknown key, expired or forged token).
inline constexpr const char* kUnauthenticatedMessage =
    "authentication required: send the header 'authorization: Bearer <API key or token>'";

/// \brief Count one refused call in sluice_auth_failures_total{endpoint}
/// ("flight", "jsonl" or "admin").
void CountAuthFailure(const std::string& endpoint);

}  // namespace sluice::common
