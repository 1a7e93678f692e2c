// A conformance check of the Xen platform, run on real Xen (tests/realxen, `xpv-xen-check`):
// each of platform.h's operations against the hypervisor, with the results Xen gives.
//   - event channels: alloc unbound + bind interdomain to ourselves, the bound port starts
//     pending, NextPending masks until Unmask, notify crosses, close;
//   - grants: SharePages to ourselves (gntalloc), Map it back (gntdev), both views agree; grant
//     copy into a pool page; a copy crossing a page is GNTST_bad_copy_arg without a hypercall;
//     a bad ref maps to a non-okay status; EndAccess; GrantAccess on a plain page is EOPNOTSUPP;
//   - a peer's grant (e.g. a domU's netfront ring ref), mapped read-only;
//   - domain control: List has domain 0 and the peer; no death pending.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "xpv/platform/xen/xen_platform.h"

namespace xpv::platform::xen {

struct CheckResult {
  std::string name;
  bool ok = false;
  std::string detail;
};

struct CheckOptions {
  std::optional<DomId> peer;         // a running domU
  std::optional<GrantRef> peer_ref;  // a ref it granted to us
};

std::vector<CheckResult> RunChecks(XenPlatform& platform, const CheckOptions& options);

}  // namespace xpv::platform::xen
