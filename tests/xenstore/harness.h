// Process-level harness for the xenstored interop tests: starts xpv-xenstored or Xen 4.17's C
// xenstored (through shared/peers/xenstored, an LD_PRELOAD shim that needs no Xen) on a socket in a
// fresh temp dir, talks raw xs_wire.h to them with bounded waits, and reads /proc for their RSS.
//
// Every wait here has a timeout, so a hung daemon fails a test instead of hanging the suite.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/wire.h"

namespace xpv::xenstore::interop {

// A fresh directory under $TMPDIR (default /tmp); removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name, created.
  std::string Sub(std::string_view name) const;

 private:
  std::string path_;
};

enum class Impl { kXpv, kXen };
std::string_view ImplName(Impl impl);
// For GoogleTest's messages.
inline void PrintTo(Impl impl, std::ostream* os) {
  *os << ImplName(impl);
}

// The xpv-xenstored binary: $XPV_XENSTORED, else the build's ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}.
std::string XpvDaemonPath();
// Empty when `impl` can run on this machine; otherwise why not, for GTEST_SKIP / a failure message.
std::string Unavailable(Impl impl);

// A daemon process listening on `dir`/socket. Killed (SIGKILL) when destroyed.
class Daemon {
 public:
  // Starts `impl` with its socket in `dir` and waits (bounded) until the socket accepts. `extra`
  // goes on the command line (xpv: after --socket; Xen: after -N -F pidfile). On failure the
  // daemon's log goes to stderr.
  static Result<Daemon> Start(Impl impl, const std::string& dir,
                              const std::vector<std::string>& extra = {});

  Daemon(Daemon&& other) noexcept;
  Daemon& operator=(Daemon&& other) noexcept;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();

  Impl impl() const { return impl_; }
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  // True while the process exists and is not a zombie.
  bool Alive() const;
  // Sends `sig` and, for SIGKILL/SIGTERM, waits up to 10 s for the process to be gone.
  // Returns false if it is still there.
  bool Kill(int sig = SIGKILL);
  // VmRSS in KiB from /proc/PID/status; 0 when unreadable.
  uint64_t RssKiB() const;
  // Open file descriptors of the daemon (entries of /proc/PID/fd); -1 when unreadable.
  int FdCount() const;
  // The daemon's stdout+stderr so far (last `max` bytes).
  std::string LogTail(size_t max = 4000) const;

 private:
  Daemon() = default;
  void Reap(int timeout_ms);

  Impl impl_ = Impl::kXpv;
  pid_t pid_ = -1;
  bool our_child_ = false;  // xpv: our child (waitpid); Xen: started by the peer script
  std::string socket_;
  std::string log_;
};

// One raw xs_wire.h connection with bounded waits. Sends whatever bytes it is given.
class RawConn {
 public:
  static Result<RawConn> Connect(const std::string& socket_path);

  // Sends all of `bytes` (MSG_NOSIGNAL), waiting up to timeout_ms for room.
  Status SendBytes(std::string_view bytes, int timeout_ms = 5000);
  Status Send(uint32_t type, uint32_t req_id, uint32_t tx_id, std::string_view payload);
  // The next whole message, waiting up to `timeout_ms`: ETIMEDOUT when none came, ECONNRESET when
  // the daemon closed the connection, EPROTO for a header whose len exceeds XENSTORE_PAYLOAD_MAX.
  Result<Message> Receive(int timeout_ms);
  // Sends a request and receives until a message that is not XS_WATCH_EVENT; events received on
  // the way are appended to `events` (may be null).
  Result<Message> Call(uint32_t type, uint32_t tx_id, std::string_view payload,
                       std::vector<Message>* events = nullptr, int timeout_ms = 5000);
  // True if the daemon closes the connection within `timeout_ms` (messages before EOF are dropped).
  bool WaitClosed(int timeout_ms);

  int fd() const { return fd_.get(); }

 private:
  explicit RawConn(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string inbuf_;
  uint32_t next_req_id_ = 1;
};

// "path\0" and friends.
std::string Z(std::string_view s);
// A payload of nul-terminated strings.
std::string Strings(std::initializer_list<std::string_view> parts);
// A printable rendering of bytes: C escapes for nul, quotes, backslash and non-printables, and
// long runs of one byte as x{N}.
std::string Escape(std::string_view bytes);
// "WRITE req=3 tx=0 \"...\"": the whole message, byte-exact up to escaping.
std::string Render(const Message& m);
std::string RenderRequest(uint32_t type, uint32_t req_id, uint32_t tx_id, std::string_view payload);

// Checks that the daemon on `socket` still serves a fresh client: WRITE then READ of a unique node,
// each answered within `timeout_ms`. Empty on success, else what went wrong.
std::string CheckStillServes(const std::string& socket, int timeout_ms = 5000);

}  // namespace xpv::xenstore::interop
