#include "xpv/block/sandbox.h"

#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <memory>

namespace xpv::block {

Status DropToUser(const std::string& user) {
  errno = 0;
  passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) return Err(errno != 0 ? errno : ENOENT, "no such user");
  if (::setgroups(0, nullptr) != 0) return Err(errno, "setgroups");
  if (::setgid(pw->pw_gid) != 0) return Err(errno, "setgid");
  if (::setuid(pw->pw_uid) != 0) return Err(errno, "setuid");
  if (::setuid(0) == 0) return Err(EPERM, "could regain root after setuid");
  return Ok();
}

Status InstallSeccompFilter() {
  // What the backend does after start-up: its epoll loop, the store (socket or ring), xpv-hv's
  // socket (messages with descriptors, mmap of granted frames), io_uring, opening images of new
  // devices, eventfds. No exec, no new sockets, no ptrace, no mount, no module or key calls.
  static constexpr const char* kAllowed[] = {"read",
                                             "write",
                                             "readv",
                                             "writev",
                                             "pread64",
                                             "pwrite64",
                                             "close",
                                             "fstat",
                                             "newfstatat",
                                             "statx",
                                             "lseek",
                                             "openat",
                                             "ioctl",
                                             "fcntl",
                                             "dup",
                                             "mmap",
                                             "munmap",
                                             "mprotect",
                                             "madvise",
                                             "brk",
                                             "mremap",
                                             "epoll_wait",
                                             "epoll_pwait",
                                             "epoll_ctl",
                                             "epoll_create1",
                                             "eventfd2",
                                             "poll",
                                             "ppoll",
                                             "io_uring_setup",
                                             "io_uring_enter",
                                             "io_uring_register",
                                             "sendmsg",
                                             "recvmsg",
                                             "sendto",
                                             "recvfrom",
                                             "futex",
                                             "clock_gettime",
                                             "clock_nanosleep",
                                             "nanosleep",
                                             "getpid",
                                             "gettid",
                                             "getuid",
                                             "geteuid",
                                             "getrandom",
                                             "rt_sigreturn",
                                             "rt_sigprocmask",
                                             "rt_sigaction",
                                             "fallocate",
                                             "fdatasync",
                                             "fsync",
                                             "sched_yield",
                                             "exit",
                                             "exit_group",
                                             "tgkill",
                                             "restart_syscall",
                                             "pidfd_open",
                                             "prlimit64",
                                             "uname",
                                             "set_robust_list",
                                             "rseq",
                                             "membarrier"};
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)),
                                                       seccomp_release);
  if (!ctx) return Err(ENOMEM, "seccomp_init");
  for (const char* name : kAllowed) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (int r = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); r < 0)
      return Err(-r, "seccomp_rule_add");
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Err(errno, "PR_SET_NO_NEW_PRIVS");
  if (int r = seccomp_load(ctx.get()); r < 0) return Err(-r, "seccomp_load");
  return Ok();
}

}  // namespace xpv::block
