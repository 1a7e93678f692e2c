// Deprivileging xpv-blkback: drop to an unprivileged user, then confine the process to the
// system calls its data path needs with a seccomp filter (libseccomp). A call outside the list
// fails with EPERM rather than killing the process, so a missed call shows up as an error in the
// log, not as a vanished backend.
#pragma once

#include <string>

#include "xpv/base/result.h"

namespace xpv::block {

// setgroups/setgid/setuid to `user` (a name from the passwd database). Must run as root.
Status DropToUser(const std::string& user);
// Installs the filter for this thread and the ones it creates later (PR_SET_NO_NEW_PRIVS first).
Status InstallSeccompFilter();

}  // namespace xpv::block
