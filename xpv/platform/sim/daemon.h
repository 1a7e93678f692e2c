// xpv-hv as a library: the simulated hypervisor's event loop around the core (hypervisor.h).
//
// Connections:
//  - The listening socket (--socket, $XPV_HV_SOCKET, /run/xpv/hv.sock) accepts only peers whose
//    SO_PEERCRED uid is the daemon's own or root. Their first request says who they are: a dom0
//    toolstack session, or a new privileged service domain (a daemon such as xpv-xenstored that
//    is a domain of its own, as Xen's xenstore stub domain is).
//  - Every other domain is known by a socketpair the daemon made when dom0 created it: either
//    inherited by the process the daemon spawned (fd 3, XPV_HV_FD) or handed to dom0 in the
//    reply, to give to any process or thread it likes.
// A domain whose connection closes or whose process exits is destroyed as a crashed Xen guest.
//
// The loop never blocks on a domain: replies are sent non-blocking, and a connection whose
// reply does not fit is not read again until it drains.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "xpv/base/log.h"
#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/platform/sim/hypervisor.h"
#include "xpv/platform/sim/wire.h"

namespace xpv::platform::sim {

struct HvOptions {
  std::string socket_path;  // empty: DefaultSocketPath()
  HypervisorOptions hypervisor;
  size_t max_connections = 4096;
  std::string pid_file;
  LogSink log_sink = LogSink::kStderr;
  std::string log_level = "info";
};

class HvServer {
 public:
  static Result<std::unique_ptr<HvServer>> Create(const HvOptions& options);
  // Kills the domains' processes it spawned.
  ~HvServer();
  HvServer(const HvServer&) = delete;
  HvServer& operator=(const HvServer&) = delete;

  // Runs until Stop(); returns 0.
  int Run();
  // One loop iteration, waiting up to timeout_ms. False once stopped.
  bool RunOnce(int timeout_ms);
  // Thread-safe and async-signal-safe.
  void Stop();

  const std::string& socket_path() const { return socket_path_; }
  Hypervisor& hypervisor() { return *hv_; }
  size_t connection_count() const { return conns_.size(); }

 private:
  struct Conn;
  struct Child {
    int pid = 0;
    UniqueFd pidfd;
    DomId domid;
    uint64_t incarnation = 0;
  };
  struct Out {
    std::vector<uint8_t> bytes;
    std::vector<UniqueFd> fds;
  };

  HvServer() = default;
  void Accept();
  void OnConnReady(Conn& c, uint32_t events);
  void OnChildExit(int pidfd);
  void Dispatch(Conn& c, wire::Received& msg);
  void SendReply(Conn& c, Out out);
  void ScheduleClose(Conn& c);
  void CloseConn(int fd);
  void DomainGone(DomId domid, uint64_t incarnation);
  Conn* AddConn(UniqueFd fd, bool from_listener, DomId domid, uint64_t incarnation);

  static Out ErrorOut(const wire::Header& req, int error);
  // Handlers: each returns the reply.
  Out Hello(Conn& c, const wire::Received& m);
  Out GrantMap(Conn& c, const wire::Received& m);
  Out GrantUnmap(Conn& c, const wire::Received& m);
  Out GrantCopy(Conn& c, const wire::Received& m);
  Out Evtchn(Conn& c, const wire::Received& m, wire::Op op);
  Out DomainCreate(Conn& c, const wire::Received& m);
  Out DomainOp(Conn& c, const wire::Received& m, wire::Op op);

  HvOptions options_;
  std::string socket_path_;
  std::unique_ptr<Hypervisor> hv_;
  UniqueFd epoll_;
  UniqueFd listen_;
  UniqueFd stop_;
  uint32_t uid_ = 0;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;  // by fd
  std::unordered_map<SessionId, int> by_session_;         // session -> conn fd
  std::unordered_map<int, Child> children_;               // by pidfd
  std::vector<int> to_close_;
  bool running_ = true;
};

// Everything xpv-hv's main does after parsing flags: runs until SIGTERM or SIGINT.
int RunDaemon(const HvOptions& options);

}  // namespace xpv::platform::sim
