// Internal: a check that simdjson's out-of-line code is the library the ingest
// layer was compiled against.
//
// The pyarrow wheel's libparquet.so (and libarrow.so) export symbols of their own,
// newer, simdjson. If the dynamic linker binds ingest's simdjson calls to them
// (libparquet before libsimdjson in the executable's NEEDED list, or libsimdjson
// dropped by --as-needed), parsing crashes on the ABI mismatch. This check turns
// that into a clear error.
#pragma once

#include "arrow/status.h"

namespace sluice::ingest::internal {

/// \brief OK when simdjson's entry point resolves to a libsimdjson shared object
/// (or cannot be located); Invalid naming the object it resolves to otherwise.
/// Cheap after the first call.
arrow::Status CheckSimdjsonBinding();

}  // namespace sluice::ingest::internal
