// Connecting to a Unix-domain socket by path: the one piece every client of a local daemon needs.
#pragma once

#include <sys/socket.h>

#include <string>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"

namespace xpv {

// A socket of `type` (SOCK_STREAM, SOCK_SEQPACKET; may include SOCK_NONBLOCK) connected to `path`,
// close-on-exec. ENAMETOOLONG for a path that does not fit sockaddr_un.
Result<UniqueFd> ConnectUnix(const std::string& path, int type = SOCK_STREAM);

}  // namespace xpv
