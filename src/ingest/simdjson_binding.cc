#include "ingest/simdjson_binding.h"

#include <dlfcn.h>

#include <string>

namespace sluice::ingest::internal {

arrow::Status CheckSimdjsonBinding() {
  static const arrow::Status status = [] {
    // The definition every reference binds to: the first in the global lookup scope.
    void* sym = ::dlsym(RTLD_DEFAULT, "_ZN8simdjson25get_active_implementationEv");
    Dl_info info{};
    if (!sym || !::dladdr(sym, &info) || !info.dli_fname) return arrow::Status::OK();
    std::string file = info.dli_fname;
    if (file.find("simdjson") != std::string::npos) return arrow::Status::OK();
    return arrow::Status::Invalid(
        "simdjson is bound to ", file,
        " instead of libsimdjson: that library exports its own simdjson, whose ABI differs "
        "from the headers sluice was compiled with. Link libsimdjson before libparquet/"
        "libarrow and without --as-needed (see src/CMakeLists.txt)");
  }();
  return status;
}

}  // namespace sluice::ingest::internal
