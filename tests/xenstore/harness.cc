#include "tests/xenstore/harness.h"

#include "xpv/base/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace xpv::xenstore::interop {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Compile definitions from tests/xenstore/CMakeLists.txt.
constexpr const char* kBuiltDaemon = XPV_XENSTORED_BIN;
constexpr const char* kBuiltPeerDir = XPV_XS_PEER_DIR;  // shared/peers/xenstored
constexpr const char* kPeerBuild = XPV_XS_PEER_BUILD;   // where its shim is built
constexpr const char* kXenDaemon = "/usr/lib/xen-4.17/bin/xenstored";
constexpr rlim_t kDaemonAddressSpace = rlim_t{4} << 30;

// $XS_PEER_DIR (as for the shell tests), else ../shared/peers/xenstored of the source tree.
std::string PeerDir() {
  if (const char* p = std::getenv("XS_PEER_DIR"); p && *p) return p;
  return kBuiltPeerDir;
}

bool Executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

void SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

std::string ReadFileTail(const std::string& path, size_t max) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? s.substr(s.size() - max) : s;
}

// The process state letter from /proc/PID/stat ('Z' zombie), or 0 when the process is gone.
char ProcState(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return 0;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return 0;
  return line[paren + 2];
}

}  // namespace

TempDir::TempDir(std::string_view tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = fmt::format("{}/xpv-{}-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
  XPV_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::Sub(std::string_view name) const {
  std::string p = fmt::format("{}/{}", path_, name);
  std::error_code ec;
  fs::create_directories(p, ec);
  return p;
}

std::string_view ImplName(Impl impl) {
  return impl == Impl::kXpv ? "xpv" : "xen";
}

std::string XpvDaemonPath() {
  if (const char* p = std::getenv("XPV_XENSTORED"); p && *p) return p;
  return kBuiltDaemon;
}

std::string Unavailable(Impl impl) {
  if (impl == Impl::kXpv) {
    const std::string bin = XpvDaemonPath();
    if (!Executable(bin)) return fmt::format("xpv-xenstored not built: no executable at {}", bin);
    return {};
  }
  if (!Executable(kXenDaemon)) {
    return fmt::format("Xen's C xenstored is absent ({}; Debian package xen-utils-4.17)",
                       kXenDaemon);
  }
  const std::string script = fmt::format("{}/start-cxenstored.sh", PeerDir());
  if (!Executable(script)) {
    return fmt::format("the reference-daemon scripts are absent ({}; ../shared is not checked out)",
                       script);
  }
  if (!fs::exists("/usr/include/xen/io/xs_wire.h")) {
    return "libxen-dev is absent (needed to build the xsshim.so LD_PRELOAD shim)";
  }
  // Build the shim once, serialised across parallel tests (the start script would build it too,
  // but unlocked).
  static std::string shim_error = [] {
    const std::string cmd = fmt::format(
        "mkdir -p '{0}' && flock '{0}/.lock' timeout 120 make -s -f '{1}/Makefile' OUT='{0}' "
        "'{0}/xsshim.so' >&2",
        kPeerBuild, PeerDir());
    if (std::system(cmd.c_str()) != 0) {
      return fmt::format("could not build the xsshim.so shim ({})", cmd);
    }
    return std::string();
  }();
  return shim_error;
}

// ---------------------------------------------------------------------------------------------
// Daemon

Result<Daemon> Daemon::Start(Impl impl, const std::string& dir,
                             const std::vector<std::string>& extra) {
  Daemon d;
  d.impl_ = impl;
  d.socket_ = dir + "/socket";
  if (impl == Impl::kXpv) {
    d.log_ = dir + "/xpv-xenstored.log";
    std::vector<std::string> args = {XpvDaemonPath(), "--socket", d.socket_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int log_fd = ::open(d.log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return Err(errno, "open daemon log");
    // A runaway daemon fails its test instead of eating the (shared) machine's memory. Sanitizer
    // builds reserve terabytes of address space, so they go unlimited.
    rlimit as_limit{RLIM_INFINITY, RLIM_INFINITY};
#ifndef XPV_TEST_SANITIZED
    if (std::getenv("XPV_XENSTORED") == nullptr)
      as_limit = {kDaemonAddressSpace, kDaemonAddressSpace};
#endif
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(log_fd);
      return Err(errno, "fork");
    }
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec (the test may have threads).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test must not leave daemons behind
      if (::getppid() != parent) ::_exit(127);
      ::setrlimit(RLIMIT_AS, &as_limit);
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      const int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
    d.pid_ = pid;
    d.our_child_ = true;
  } else {
    if (std::string why = Unavailable(Impl::kXen); !why.empty()) return Err(ENOENT, "xen daemon");
    d.log_ = dir + "/xenstored.log";
    std::string cmd =
        fmt::format("XSPEER_BUILD='{}' XSPEER_TIMEOUT=600 timeout 60 '{}/start-cxenstored.sh' '{}'",
                    kPeerBuild, PeerDir(), dir);
    for (const auto& a : extra) cmd += fmt::format(" '{}'", a);
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return Err(errno, "popen");
    char buf[64] = {};
    const bool got = std::fgets(buf, sizeof(buf), p) != nullptr;
    const int rc = ::pclose(p);
    if (!got || rc != 0) {
      std::fprintf(stderr, "start-cxenstored.sh failed (rc %d); log:\n%s\n", rc,
                   ReadFileTail(d.log_, 4000).c_str());
      return Err(EIO, "start-cxenstored.sh failed");
    }
    d.pid_ = static_cast<pid_t>(std::atoi(buf));
    d.our_child_ = false;
    if (d.pid_ <= 0) return Err(EIO, "start-cxenstored.sh printed no pid");
  }
  // Wait until the socket accepts (bounded).
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (true) {
    if (ConnectUnix(d.socket_)) return d;
    if (!d.Alive()) {
      std::fprintf(stderr, "%s daemon exited at start; log:\n%s\n", ImplName(impl).data(),
                   d.LogTail().c_str());
      return Err(EIO, "daemon exited at start");
    }
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "%s daemon's socket never accepted; log:\n%s\n", ImplName(impl).data(),
                   d.LogTail().c_str());
      return Err(ETIMEDOUT, "daemon socket never accepted");
    }
    SleepMs(10);
  }
}

Daemon::Daemon(Daemon&& o) noexcept
    : impl_(o.impl_),
      pid_(std::exchange(o.pid_, -1)),
      our_child_(o.our_child_),
      socket_(std::move(o.socket_)),
      log_(std::move(o.log_)) {}

Daemon& Daemon::operator=(Daemon&& o) noexcept {
  if (this != &o) {
    Kill();
    impl_ = o.impl_;
    pid_ = std::exchange(o.pid_, -1);
    our_child_ = o.our_child_;
    socket_ = std::move(o.socket_);
    log_ = std::move(o.log_);
  }
  return *this;
}

Daemon::~Daemon() {
  Kill();
}

bool Daemon::Alive() const {
  if (pid_ <= 0) return false;
  const char s = ProcState(pid_);
  return s != 0 && s != 'Z' && s != 'X';
}

void Daemon::Reap(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (our_child_) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) {
        pid_ = -1;
        return;
      }
    } else if (!Alive()) {
      pid_ = -1;
      return;
    }
    if (Clock::now() > deadline) return;
    SleepMs(5);
  }
}

bool Daemon::Kill(int sig) {
  if (pid_ <= 0) return true;
  ::kill(pid_, sig);
  if (sig != SIGKILL && sig != SIGTERM) return true;
  Reap(10000);
  if (pid_ > 0 && sig == SIGTERM) {
    ::kill(pid_, SIGKILL);
    Reap(10000);
  }
  return pid_ <= 0;
}

uint64_t Daemon::RssKiB() const {
  std::ifstream in(fmt::format("/proc/{}/status", pid_));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

int Daemon::FdCount() const {
  std::error_code ec;
  int n = 0;
  for (auto it = fs::directory_iterator(fmt::format("/proc/{}/fd", pid_), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

std::string Daemon::LogTail(size_t max) const {
  return ReadFileTail(log_, max);
}

// ---------------------------------------------------------------------------------------------
// RawConn

Result<RawConn> RawConn::Connect(const std::string& socket_path) {
  XPV_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(socket_path));
  return RawConn(std::move(fd));
}

Status RawConn::SendBytes(std::string_view bytes, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n =
        ::send(fd_.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Err(errno, "send");
    pollfd p{fd_.get(), POLLOUT, 0};
    const int left = RemainingMs(deadline);
    if (left == 0 || ::poll(&p, 1, left) == 0) return Err(ETIMEDOUT, "send: no room");
  }
  return Ok();
}

Status RawConn::Send(uint32_t type, uint32_t req_id, uint32_t tx_id, std::string_view payload) {
  std::string out;
  AppendMessage(out, static_cast<MsgType>(type), req_id, tx_id, payload);
  return SendBytes(out);
}

Result<Message> RawConn::Receive(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (inbuf_.size() >= kHeaderSize) {
      const Header h = DecodeHeader(std::span<const char, kHeaderSize>(inbuf_.data(), kHeaderSize));
      if (h.len > kPayloadMax) return Err(EPROTO, "message longer than XENSTORE_PAYLOAD_MAX");
      if (inbuf_.size() >= kHeaderSize + h.len) {
        Message m{h, inbuf_.substr(kHeaderSize, h.len)};
        inbuf_.erase(0, kHeaderSize + h.len);
        return m;
      }
    }
    pollfd p{fd_.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return Err(ETIMEDOUT, "no message within the timeout");
    if (r < 0) {
      if (errno == EINTR) continue;
      return Err(errno, "poll");
    }
    char buf[16384];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return Err(ECONNRESET, "daemon closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Err(errno, "recv");
    }
    inbuf_.append(buf, static_cast<size_t>(n));
  }
}

Result<Message> RawConn::Call(uint32_t type, uint32_t tx_id, std::string_view payload,
                              std::vector<Message>* events, int timeout_ms) {
  XPV_TRY(Send(type, next_req_id_++, tx_id, payload));
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    XPV_ASSIGN_OR_RETURN(Message m, Receive(RemainingMs(deadline)));
    if (m.header.type != XS_WATCH_EVENT) return m;
    if (events != nullptr) events->push_back(std::move(m));
  }
}

bool RawConn::WaitClosed(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    char buf[16384];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return true;  // ECONNRESET
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

std::string Z(std::string_view s) {
  std::string out(s);
  out += '\0';
  return out;
}

std::string Strings(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) {
    out += p;
    out += '\0';
  }
  return out;
}

std::string Escape(std::string_view bytes) {
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    size_t run = 1;
    while (i + run < bytes.size() && bytes[i + run] == bytes[i]) ++run;
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    std::string one;
    if (c == 0) {
      one = "\\0";
    } else if (c == '\\' || c == '"') {
      one = fmt::format("\\{}", static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      one = fmt::format("\\x{:02x}", c);
    } else {
      one = std::string(1, static_cast<char>(c));
    }
    if (run >= 8) {
      out += fmt::format("{}{{{}}}", one, run);
      i += run;
    } else {
      out += one;
      ++i;
    }
  }
  return out;
}

std::string RenderRequest(uint32_t type, uint32_t req_id, uint32_t tx_id,
                          std::string_view payload) {
  return fmt::format("{}({}) req={} tx={} len={} \"{}\"", MsgTypeName(type), type, req_id, tx_id,
                     payload.size(), Escape(payload));
}

std::string Render(const Message& m) {
  return RenderRequest(m.header.type, m.header.req_id, m.header.tx_id, m.payload);
}

std::string CheckStillServes(const std::string& socket, int timeout_ms) {
  static std::atomic<int> counter{0};
  auto conn = RawConn::Connect(socket);
  if (!conn) return fmt::format("connect failed: {}", std::strerror(conn.error().code));
  const std::string path = fmt::format("/probe/p{}-{}", ::getpid(), counter++);
  const std::string value = "alive";
  auto w = conn->Call(XS_WRITE, 0, Z(path) + value, nullptr, timeout_ms);
  if (!w) return fmt::format("WRITE {}: {}", path, std::strerror(w.error().code));
  if (w->header.type != XS_WRITE) return fmt::format("WRITE {} answered {}", path, Render(*w));
  auto r = conn->Call(XS_READ, 0, Z(path), nullptr, timeout_ms);
  if (!r) return fmt::format("READ {}: {}", path, std::strerror(r.error().code));
  if (r->header.type != XS_READ || r->payload != value) {
    return fmt::format("READ {} answered {}", path, Render(*r));
  }
  return {};
}

}  // namespace xpv::xenstore::interop
