#include "xpv/platform/sim/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

extern char** environ;

namespace xpv::platform::sim {

Result<Spawned> SpawnDomainProcess(const std::vector<std::string>& argv, int connection,
                                   DomId domid) {
  if (argv.empty()) return Err(EINVAL, "empty argv");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with(std::string(kEnvHvFd) + "=") ||
        kv.starts_with(std::string(kEnvDomId) + "=")) {
      continue;
    }
    env_storage.emplace_back(kv);
  }
  env_storage.push_back(std::string(kEnvHvFd) + "=" + std::to_string(kDomainConnectionFd));
  env_storage.push_back(std::string(kEnvDomId) + "=" + std::to_string(domid.value));
  std::vector<char*> envp;
  for (auto& kv : env_storage) envp.push_back(kv.data());
  envp.push_back(nullptr);

  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) return Err(errno, "pipe2");
  UniqueFd err_read(errpipe[0]), err_write(errpipe[1]);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return Err(errno, "fork");
  if (pid == 0) {
    int efd = err_write.get();
    auto fail = [efd](int e) {
      (void)!::write(efd, &e, sizeof e);
      ::_exit(127);
    };
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died already
    // Move the pipe out of the way of fd 3 if needed, then put the connection at fd 3.
    if (efd == kDomainConnectionFd) {
      efd = ::fcntl(efd, F_DUPFD_CLOEXEC, kDomainConnectionFd + 1);
      if (efd < 0) ::_exit(127);
    }
    if (devnull.valid() && devnull.get() != connection) ::dup2(devnull.get(), STDIN_FILENO);
    if (connection == kDomainConnectionFd) {
      if (::fcntl(connection, F_SETFD, 0) != 0) fail(errno);
    } else if (::dup2(connection, kDomainConnectionFd) < 0) {
      fail(errno);
    }
    // Nothing else of ours leaks into the domain (the error pipe is close-on-exec already).
    ::syscall(SYS_close_range, kDomainConnectionFd + 1, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
    sigset_t all;
    ::sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::setpgid(0, 0);  // terminal signals go to the hypervisor, which tears domains down in order
    ::execvpe(args[0], args.data(), envp.data());
    fail(errno);
  }
  err_write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof child_errno) {
    ::waitpid(pid, nullptr, 0);
    return Err(child_errno, "exec of the domain's program failed");
  }
  Spawned out;
  out.pid = pid;
  out.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!out.pidfd.valid()) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Err(errno, "pidfd_open");
  }
  return out;
}

}  // namespace xpv::platform::sim
