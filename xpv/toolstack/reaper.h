// What xl's own process per domain does, for `xpv create`: it waits for the domain's death and
// then removes what the toolstack wrote for it, so a domain that exits or crashes on its own
// leaves nothing behind (xl applies on_poweroff/on_crash = "destroy" the same way). The store
// removes the nodes the domain owned itself; the rest is the toolstack's: the domain's home
// (dom0's), its /vm/<uuid>, and its devices' backend directories (the backend domain's).
//
// `xpv create` starts one per domain: `xpv reap --domid N --pid P --vm /vm/<uuid> [--backend
// PATH]...`, detached, logging to <run dir>/reap-<name>.log. It ends after cleaning up, or when
// the store goes away (`xpv hv stop`).
#pragma once

#include <string>
#include <vector>

#include "xpv/base/types.h"
#include "xpv/toolstack/cli.h"
#include "xpv/xenstore/client.h"

namespace xpv::toolstack {

// One incarnation of a domain: a domid is reused, its /vm/<uuid> is not.
struct ReapTarget {
  DomId domid;
  int pid = 0;     // the domain's process (an xpv-hv domain is a process on this host)
  std::string vm;  // its /vm/<uuid>
  // Its devices' backend directories, as `xpv create` wrote them: after the death the frontend
  // nodes that point at them are gone (they were the domain's).
  std::vector<std::string> backends;
};

// The argv that starts a reaper for `target` (`xpv` is this executable).
std::vector<std::string> ReapArgs(const RunDir& run, const ReapTarget& target);

// Waits on @releaseDomain until the store has released the domain or its process is gone, then
// removes what the toolstack
// wrote for it, unless its home no longer names target.vm (`xpv destroy` cleaned up, and the
// domid may be another domain's by now). Returns the exit code.
int RunReaper(const RunDir& run, const ReapTarget& target);

// The domain's home and the /vm/<uuid> it points at (`xpv destroy` and the reaper).
void RemoveHome(xenstore::Client& xs, DomId domid);

}  // namespace xpv::toolstack
