#include "xpv/base/unix_socket.h"

#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xpv {

namespace {

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return Err(ENAMETOOLONG, "socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<UniqueFd> ConnectUnix(const std::string& path, int type) {
  XPV_ASSIGN_OR_RETURN(const sockaddr_un addr, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Err(errno, "socket");
  // SAFETY: sockaddr_un is the sockaddr connect expects for AF_UNIX.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Err(errno, "connect");
  }
  return fd;
}

Result<UniqueFd> ListenUnix(const std::string& path, int type, int backlog) {
  XPV_ASSIGN_OR_RETURN(const sockaddr_un addr, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Err(errno, "socket");
  ::unlink(path.c_str());
  // SAFETY: as in ConnectUnix.
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Err(errno, "bind");
  }
  if (::listen(fd.get(), backlog) != 0) return Err(errno, "listen");
  return fd;
}

}  // namespace xpv
