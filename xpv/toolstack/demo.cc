#include "xpv/toolstack/demo.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "xpv/toolstack/cli.h"
#include "xpv/toolstack/process.h"
#include "xpv/xenstore/client.h"

namespace xpv::toolstack {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* kBold = "\033[1m";
const char* kPlain = "\033[0m";

void Step(const std::string& what) {
  std::printf("\n%s== %s%s\n", kBold, what.c_str(), kPlain);
  std::fflush(stdout);
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

// A zero-filled image, allocated (not sparse), so the guest's reads touch real blocks.
bool MakeImage(const std::string& path, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) == 0;
  ::close(fd);
  return ok;
}

std::string Read(xenstore::Client& xs, const std::string& path) {
  auto v = xs.Read(path);
  return v ? *v : std::string();
}

// "k=v k=v ..." -> map.
std::map<std::string, std::string> Fields(const std::string& line) {
  std::map<std::string, std::string> out;
  size_t at = 0;
  while (at < line.size()) {
    size_t end = line.find(' ', at);
    if (end == std::string::npos) end = line.size();
    const std::string kv = line.substr(at, end - at);
    if (auto eq = kv.find('='); eq != std::string::npos) out[kv.substr(0, eq)] = kv.substr(eq + 1);
    at = end + 1;
  }
  return out;
}

void PrintTree(xenstore::Client& xs, const std::string& path, int depth) {
  auto children = xs.Directory(path);
  if (!children) return;
  for (const auto& c : *children) {
    const std::string p = path + "/" + c;
    std::printf("    %*s%s = \"%s\"\n", depth * 2, "", c.c_str(), Read(xs, p).c_str());
    PrintTree(xs, p, depth + 1);
  }
}

const char* StateName(const std::string& s) {
  static const char* names[] = {"Unknown",     "Initialising",  "InitWait",
                                "Initialised", "Connected",     "Closing",
                                "Closed",      "Reconfiguring", "Reconfigured"};
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  return (!s.empty() && *end == '\0' && v >= 0 && v <= 8) ? names[v] : "-";
}

struct ModeRun {
  std::string mode;
  bool ok = false;
  std::string negotiated;
  std::string verify;
  std::map<std::string, std::string> bench;  // workload -> line
};

// One driver domain in `mode` and one guest using its disk; follows the guest until it is done.
ModeRun RunMode(const RunDir& run, xenstore::Client& xs, const DemoOptions& o,
                const std::string& image, const std::string& mode, bool show_nodes) {
  ModeRun result{mode};
  const std::string bin = BinDir();
  const std::string driver = "blkdom-" + mode, guest = "guest-" + mode;

  Step(fmt::format("{} mode: a driver domain running xpv-blkback, a guest using its disk", mode));
  const std::string driver_cfg = run.dir + "/" + driver + ".cfg";
  WriteFile(driver_cfg, fmt::format("name = \"{}\"\nmemory = 256\nkernel = \"{}/xpv-blkback\"\n"
                                    "extra = \"--platform sim --log-level warn\"\n"
                                    "xpv_grant_mode = \"{}\"\n",
                                    driver, bin, mode));
  auto d = CreateDomainFromFile(run, driver_cfg);
  if (!d) return result;
  std::printf("  %s: domain %u (pid %d), xpv_grant_mode = \"%s\"\n", driver.c_str(), d->domid.value,
              d->pid, mode.c_str());

  const std::string guest_cfg = run.dir + "/" + guest + ".cfg";
  WriteFile(guest_cfg,
            fmt::format("name = \"{}\"\nmemory = 128\nkernel = \"{}/xpv\"\n"
                        "extra = \"blk --vdev xvda --verify-mib {} --bench-seconds {} --stay\"\n"
                        "disk = [ 'format=raw, vdev=xvda, access=rw, backend={}, target={}' ]\n",
                        guest, bin, o.verify_mib, o.bench_seconds, driver, image));
  auto g = CreateDomainFromFile(run, guest_cfg);
  if (!g) {
    (void)Destroy(run, driver);
    return result;
  }
  std::printf("  %s: domain %u (pid %d), disk = [ '...vdev=xvda, backend=%s, target=%s' ]\n",
              guest.c_str(), g->domid.value, g->pid, driver.c_str(), image.c_str());

  const std::string home = "/local/domain/" + std::to_string(g->domid.value);
  const std::string fe = home + "/device/vbd/51712";
  const std::string be =
      fmt::format("/local/domain/{}/backend/vbd/{}/51712", d->domid.value, g->domid.value);
  // Progress: the handshake's states, then what the guest reports, as they change.
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::seconds(60 + static_cast<int>(o.bench_seconds * 8));
  std::string last;
  std::string status;
  while (Clock::now() < deadline) {
    status = Read(xs, home + "/data/blk/status");
    const std::string now =
        fmt::format("frontend {:<12} backend {:<12} guest: {}", StateName(Read(xs, fe + "/state")),
                    StateName(Read(xs, be + "/state")), status.empty() ? "starting" : status);
    if (now != last) {
      std::printf("  [%5.1fs] %s\n", std::chrono::duration<double>(Clock::now() - t0).count(),
                  now.c_str());
      std::fflush(stdout);
      last = now;
    }
    if (status == "done" || status.starts_with("failed")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  result.ok = status == "done";
  result.negotiated = Read(xs, home + "/data/blk/negotiated");
  result.verify = Read(xs, home + "/data/blk/verify");
  if (auto names = xs.Directory(home + "/data/blk/bench")) {
    for (const auto& n : *names) result.bench[n] = Read(xs, home + "/data/blk/bench/" + n);
  }
  if (!result.ok) {
    std::printf("  the guest did not finish (status \"%s\"): see %s\n", status.c_str(),
                run.hv_log().c_str());
  }
  if (show_nodes) {
    Step("the device in the store (xl's layout; written by xpv create, xpv-blkback and blkfront)");
    std::printf("  %s\n", be.c_str());
    PrintTree(xs, be, 1);
    std::printf("  %s\n", fe.c_str());
    PrintTree(xs, fe, 1);
  }
  (void)Destroy(run, guest);
  (void)Destroy(run, driver);
  return result;
}

}  // namespace

int RunDemo(const DemoOptions& o) {
  if (!::isatty(STDOUT_FILENO)) kBold = kPlain = "";
  char tmpl[] = "/tmp/xpv-demo-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return std::perror("xpv demo: mkdtemp"), 1;
  RunDir run{tmpl};
  std::printf("xpv demo: a simulated Xen host in %s\n", run.dir.c_str());

  Step("the host: xpv-hv (the simulated hypervisor) and xpv-xenstored (the store, a domain of it)");
  if (HvStart(run) != 0) return 1;
  int rc = 1;
  std::vector<ModeRun> runs;
  auto xs = xenstore::Client::Connect(run.store_socket());
  if (xs) {
    xs->set_reply_timeout_ms(10000);
    const std::string image = run.dir + "/disk.img";
    if (!MakeImage(image, o.disk_mib << 20)) {
      std::fprintf(stderr, "xpv demo: cannot make %s\n", image.c_str());
    } else {
      std::printf("  disk image %s (%llu MiB)\n", image.c_str(),
                  static_cast<unsigned long long>(o.disk_mib));
      for (const char* mode : {"map", "copy"}) {
        runs.push_back(RunMode(run, *xs, o, image, mode, /*show_nodes=*/runs.empty()));
      }
      rc = 0;
      for (const auto& r : runs) rc |= r.ok ? 0 : 1;
    }
  }

  if (!runs.empty()) {
    Step("negotiated (frontend and backend agreed through xenbus)");
    for (const auto& r : runs) {
      std::printf("  %-5s", r.mode.c_str());
      for (const auto& [k, v] : Fields(r.negotiated)) std::printf(" %s=%s", k.c_str(), v.c_str());
      std::printf("\n");
    }
    Step("data written by the guest, read back and compared (FNV-1a 64 of each)");
    for (const auto& r : runs) {
      auto f = Fields(r.verify);
      const bool same = !f["written-fnv"].empty() && f["written-fnv"] == f["read-fnv"];
      std::printf("  %-5s %s MiB  written %s  read %s  %s\n", r.mode.c_str(),
                  f["bytes"].empty() ? "-" : std::to_string(std::stoull(f["bytes"]) >> 20).c_str(),
                  f["written-fnv"].c_str(), f["read-fnv"].c_str(), same ? "OK" : "MISMATCH");
    }
    Step(fmt::format("figures ({:.1f} s per workload, in the guest, through blkfront)",
                     o.bench_seconds));
    std::printf("  %-20s %22s %22s\n", "workload", "map (IOPS, MiB/s)", "copy (IOPS, MiB/s)");
    for (const char* w :
         {"4k-randread-qd1", "4k-randread-qd32", "128k-seqread-qd8", "128k-seqwrite-qd8"}) {
      std::printf("  %-20s", w);
      for (const auto& r : runs) {
        auto it = r.bench.find(w);
        auto f = it == r.bench.end() ? std::map<std::string, std::string>{} : Fields(it->second);
        std::printf(" %22s",
                    f.empty() ? "-" : fmt::format("{:>8} {:>7}", f["iops"], f["mibps"]).c_str());
      }
      std::printf("\n");
    }
    std::printf("  (xpv-blk-bench compares these against fio on the same file: make bench-blk)\n");
  }

  Step("teardown");
  (void)HvStop(run);
  if (!o.keep) fs::remove_all(run.dir);
  std::printf("%s\n", rc == 0 ? "xpv demo: OK" : "xpv demo: FAILED");
  return rc;
}

}  // namespace xpv::toolstack
