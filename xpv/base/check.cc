#include "xpv/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace xpv::internal {

void CheckFailed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
  std::abort();
}

}  // namespace xpv::internal
