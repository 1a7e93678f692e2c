// Unix-domain sockets by path: connecting, as every client of a local daemon does, and listening.
#pragma once

#include <sys/socket.h>

#include <string>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"

namespace xpv {

// A socket of `type` (SOCK_STREAM, SOCK_SEQPACKET; may include SOCK_NONBLOCK) connected to `path`,
// close-on-exec. ENAMETOOLONG for a path that does not fit sockaddr_un.
Result<UniqueFd> ConnectUnix(const std::string& path, int type = SOCK_STREAM);

// A socket of `type` (may include SOCK_NONBLOCK) listening at `path`, close-on-exec. A file left
// at `path` (the socket of an earlier run) is replaced. ENAMETOOLONG as above.
Result<UniqueFd> ListenUnix(const std::string& path, int type = SOCK_STREAM,
                            int backlog = SOMAXCONN);

}  // namespace xpv
