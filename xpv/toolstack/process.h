// Processes the toolstack starts and watches: the daemons of `xpv hv start`, the per-domain
// reapers of `xpv create`, and the domains themselves (on xpv-hv, a domain is a process here).
#pragma once

#include <string>
#include <vector>

#include "xpv/base/result.h"

namespace xpv::toolstack {

// Starts `argv` in the background, detached (its own session, stdin from /dev/null), its output
// appended to `log`. Returns its pid.
Result<int> Spawn(const std::vector<std::string>& argv, const std::string& log);

// Whether `pid` runs. A process we did not start is not our child, and where nothing reaps
// orphans (PID 1 of a container) it stays a zombie after exiting: that counts as gone.
bool Alive(int pid);

// The directory of this executable: xpv-hv, xpv-xenstored and xpv itself are built there.
std::string BinDir();

}  // namespace xpv::toolstack
