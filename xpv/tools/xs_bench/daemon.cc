#include "xpv/tools/xs_bench/daemon.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/client.h"

namespace xpv::xs_bench {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopTimeout = std::chrono::seconds(2);
constexpr auto kPollInterval = std::chrono::milliseconds(20);
// The start script's daemon outlives us if we are SIGKILLed; its own timeout is the last resort.
constexpr const char* kPeerTimeoutSeconds = "1800";

// argv as execv wants it; the strings must outlive the result.
std::vector<char*> ExecArgs(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return args;
}

// In a forked child: make `fd` the child's `target` descriptor, or die.
void Redirect(int fd, int target) {
  if (fd < 0 || ::dup2(fd, target) < 0) ::_exit(126);
}

// Runs `argv` to completion and returns its stdout; stderr passes through.
Result<std::string> RunAndCapture(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Err(errno, "pipe2");
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  std::vector<char*> args = ExecArgs(argv);
  const pid_t pid = ::fork();
  if (pid < 0) return Err(errno, "fork");
  if (pid == 0) {
    Redirect(::open("/dev/null", O_RDONLY), STDIN_FILENO);
    Redirect(write_end.get(), STDOUT_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  write_end.reset();
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(read_end.get(), buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Err(ECHILD, "start script failed");
  return out;
}

// The fields of /proc/PID/stat after the command name, which may itself hold spaces and ')'.
Result<std::vector<std::string>> StatFields(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return Err(ESRCH, "daemon has exited");
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return Err(EPROTO, "unparseable /proc/PID/stat");
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

}  // namespace

Result<Daemon> Daemon::Spawn(const std::vector<std::string>& argv, std::string socket,
                             const std::string& log) {
  if (argv.empty()) return Err(EINVAL, "no daemon command");
  if (::access(argv[0].c_str(), X_OK) != 0) return Err(errno, "daemon binary not executable");
  std::vector<char*> args = ExecArgs(argv);
  const pid_t bench = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Err(errno, "fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != bench) ::_exit(1);  // the bench died before prctl
    Redirect(::open("/dev/null", O_RDONLY), STDIN_FILENO);
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    Redirect(log_fd, STDOUT_FILENO);
    Redirect(log_fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  Daemon daemon(pid, Parent::kUs, std::move(socket));
  for (const auto deadline = Clock::now() + kStartTimeout;;
       std::this_thread::sleep_for(kPollInterval)) {
    if (!daemon.Running()) return Err(ECHILD, "daemon exited during start-up (see its log)");
    if (xenstore::Client::Connect(daemon.socket())) return daemon;
    if (Clock::now() > deadline) return Err(ETIMEDOUT, "daemon socket not ready after 10 s");
  }
}

Result<Daemon> Daemon::StartWithScript(const std::string& script, const std::string& dir) {
  ::setenv("XSPEER_TIMEOUT", kPeerTimeoutSeconds, /*overwrite=*/0);
  XPV_ASSIGN_OR_RETURN(std::string out, RunAndCapture({script, dir}));
  pid_t pid = 0;
  const size_t digits = out.find_first_of("0123456789");
  if (digits == std::string::npos ||
      std::from_chars(out.data() + digits, out.data() + out.size(), pid).ec != std::errc() ||
      pid <= 0) {
    return Err(EPROTO, "start script printed no pid");
  }
  return Daemon(pid, Parent::kOther, dir + "/socket");
}

Daemon::Daemon(Daemon&& other) noexcept
    : pid_(std::exchange(other.pid_, 0)),
      parent_(other.parent_),
      socket_(std::move(other.socket_)) {}

Daemon::~Daemon() {
  Stop();
}

void Daemon::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (const auto deadline = Clock::now() + kStopTimeout; Running() && Clock::now() < deadline;) {
    std::this_thread::sleep_for(kPollInterval);
  }
  if (Running()) ::kill(pid_, SIGKILL);
  if (parent_ == Parent::kUs) {
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = 0;
}

bool Daemon::Running() const {
  // A zombie has stopped running; /proc/PID/stat field 3 is its state.
  Result<std::vector<std::string>> fields = StatFields(pid_);
  return fields && !fields->empty() && (*fields)[0] != "Z";
}

Status Daemon::PinTo(int cpu) const {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
    const pid_t tid = std::stoi(task.path().filename().string());
    if (::sched_setaffinity(tid, sizeof(set), &set) != 0) return Err(errno, "sched_setaffinity");
  }
  if (ec) return Err(ec.value(), "cannot list the daemon's threads");
  return Ok();
}

Result<Seconds> Daemon::CpuTime() const {
  XPV_ASSIGN_OR_RETURN(std::vector<std::string> fields, StatFields(pid_));
  // proc(5): utime and stime are fields 14 and 15, in clock ticks; fields[0] is field 3.
  if (fields.size() < 13) return Err(EPROTO, "short /proc/PID/stat");
  const double ticks = std::stod(fields[11]) + std::stod(fields[12]);
  return Seconds(ticks / static_cast<double>(::sysconf(_SC_CLK_TCK)));
}

Result<uint64_t> Daemon::RssBytes() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;  // "VmRSS: N kB"
  }
  return Err(ESRCH, "no VmRSS for daemon");
}

}  // namespace xpv::xs_bench
