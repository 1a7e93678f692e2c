// The parts of the Xen platform that are pure logic, kept apart so they are tested on any host:
// how a failed gntdev mapping's errno becomes a GNTST_* status, and which domains died between
// two scans of the hypervisor's domain list (what Xen's xenstored does on VIRQ_DOM_EXC).
#pragma once

#include <cstdint>
#include <span>
#include <unordered_set>
#include <utility>
#include <vector>

#include "xpv/base/types.h"
#include "xpv/platform/platform.h"

namespace xpv::platform::xen {

// Linux's gntdev reports a failed map as an errno, not the hypercall's per-op status
// (drivers/xen/gntdev.c map_grant_pages: any op whose status is not GNTST_okay makes the mmap
// fail with EINVAL). This is the one place that maps it back: EINVAL is taken as a bad grant
// reference, by far its most common cause (not granted, granted to another domain, ended).
GrantStatus GrantStatusFromErrno(int err);

// One domain of a scan: what DeathTracker needs of xc_domaininfo_t.
struct DomainState {
  DomId domid;
  bool dying = false;     // XEN_DOMINF_dying: destroyed, a zombie until its pages are released
  bool shutdown = false;  // XEN_DOMINF_shutdown: stopped, not yet destroyed
};

// Turns successive scans of the domain list into "died" events, as Xen's xenstored
// check_domains() does (tools/xenstore/xenstored_domain.c): a domain is dead once it is dying
// or gone from the list. Each death is reported once; a domid that comes back (reuse) is a new
// domain.
class DeathTracker {
 public:
  // The first scan: domains already dying are reported by the next Update.
  void Reset(std::span<const DomainState> scan);
  // Domains that died since the previous scan, in ascending domid order.
  std::vector<DomId> Update(std::span<const DomainState> scan);
  // Domains the last Update found shut down and not dying, that were not shut down before
  // (each reported once until it runs again), in ascending domid order.
  std::vector<DomId> TakeShutdown() { return std::exchange(new_shutdown_, {}); }

 private:
  std::unordered_set<uint32_t> shutdown_;  // shut down in the last scan
  std::vector<DomId> new_shutdown_;
  std::unordered_set<uint32_t> alive_;     // seen alive (not dying) in the last scan
  std::unordered_set<uint32_t> reported_;  // reported dead, still listed (zombies)
};

}  // namespace xpv::platform::xen
