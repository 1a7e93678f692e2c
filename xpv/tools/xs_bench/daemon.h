// A store daemon under benchmark: a process, its socket, and what /proc says it costs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/tools/xs_bench/loadgen.h"

namespace xpv::xs_bench {

// Owns a running daemon: stopped (SIGTERM, then SIGKILL) when destroyed.
class Daemon {
 public:
  // Starts `argv` (argv[0] is a path) with stdout and stderr in `log`, and waits until `socket`
  // accepts connections. The child gets SIGKILL if the bench dies first.
  static Result<Daemon> Spawn(const std::vector<std::string>& argv, std::string socket,
                              const std::string& log);
  // Runs a script that starts a daemon in the background and prints its pid, as
  // shared/peers/xenstored/start-cxenstored.sh DIR does; the socket is DIR/socket.
  static Result<Daemon> StartWithScript(const std::string& script, const std::string& dir);

  Daemon(Daemon&& other) noexcept;
  Daemon& operator=(Daemon&&) = delete;
  Daemon(const Daemon&) = delete;
  ~Daemon();

  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }

  // User plus system CPU time of the whole process so far (/proc/PID/stat utime + stime).
  Result<Seconds> CpuTime() const;
  // Resident set size (/proc/PID/status VmRSS).
  Result<uint64_t> RssBytes() const;
  bool Running() const;
  // Confines every thread of the daemon to one CPU (threads it starts later inherit that).
  Status PinTo(int cpu) const;

 private:
  enum class Parent { kUs, kOther };
  Daemon(pid_t pid, Parent parent, std::string socket)
      : pid_(pid), parent_(parent), socket_(std::move(socket)) {}
  void Stop();

  pid_t pid_;
  Parent parent_;  // only our own children can (and must) be reaped with waitpid
  std::string socket_;
};

}  // namespace xpv::xs_bench
