#include "xpv/toolstack/cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "xpv/base/unique_fd.h"
#include "xpv/base/unix_socket.h"
#include "xpv/platform/sim/client.h"
#include "xpv/toolstack/xl_config.h"
#include "xpv/xenstore/client.h"

namespace xpv::toolstack {

namespace {

namespace fs = std::filesystem;
using platform::sim::SimDomainControl;
using platform::sim::SimPlatform;
using xenstore::Client;
using xenstore::MsgType;

constexpr int kStartTimeoutMs = 10000;
constexpr int kStopTimeoutMs = 5000;

void Fail(const std::string& what, const Error& e) {
  std::fprintf(stderr, "xpv: %s: %s (%s)\n", what.c_str(), std::string(e.message).c_str(),
               std::strerror(e.code));
}

std::string Z(std::string_view s) {
  return std::string(s) + '\0';
}

// The directory of this executable: xpv-hv and xpv-xenstored are built beside it.
std::string BinDir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

std::optional<int> ReadPid(const std::string& path) {
  std::ifstream in(path);
  int pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  return pid;
}

bool Alive(int pid) {
  return ::kill(pid, 0) == 0;
}

// Whether a daemon listens at `path` (xpv-hv's socket is SOCK_SEQPACKET, the store's a stream).
bool SocketAccepts(const std::string& path) {
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
    if (ConnectUnix(path, type)) return true;
  }
  return false;
}

bool WaitForSocket(const std::string& path, int child, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(path) && SocketAccepts(path)) return true;
    if (child > 0 && !Alive(child)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Starts `argv` in the background, detached (its own session), output to `log`.
Result<int> Spawn(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid < 0) return Err(errno, "fork");
  if (pid == 0) {
    ::setsid();
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return static_cast<int>(pid);
}

void StopPid(const std::string& pid_file, const char* what) {
  auto pid = ReadPid(pid_file);
  if (!pid || !Alive(*pid)) {
    ::unlink(pid_file.c_str());
    return;
  }
  ::kill(*pid, SIGTERM);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kStopTimeoutMs);
  while (Alive(*pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (Alive(*pid)) {
    std::fprintf(stderr, "xpv: %s (pid %d) ignored SIGTERM: killing it\n", what, *pid);
    ::kill(*pid, SIGKILL);
  }
  ::unlink(pid_file.c_str());
}

int HvStop(const RunDir& run) {
  // The store first: it is a domain of the hypervisor.
  StopPid(run.store_pid(), "xpv-xenstored");
  StopPid(run.hv_pid(), "xpv-hv");
  std::printf("stopped (run dir %s)\n", run.dir.c_str());
  return 0;
}

int HvStart(const RunDir& run) {
  std::error_code ec;
  fs::create_directories(run.dir, ec);
  if (ec) {
    std::fprintf(stderr, "xpv: run dir %s: %s\n", run.dir.c_str(), ec.message().c_str());
    return 1;
  }
  if (auto pid = ReadPid(run.hv_pid()); pid && Alive(*pid)) {
    std::fprintf(stderr, "xpv: xpv-hv already runs (pid %d) in %s\n", *pid, run.dir.c_str());
    return 1;
  }
  const std::string bin = BinDir();
  auto hv = Spawn({bin + "/xpv-hv", "--socket", run.hv_socket(), "--pid-file", run.hv_pid()},
                  run.hv_log());
  if (!hv || !WaitForSocket(run.hv_socket(), *hv, kStartTimeoutMs)) {
    std::fprintf(stderr, "xpv: xpv-hv did not start: see %s\n", run.hv_log().c_str());
    if (hv) ::kill(*hv, SIGTERM);
    return 1;
  }
  auto xs = Spawn({bin + "/xpv-xenstored", "--platform", "sim", "--hv-socket", run.hv_socket(),
                   "--socket", run.store_socket(), "--pid-file", run.store_pid()},
                  run.store_log());
  if (!xs || !WaitForSocket(run.store_socket(), *xs, kStartTimeoutMs)) {
    std::fprintf(stderr, "xpv: xpv-xenstored did not start: see %s\n", run.store_log().c_str());
    if (xs) ::kill(*xs, SIGTERM);
    HvStop(run);
    return 1;
  }
  std::printf("xpv-hv pid %d, xpv-xenstored pid %d, run dir %s\n", *hv, *xs, run.dir.c_str());
  return 0;
}

Result<std::unique_ptr<SimPlatform>> Dom0(const RunDir& run) {
  auto p = platform::sim::ConnectSimDom0(run.hv_socket());
  if (!p) return p.error();
  if ((*p)->sim_control() == nullptr) return Err(EPERM, "not domain 0");
  return p;
}

// A domain by name or number.
Result<platform::DomainInfo> FindDomain(SimDomainControl& control, const std::string& which) {
  XPV_ASSIGN_OR_RETURN(auto domains, control.List());
  for (const auto& d : domains)
    if (d.name == which || std::to_string(d.domid.value) == which) return d;
  return Err(ENOENT, "no such domain");
}

// xl's layout of a domain's home, as far as xpv needs it: the home and its keys belong to dom0
// and the domain may read them; data/ (and device/, control/) are the domain's own.
Status WriteHome(Client& xs, DomId domid, const DomainConfig& cfg) {
  const std::string id = std::to_string(domid.value);
  const std::string home = "/local/domain/" + id;
  XPV_TRY(xs.Mkdir(home));
  XPV_TRY(xs.Call(MsgType::kSetPerms, Z(home) + Z("n0") + Z("r" + id)));
  XPV_TRY(xs.Write(home + "/name", cfg.name));
  XPV_TRY(xs.Write(home + "/domid", id));
  XPV_TRY(xs.Write(home + "/memory/target", std::to_string(uint64_t{cfg.memory_mib} * 1024)));
  for (const char* own : {"data", "device", "control"}) {
    XPV_TRY(xs.Mkdir(home + "/" + own));
    XPV_TRY(xs.Call(MsgType::kSetPerms, Z(home + "/" + own) + Z("n" + id)));
  }
  return Ok();
}

int Create(const RunDir& run, const std::string& file) {
  auto cfg = LoadDomainConfig(file);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  if (cfg->kernel.empty()) {
    std::fprintf(stderr, "%s: no `kernel`: the program to run as the domain\n", file.c_str());
    return 1;
  }
  auto dom0 = Dom0(run);
  if (!dom0) return Fail("xpv-hv at " + run.hv_socket(), dom0.error()), 1;
  SimDomainControl& control = *(*dom0)->sim_control();
  auto xs = Client::Connect(run.store_socket());
  if (!xs) return Fail("xenstored at " + run.store_socket(), xs.error()), 1;
  auto store = FindDomain(control, kStoreDomainName);
  if (!store) return Fail("the store's domain (is xpv-xenstored running?)", store.error()), 1;
  if (auto other = FindDomain(control, cfg->name)) {
    std::fprintf(stderr, "xpv: a domain named %s exists (id %u)\n", cfg->name.c_str(),
                 other->domid.value);
    return 1;
  }

  platform::sim::SimDomainSpec spec;
  spec.name = cfg->name;
  spec.memory_mib = cfg->memory_mib;
  spec.store_domid = store->domid;
  spec.argv.push_back(cfg->kernel);
  spec.argv.insert(spec.argv.end(), cfg->args.begin(), cfg->args.end());
  auto dom = control.CreateDomain(spec);
  if (!dom) return Fail("create " + cfg->name, dom.error()), 1;

  const std::string id = std::to_string(dom->domid.value);
  Status st = WriteHome(*xs, dom->domid, *cfg);
  if (st) {
    auto introduced =
        xs->Call(MsgType::kIntroduce, Z(id) + Z(std::to_string(dom->store_gfn.value)) +
                                          Z(std::to_string(dom->store_port.value)));
    if (!introduced) st = introduced.error();
  }
  if (!st) {
    // Nothing half-created: the domain goes, and its home with it.
    Fail("set up domain " + id + " in the store", st.error());
    (void)control.Destroy(dom->domid);
    (void)xs->Rm("/local/domain/" + id);
    return 1;
  }
  std::printf("%s: domain %s, pid %d\n", cfg->name.c_str(), id.c_str(), dom->pid);
  return 0;
}

int List(const RunDir& run) {
  auto dom0 = Dom0(run);
  if (!dom0) return Fail("xpv-hv at " + run.hv_socket(), dom0.error()), 1;
  auto domains = (*dom0)->sim_control()->List();
  if (!domains) return Fail("list", domains.error()), 1;
  std::printf("%-24s %5s %8s %5s %-8s %8s\n", "Name", "ID", "Mem", "VCPUs", "State", "PID");
  for (const auto& d : *domains) {
    std::printf("%-24s %5u %8llu %5u %-8s %8d\n", d.name.c_str(), d.domid.value,
                static_cast<unsigned long long>(d.memory_kib / 1024), d.vcpus,
                d.dying ? "dying" : "running", d.pid);
  }
  return 0;
}

int Destroy(const RunDir& run, const std::string& which) {
  auto dom0 = Dom0(run);
  if (!dom0) return Fail("xpv-hv at " + run.hv_socket(), dom0.error()), 1;
  SimDomainControl& control = *(*dom0)->sim_control();
  auto d = FindDomain(control, which);
  if (!d) return Fail(which, d.error()), 1;
  if (auto st = control.Destroy(d->domid); !st) return Fail("destroy " + which, st.error()), 1;
  const std::string id = std::to_string(d->domid.value);
  if (auto xs = Client::Connect(run.store_socket())) {
    (void)xs->Call(MsgType::kRelease, Z(id));  // ENOENT when the store saw the death first
    (void)xs->Rm("/local/domain/" + id);
  }
  return 0;
}

void Ls(Client& xs, const std::string& path, int depth) {
  auto children = xs.Directory(path);
  if (!children) return;
  for (const auto& child : *children) {
    const std::string p = (path == "/" ? "" : path) + "/" + child;
    auto value = xs.Read(p);
    std::printf("%*s%s = \"%s\"\n", depth, "", child.c_str(), value ? value->c_str() : "");
    Ls(xs, p, depth + 1);
  }
}

}  // namespace

std::string DefaultRunDir() {
  const char* env = std::getenv("XPV_RUN_DIR");
  return env != nullptr && *env != '\0' ? env : "/run/xpv";
}

int Main(int argc, char** argv) {
  CLI::App app{"xpv: the toolstack of xpv (domains on xpv-hv, the simulated hypervisor)"};
  app.require_subcommand(1);
  RunDir run{DefaultRunDir()};
  app.add_option("--run-dir", run.dir, "sockets, pid files and logs ($XPV_RUN_DIR, else /run/xpv)")
      ->capture_default_str();

  auto* hv =
      app.add_subcommand("hv", "the simulated hypervisor and its store")->require_subcommand(1);
  auto* hv_start = hv->add_subcommand("start", "start xpv-hv and xpv-xenstored in the background");
  auto* hv_stop = hv->add_subcommand("stop", "stop them (their domains die with xpv-hv)");

  std::string file;
  auto* create = app.add_subcommand("create", "create a domain from an xl.cfg file");
  create->add_option("FILE", file, "the domain's configuration (xl.cfg syntax)")->required();
  auto* list = app.add_subcommand("list", "list the domains");
  std::string which;
  auto* destroy = app.add_subcommand("destroy", "destroy a domain");
  destroy->add_option("DOMAIN", which, "name or id")->required();

  auto* xs = app.add_subcommand("xenstore", "inspect and change the store")->require_subcommand(1);
  std::string path = "/", value;
  auto* ls = xs->add_subcommand("ls", "a subtree, as xenstore-ls prints it");
  ls->add_option("PATH", path);
  std::vector<std::string> paths;
  auto* read = xs->add_subcommand("read", "values, one a line");
  read->add_option("PATH", paths)->required();
  auto* write = xs->add_subcommand("write", "set a value");
  write->add_option("PATH", path)->required();
  write->add_option("VALUE", value)->required();
  auto* rm = xs->add_subcommand("rm", "remove nodes and their subtrees");
  rm->add_option("PATH", paths)->required();
  auto* watch = xs->add_subcommand("watch", "print the paths of a watch's events, one a line");
  watch->add_option("PATH", path)->required();
  int count = 0, timeout_ms = -1;
  watch->add_option("-n,--count", count, "exit after N events (0: never)");
  watch->add_option("-t,--timeout", timeout_ms, "exit 1 when no event came for MS (-1: wait)");

  CLI11_PARSE(app, argc, argv);

  if (hv_start->parsed()) return HvStart(run);
  if (hv_stop->parsed()) return HvStop(run);
  if (create->parsed()) return Create(run, file);
  if (list->parsed()) return List(run);
  if (destroy->parsed()) return Destroy(run, which);

  auto c = Client::Connect(run.store_socket());
  if (!c) return Fail("xenstored at " + run.store_socket(), c.error()), 1;
  if (ls->parsed()) {
    if (!c->Directory(path)) return Fail(path, Err(ENOENT, "no such node")), 1;
    Ls(*c, path, 0);
    return 0;
  }
  if (read->parsed()) {
    for (const auto& p : paths) {
      auto v = c->Read(p);
      if (!v) return Fail(p, v.error()), 1;
      std::printf("%s\n", v->c_str());
    }
    return 0;
  }
  if (write->parsed()) {
    if (auto st = c->Write(path, value); !st) return Fail(path, st.error()), 1;
    return 0;
  }
  if (rm->parsed()) {
    for (const auto& p : paths)
      if (auto st = c->Rm(p); !st) return Fail(p, st.error()), 1;
    return 0;
  }
  if (watch->parsed()) {
    if (auto st = c->Watch(path, "xpv"); !st) return Fail(path, st.error()), 1;
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int seen = 0; count == 0 || seen < count; ++seen) {
      auto ev = c->NextEvent(timeout_ms);
      if (!ev) return Fail("watch " + path, ev.error()), 1;
      std::printf("%s\n", ev->path.c_str());
    }
    return 0;
  }
  return 2;
}

}  // namespace xpv::toolstack
