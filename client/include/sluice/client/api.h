// The sluice C++ client library: everything in one include.
#pragma once

#include "sluice/client/block_range.h"  // IWYU pragma: export
#include "sluice/client/client.h"       // IWYU pragma: export
#include "sluice/client/cursor_store.h" // IWYU pragma: export
#include "sluice/client/query.h"        // IWYU pragma: export
#include "sluice/client/stream.h"       // IWYU pragma: export
