// Starting a domain's process: the program runs with its hypervisor connection inherited as fd 3
// and XPV_HV_FD=3, XPV_DOMID=<domid> in its environment, which ConnectSim() picks up.
#pragma once

#include <string>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/types.h"
#include "xpv/base/unique_fd.h"
#include "xpv/platform/sim/config.h"

namespace xpv::platform::sim {

inline constexpr int kDomainConnectionFd = 3;

struct Spawned {
  int pid = 0;
  UniqueFd pidfd;  // readable when the process exits
};

// Runs argv[0] (searched in PATH) with `connection` as fd 3. Fails (ENOENT, EACCES, ...) if the
// program cannot be executed: the error comes back from the child before this returns. The child
// dies with the thread that spawned it (PR_SET_PDEATHSIG), so domains never outlive their
// hypervisor.
Result<Spawned> SpawnDomainProcess(const std::vector<std::string>& argv, int connection,
                                   DomId domid);

}  // namespace xpv::platform::sim
