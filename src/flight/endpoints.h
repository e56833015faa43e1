// A batch answer split into several endpoints by block range, each endpoint
// naming every query server that can serve it (docs/deploy.md, protocol.md §2).
//
// A query splits when its answer is the concatenation of its answers over
// consecutive block ranges: it could stream (sql/incremental.h: no ORDER BY,
// LIMIT, aggregate but per block, DISTINCT, window), reads one chain table once
// and joins nothing. Endpoint i then covers blocks [lo_i, hi_i] of the blocks
// stored when GetFlightInfo ran, in ascending order (FlightInfo.ordered = true):
// concatenating the endpoints' rows in endpoint order gives the one-endpoint
// answer over those blocks, row for row; reading them in parallel gives the same
// rows. Each ticket also names the hash block hi_i had, and DoGet refuses it when
// a reorg replaced that block since (ask GetFlightInfo again).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "arrow/flight/types.h"
#include "arrow/result.h"
#include "flight/ticket.h"
#include "sql/engine.h"

namespace sluice::flight {

/// \brief The endpoints of a split answer.
struct SplitPlan {
  std::string dataset;
  std::string table;
  std::vector<storage::BlockRange> ranges;  ///< ascending, adjacent, each <= max_blocks blocks
  std::vector<storage::Hash32> end_hashes;  ///< the hash of each range's last block
};

/// \brief How `sql` splits over the session's snapshot into ranges of at most
/// `max_blocks` blocks; nullopt when it answers in one endpoint (splitting off,
/// a query that does not split, or no more than max_blocks blocks stored).
arrow::Result<std::optional<SplitPlan>> PlanSplit(sql::Session* session, const std::string& sql,
                                                  uint64_t max_blocks);

/// \brief The locations of endpoint `index`: every URI of `uris`, starting with
/// the one at index % size (clients read from the first, so endpoints spread over
/// the servers). Invalid for a malformed URI.
arrow::Result<std::vector<arrow::flight::Location>> EndpointLocations(
    size_t index, const std::vector<std::string>& uris);

/// \brief DoGet of a split endpoint's ticket: restrict the session's table to the
/// ticket's range. Invalid when block range_hi is no longer the block GetFlightInfo
/// planned (a reorg since): the client must ask GetFlightInfo again.
arrow::Status RestrictToRange(sql::Session* session, const TicketPayload& payload);

/// \brief Split a comma-separated list of URIs (setting endpoint_locations).
std::vector<std::string> SplitLocations(const std::string& list);

}  // namespace sluice::flight
