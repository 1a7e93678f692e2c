// The Platform over real Xen: the /dev/xen devices through Debian's libraries (libxen-dev):
// libxengnttab (gntdev: map and copy; gntalloc through its xengntshr_* half), libxenevtchn
// (/dev/xen/evtchn), libxenforeignmemory (privcmd) and libxenctrl (domctls).
//
//   auto p = xpv::platform::xen::ConnectXen();   // ENOENT "not running on Xen..." elsewhere
//
// Semantics are platform.h's, with these Xen-specific points (docs/xen-platform.md):
// - GuestMemory is a pool of page-aligned memory of this process; a Gfn is an index into the
//   pool, not a machine frame. It is what a CopyPtr kLocal names: grant copy's local side is a
//   virtual address on Linux (xengnttab_grant_copy).
// - GrantTable::GrantAccess works only on pages that SharePages allocated for that peer:
//   Linux's gntalloc grants pages it allocates itself, never arbitrary ones. Other pages fail
//   with EOPNOTSUPP. EndAccess cannot report EBUSY: gntalloc defers the revocation in the kernel
//   until the peer unmaps, and the page must not be reused before that (it is not: the pool
//   slot is gone).
// - A failed gntdev map reports an errno for the whole call; Map retries entry by entry to give
//   each one a status (GrantStatusFromErrno).
// - control() is non-null in a privileged domain (/proc/xen/capabilities says control_d) whose
//   xc_interface_open succeeds. Its death_fd is VIRQ_DOM_EXC (XenOptions::watch_deaths) on an
//   event channel handle of its own; TakeDead scans the domain list as Xen's xenstored
//   check_domains() does.
// - self() is 0 in the control domain, else $XPV_DOMID, else DOMID_SELF.
//
// Objects handed out (mappings, foreign pages) must not outlive the platform.
#pragma once

#include <memory>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/platform/platform.h"

namespace xpv::platform::xen {

// The store ring of the domain this process runs in, as its kernel set it up for a local store
// daemon (XS_LOCAL): /proc/xen/xsd_kva mapped, and the unbound port in /proc/xen/xsd_port.
// Xen's xenstored: xenbus_map() and xenbus_evtchn() in xenstored_linux.c.
struct LocalStoreRing {
  std::unique_ptr<ForeignPage> page;
  EvtchnPort port;  // our own unbound port, offered to ourselves: bind it interdomain to self()
};

// Pages granted to one peer at allocation (gntalloc): first..first+count-1 in the pool.
struct SharedPages {
  Gfn first;
  std::vector<GrantRef> refs;  // refs[i] grants page first+i
};

class XenPlatform : public Platform {
 public:
  // Allocates `count` pages granted to `peer` (xengntshr_share_pages) and adds them to the pool.
  // GrantAccess(peer, gfn) on them returns their ref; EndAccess on every ref frees them.
  virtual Result<SharedPages> SharePages(DomId peer, size_t count, Access access) = 0;
  // The local store ring (privileged domains running the store daemon).
  virtual Result<LocalStoreRing> OpenLocalStoreRing() = 0;
};

struct XenOptions {
  // Bind VIRQ_DOM_EXC for DomainControl::death_fd. Xen lets one port per domain bind it: the
  // store daemon does; everyone else leaves it (their death_fd never fires; TakeDead still
  // scans). With this set, ConnectXen fails with EEXIST if another process holds it.
  bool watch_deaths = false;
};

// ENOENT "not running on Xen: /dev/xen/evtchn missing" on a host without Xen.
Result<std::unique_ptr<XenPlatform>> ConnectXen(const XenOptions& options = {});

}  // namespace xpv::platform::xen
