// The memory pool of direct scans: recycles the large buffers a scan allocates
// for every decoded batch instead of returning them to the system.
//
// A direct scan decodes record batches of up to kDirectScanBatchBytes, sends them,
// and frees them; the default allocator hands such buffers back to the kernel and
// gets fresh ones for the next batch, which the kernel must zero (a profile of a
// cold scan showed 11-16% of the server's time in clear_page_erms under
// mimalloc's fresh-page path, bench/FIXES.md). This pool keeps freed buffers of
// at least 64 KiB, by power-of-two size class, up to a bound, and hands them out
// again. Thread-safe.
#pragma once

#include <cstdint>

#include "arrow/memory_pool.h"

namespace sluice::sql {

/// \brief The process-wide pool of direct scans: recycles up to `kScanPoolCacheBytes`
/// of freed buffers of 64 KiB or more over arrow::default_memory_pool().
arrow::MemoryPool* ScanMemoryPool();

/// \brief How many bytes of freed buffers ScanMemoryPool keeps for reuse at most.
inline constexpr int64_t kScanPoolCacheBytes = int64_t{64} << 20;

}  // namespace sluice::sql
