#include "xpv/toolstack/cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "xpv/base/unique_fd.h"
#include "xpv/base/unix_socket.h"
#include "xpv/platform/sim/client.h"
#include "xpv/toolstack/blk_cmd.h"
#include "xpv/toolstack/demo.h"
#include "xpv/toolstack/process.h"
#include "xpv/toolstack/reaper.h"
#include "xpv/toolstack/vbd.h"
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

std::optional<int> ReadPid(const std::string& path) {
  std::ifstream in(path);
  int pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  return pid;
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

}  // namespace

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

namespace {

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

// The config's `uuid` if it has a well-formed one (xl.cfg: "Specifies the UUID of the domain"),
// else a random (version 4) one, as xl makes.
std::string DomainUuid(const DomainConfig& cfg) {
  if (auto it = cfg.other.find("uuid"); it != cfg.other.end() &&
                                        it->second.kind == XlValue::Kind::kString &&
                                        IsUuid(it->second.text)) {
    std::string u = it->second.text;
    for (char& ch : u) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return u;
  }
  std::random_device rd;
  uint8_t b[16];
  for (auto& x : b) x = static_cast<uint8_t>(rd());
  b[6] = static_cast<uint8_t>((b[6] & 0x0F) | 0x40);  // RFC 4122: version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);  // variant 10
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

// xl's layout of a domain's home (docs/misc/xenstore-paths.pandoc), as far as xpv has the
// facts: the home and its keys belong to dom0 and the domain may read them; data/, device/ and
// control/ are the domain's own. /vm/<uuid> is the toolstack's, not visible to the domain.
Status WriteHome(Client& xs, DomId domid, const DomainConfig& cfg, const std::string& vm) {
  const std::string id = std::to_string(domid.value);
  const std::string home = "/local/domain/" + id;
  const std::string kib = std::to_string(uint64_t{cfg.memory_mib} * 1024);
  XPV_TRY(xs.Mkdir(vm));
  XPV_TRY(xs.Call(MsgType::kSetPerms, Z(vm) + Z("n0")));
  XPV_TRY(xs.Write(vm + "/uuid", vm.substr(vm.rfind('/') + 1)));
  XPV_TRY(xs.Write(vm + "/name", cfg.name));

  XPV_TRY(xs.Mkdir(home));
  XPV_TRY(xs.Call(MsgType::kSetPerms, Z(home) + Z("n0") + Z("r" + id)));
  XPV_TRY(xs.Write(home + "/vm", vm));
  XPV_TRY(xs.Write(home + "/name", cfg.name));
  XPV_TRY(xs.Write(home + "/domid", id));
  XPV_TRY(xs.Write(home + "/memory/static-max", kib));
  XPV_TRY(xs.Write(home + "/memory/target", kib));
  // "One node for each virtual CPU up to the guest's configured maximum."
  for (uint32_t cpu = 0; cpu < cfg.vcpus; ++cpu) {
    XPV_TRY(xs.Write(home + "/cpu/" + std::to_string(cpu) + "/availability", "online"));
  }
  for (const char* own : {"data", "device", "control"}) {
    XPV_TRY(xs.Mkdir(home + "/" + own));
    XPV_TRY(xs.Call(MsgType::kSetPerms, Z(home + "/" + own) + Z("n" + id)));
  }
  return Ok();
}

}  // namespace

Result<CreatedDomain> CreateDomainFromFile(const RunDir& run, const std::string& file) {
  auto cfg = LoadDomainConfig(file);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return Err(EINVAL, "bad configuration");
  }
  if (cfg->kernel.empty()) {
    std::fprintf(stderr, "%s: no `kernel`: the program to run as the domain\n", file.c_str());
    return Err(EINVAL, "no kernel");
  }
  auto dom0 = Dom0(run);
  if (!dom0) return Fail("xpv-hv at " + run.hv_socket(), dom0.error()), Err(EIO, "failed");
  SimDomainControl& control = *(*dom0)->sim_control();
  auto xs = Client::Connect(run.store_socket());
  if (!xs) return Fail("xenstored at " + run.store_socket(), xs.error()), Err(EIO, "failed");
  auto store = FindDomain(control, kStoreDomainName);
  if (!store)
    return Fail("the store's domain (is xpv-xenstored running?)", store.error()),
           Err(EIO, "failed");
  if (auto other = FindDomain(control, cfg->name)) {
    std::fprintf(stderr, "xpv: a domain named %s exists (id %u)\n", cfg->name.c_str(),
                 other->domid.value);
    return Err(EEXIST, "domain exists");
  }

  // xl refuses a uuid a live domain has; a /vm/<uuid> left by a domain that crashed is stale.
  const std::string vm = "/vm/" + DomainUuid(*cfg);
  if (auto domains = control.List()) {
    for (const auto& d : *domains) {
      auto theirs = xs->Read("/local/domain/" + std::to_string(d.domid.value) + "/vm");
      if (!d.dying && theirs && *theirs == vm) {
        std::fprintf(stderr, "xpv: domain %s (id %u) has uuid %s\n", d.name.c_str(), d.domid.value,
                     vm.c_str() + 4);
        return Err(EEXIST, "uuid in use");
      }
    }
  }
  (void)xs->Rm(vm);

  platform::sim::SimDomainSpec spec;
  spec.name = cfg->name;
  spec.memory_mib = cfg->memory_mib;
  spec.store_domid = store->domid;
  spec.vcpus = cfg->vcpus;
  // xpv's own key: how this domain, as a backend, reaches other domains' grants (docs/xpv-hv.md).
  if (auto it = cfg->other.find("xpv_grant_mode"); it != cfg->other.end()) {
    if (it->second.text == "map") {
      spec.mode = platform::sim::MappingMode::kMap;
    } else if (it->second.text != "copy") {
      std::fprintf(stderr, "%s: xpv_grant_mode must be \"map\" or \"copy\"\n", file.c_str());
      return Err(EINVAL, "bad xpv_grant_mode");
    }
  }
  spec.argv.push_back(cfg->kernel);
  spec.argv.insert(spec.argv.end(), cfg->args.begin(), cfg->args.end());
  auto dom = control.CreateDomain(spec);
  if (!dom) return Fail("create " + cfg->name, dom.error()), Err(EIO, "failed");

  const std::string id = std::to_string(dom->domid.value);
  CreatedDomain created{dom->domid, dom->pid, cfg->name, vm, {}};
  Status st = WriteHome(*xs, dom->domid, *cfg, vm);
  // The guest's disks, each on the domain `backend=` names (dom0 when none).
  for (size_t i = 0; st && i < cfg->disks.size(); ++i) {
    const DiskSpec& disk = cfg->disks[i];
    DomId backend = kDom0;
    if (!disk.backend.empty()) {
      auto b = FindDomain(control, disk.backend);
      if (!b) {
        std::fprintf(stderr, "xpv: %s: disk %zu: no backend domain %s\n", file.c_str(), i,
                     disk.backend.c_str());
        st = Err(ENOENT, "no such backend domain");
        break;
      }
      backend = b->domid;
    }
    auto added = AddVbd(*xs, backend, dom->domid, disk);
    if (!added) {
      st = added.error();
    } else {
      created.backends.push_back(added->BackendPath());
    }
  }
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
    RemoveVbds(*xs, dom->domid);
    (void)xs->Rm("/local/domain/" + id);
    (void)xs->Rm(vm);
    return st.error();
  }
  return created;
}

namespace {

int Create(const RunDir& run, const std::string& file) {
  auto created = CreateDomainFromFile(run, file);
  if (!created) return 1;
  std::printf("%s: domain %u, pid %d\n", created->name.c_str(), created->domid.value, created->pid);
  // As xl leaves a process per domain: whoever ends the domain, its leftovers go.
  const ReapTarget target{created->domid, created->pid, created->vm, created->backends};
  const std::string log = run.dir + "/reap-" + created->name + ".log";
  if (auto reaper = Spawn(ReapArgs(run, target), log); !reaper) {
    Fail("starting the domain's reaper (its leftovers stay if it dies on its own)", reaper.error());
  }
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

}  // namespace

int Destroy(const RunDir& run, const std::string& which) {
  auto dom0 = Dom0(run);
  if (!dom0) return Fail("xpv-hv at " + run.hv_socket(), dom0.error()), 1;
  SimDomainControl& control = *(*dom0)->sim_control();
  auto d = FindDomain(control, which);
  if (!d) return Fail(which, d.error()), 1;
  auto xs = Client::Connect(run.store_socket());
  // The devices first, as xl does: the frontend directories are the domain's own, and the store
  // removes them when it learns of the death.
  if (xs) RemoveVbds(*xs, d->domid);
  if (auto st = control.Destroy(d->domid); !st) return Fail("destroy " + which, st.error()), 1;
  if (xs) {
    (void)xs->Call(MsgType::kRelease, Z(std::to_string(d->domid.value)));  // ENOENT when the
                                                                           // store saw it first
    RemoveHome(*xs, d->domid);
  }
  return 0;
}

namespace {

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

  DemoOptions demo_opt;
  auto* demo = app.add_subcommand("demo",
                                  "the main job: a host, a driver domain and a guest "
                                  "doing I/O through blkfront and xpv-blkback");
  demo->add_option("--disk-mib", demo_opt.disk_mib, "disk image size")->capture_default_str();
  demo->add_option("--verify-mib", demo_opt.verify_mib, "pattern written and read back")
      ->capture_default_str();
  demo->add_option("--bench-seconds", demo_opt.bench_seconds, "per workload (0: none)")
      ->capture_default_str();
  demo->add_flag("--keep", demo_opt.keep, "keep the run directory (logs, configs, image)");

  BlkCommand blk_opt;
  auto* blk = app.add_subcommand(
      "blk", "a guest's blkfront: run as a domain's program (kernel = xpv, extra = \"blk ...\")");
  blk->add_option("--vdev", blk_opt.vdev, "the virtual disk (xl vdev syntax)")
      ->capture_default_str();
  blk->add_option("--platform", blk_opt.platform, "sim or xen")->capture_default_str();
  blk->add_option("--verify-mib", blk_opt.verify_mib, "write a pattern, read it back, compare");
  blk->add_option("--bench-seconds", blk_opt.bench_seconds, "run the workloads, each this long");
  blk->add_option("--queues", blk_opt.front.queues, "multi-queue-num-queues wanted")
      ->capture_default_str();
  blk->add_option("--ring-page-order", blk_opt.front.ring_page_order, "ring-page-order wanted")
      ->capture_default_str();
  bool no_persistent = false, no_indirect = false, x86_32 = false;
  blk->add_flag("--no-persistent", no_persistent, "do not use persistent grants");
  blk->add_flag("--no-indirect", no_indirect, "do not use indirect descriptors");
  blk->add_flag("--x86-32", x86_32, "use the x86_32 ring layout (protocol x86_32-abi)");
  blk->add_flag("--stay", blk_opt.stay, "stay connected until killed");

  // Started by `xpv create`, not by hand (reaper.h).
  ReapTarget reap_target;
  uint32_t reap_domid = 0;
  auto* reap = app.add_subcommand("reap", "clean up after a domain once it dies")->group("");
  reap->add_option("--domid", reap_domid)->required()->check(CLI::Range(1u, 0x7fefu));
  reap->add_option("--pid", reap_target.pid)->required();
  reap->add_option("--vm", reap_target.vm)->required();
  reap->add_option("--backend", reap_target.backends);

  CLI11_PARSE(app, argc, argv);

  if (demo->parsed()) return RunDemo(demo_opt);
  if (blk->parsed()) {
    blk_opt.front.persistent = !no_persistent;
    if (no_indirect) blk_opt.front.max_indirect_segments = 0;
    if (x86_32) blk_opt.front.protocol = abi::blkif::Protocol::kX86_32;
    return RunBlk(blk_opt);
  }
  if (hv_start->parsed()) return HvStart(run);
  if (hv_stop->parsed()) return HvStop(run);
  if (create->parsed()) return Create(run, file);
  if (list->parsed()) return List(run);
  if (destroy->parsed()) return Destroy(run, which);
  if (reap->parsed()) {
    reap_target.domid = DomId(reap_domid);
    return RunReaper(run, reap_target);
  }

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
