#include "xpv/platform/platform.h"

#include "xpv/abi/grant_table.h"

namespace xpv::platform {

static_assert(static_cast<int>(GrantStatus::kOkay) == GNTST_okay);
static_assert(static_cast<int>(GrantStatus::kGeneralError) == GNTST_general_error);
static_assert(static_cast<int>(GrantStatus::kBadDomain) == GNTST_bad_domain);
static_assert(static_cast<int>(GrantStatus::kBadGntref) == GNTST_bad_gntref);
static_assert(static_cast<int>(GrantStatus::kBadHandle) == GNTST_bad_handle);
static_assert(static_cast<int>(GrantStatus::kPermissionDenied) == GNTST_permission_denied);
static_assert(static_cast<int>(GrantStatus::kBadPage) == GNTST_bad_page);
static_assert(static_cast<int>(GrantStatus::kBadCopyArg) == GNTST_bad_copy_arg);
static_assert(static_cast<int>(GrantStatus::kEagain) == GNTST_eagain);
static_assert(static_cast<int>(GrantStatus::kNoSpace) == GNTST_no_space);

const char* GrantStatusName(GrantStatus s) {
  // grant_table.h's GNTTABOP_error_msgs, indexed by -status.
  static const char* const kMessages[] = GNTTABOP_error_msgs;
  const int i = -static_cast<int>(s);
  if (i < 0 || i >= static_cast<int>(sizeof kMessages / sizeof kMessages[0]))
    return "unknown status";
  return kMessages[i];
}

}  // namespace xpv::platform
