// XPV_CHECK: for bugs, never for anything a guest, peer or user controls (use Result for those).
#pragma once

namespace xpv::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr);
}  // namespace xpv::internal

#define XPV_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::xpv::internal::CheckFailed(__FILE__, __LINE__, #cond))
