// Tickets: what GetFlightInfo hands out and DoGet redeems (protocol.md §2).
//
// A ticket is opaque to clients but self-contained, so any server sharing the
// signing key can answer its DoGet: it holds the query, the streaming flag, the
// resume cursor, bound parameters or a Flight SQL metadata command, and an expiry, and is signed with HMAC-SHA256 so it cannot be
// forged or altered. Layout: "slc1" | payload JSON | 32-byte MAC.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "arrow/result.h"
#include "arrow/status.h"

namespace sluice::flight {

/// \brief What a ticket carries.
struct TicketPayload {
  std::string sql;          ///< the query, SETTINGS clause already removed
  bool stream = false;      ///< streaming query (protocol.md §3)
  std::string resume;       ///< the amp-resume cursor JSON, or empty
  std::string params;       ///< bound parameters: an Arrow IPC stream of one row, or empty
  std::string command;      ///< a Flight SQL metadata command (Any bytes), or empty
  int64_t rows_per_batch = 0;  ///< the sluice-fetch-size header: rows per record batch; 0: server default
  int64_t expires_ms = 0;   ///< Unix milliseconds after which the ticket is refused
  /// One endpoint of a split answer (flight/endpoints.h): the chain table
  /// ("dataset.table") restricted to blocks [range_lo, range_hi], and the hash
  /// (0x hex) block range_hi had when GetFlightInfo planned it. Empty: the whole answer.
  std::string range_table;
  uint64_t range_lo = 0;
  uint64_t range_hi = 0;
  std::string range_hash;
};

/// \brief Signs and verifies tickets with one key.
class TicketSigner {
 public:
  /// \brief `secret_hex` is the key in hex; empty draws a random 32-byte key.
  /// Invalid when the hex is malformed or shorter than 16 bytes.
  static arrow::Result<TicketSigner> Make(const std::string& secret_hex,
                                          std::chrono::seconds ttl);

  /// \brief A new ticket for `payload`; its expiry is now + ttl. The payload's
  /// strings are UTF-8; invalid bytes are replaced by U+FFFD. Never throws.
  std::string Issue(TicketPayload payload) const;
  /// \brief How long a ticket stays valid.
  std::chrono::seconds ttl() const { return ttl_; }

  /// \brief The payload of a genuine, unexpired ticket. Invalid "ticket is not
  /// valid" for anything forged, altered or malformed; Invalid "ticket expired"
  /// when its time has passed.
  arrow::Result<TicketPayload> Redeem(const std::string& ticket) const;

 private:
  std::string key_;
  std::chrono::seconds ttl_{300};
};

}  // namespace sluice::flight
