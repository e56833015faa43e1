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
//   - a token is `sluice1.<expiry ms, hex>.<key id, hex>.<HMAC-SHA256, hex>`,
//     signed with a key derived from the API key it stands for (and from
//     ticket_secret when set). It is valid only while that key is configured,
//     and, when auth_token_ttl_secs > 0, until its expiry (an expiry of 0: no
//     expiry, the default). So a client that handshakes once keeps working for as
//     long as its key is valid, across restarts and on every server with the same
//     keys and ticket_secret. The key id is an HMAC of the key, not the key; a
//     token reveals neither.
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
  /// Seconds a token from IssueToken stays valid; 0: as long as its key is
  /// configured (auth_token_ttl_secs).
  std::chrono::seconds token_ttl{0};
  /// Hex secret mixed into the token signing keys (ticket_secret); empty: the
  /// signing keys derive from the API keys alone. Changing it revokes every token.
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

  /// \brief A new token for the key `id` (from Verify), valid while that key is
  /// configured and, with a token_ttl, for token_ttl. Empty for an unknown id.
  std::string IssueToken(const KeyId& id) const;

  /// \brief The credential of an HTTP/gRPC `authorization` header value:
  /// `Bearer <credential>`, or `Basic base64(user:password)` whose password is
  /// the credential (the user is ignored; pyarrow's authenticate_basic_token and
  /// Flight SQL clients send an empty one; base64 with or without its padding, as
  /// arrow-go sends it). Scheme names are case-insensitive.
  /// nullopt for anything else. `*basic` says which scheme it was.
  static std::optional<std::string> CredentialOf(std::string_view authorization,
                                                 bool* basic = nullptr);

  /// \brief The token lifetime.
  std::chrono::seconds token_ttl() const { return token_ttl_; }

 private:
  Authenticator() = default;
  std::optional<KeyId> VerifyToken(std::string_view token) const;

  std::vector<std::string> digests_;     // SHA-256 of each key
  std::vector<std::string> key_ids_;     // KeyId of each key, same order
  std::vector<std::string> token_keys_;  // the key signing each key's tokens, same order
  std::string secret_;                   // what key ids and token keys derive from
  std::chrono::seconds token_ttl_{0};
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
