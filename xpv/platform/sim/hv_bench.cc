// xpv-hv-bench: what the simulated hypervisor's primitives cost, against baselines measured in the
// same run:
//   - event-channel ping-pong between two domains (two processes) vs a raw eventfd ping-pong and
//     a raw SOCK_SEQPACKET ping-pong between two processes;
//   - grant map+unmap of 4 KiB (map mode; copy mode refuses it) and grant copy of 4 KiB in both
//     modes, single and in batches of 32, vs memcpy of 4 KiB.
// Every figure is the best of --rounds rounds (other work on the machine only slows a round
// down); rounds of the compared operations are interleaved. Prints a table, then one
// `ratio NAME VALUE` line per comparison.
//
//   xpv-hv-bench [--rounds N] [--scale F]
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "xpv/platform/sim/client.h"
#include "xpv/platform/sim/sim_host.h"

namespace xpv::platform::sim {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const char* what, int code = 0) {
  std::fprintf(stderr, "xpv-hv-bench: %s%s%s\n", what, code ? ": " : "",
               code ? std::strerror(code) : "");
  std::exit(1);
}
template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) Die(what, r.error().code);
  return std::move(*r);
}
void Must(Status s, const char* what) {
  if (!s) Die(what, s.error().code);
}

// --- The pong domain: a process xpv-hv spawns (this binary, --pong PEER) -------------------

struct PongReport {
  uint32_t magic;
  uint32_t port;
};
constexpr uint32_t kPongMagic = 0x474E4F50;  // "PONG"

int RunPong(DomId peer) {
  auto p = Must(ConnectSim(), "pong: ConnectSim");
  auto port = Must(p->events().AllocUnbound(peer), "pong: alloc unbound");
  auto* report = reinterpret_cast<PongReport*>(p->memory().PageAddress(*p->store_gfn()));
  report->port = port.value;
  __atomic_store_n(&report->magic, kPongMagic, __ATOMIC_RELEASE);
  for (;;) {
    pollfd pfd{p->events().fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 1000) == 0) {
      if (!p->PortStatus(port)) return 0;  // the hypervisor let go of us
      continue;
    }
    while (auto pending = p->events().NextPending()) {
      if (*pending == port && !p->events().Notify(port)) return 0;
      if (!p->events().Unmask(*pending)) return 0;
    }
  }
}

// --- Baseline ping-pongs between two processes ----------------------------------------------

// A forked echo process on a pair of fds: reads one message from `in`, writes one to `out`.
struct Echo {
  pid_t pid = -1;
  int to_child = -1, from_child = -1;
  ~Echo() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

Echo StartEventfdEcho() {
  Echo e;
  e.to_child = ::eventfd(0, EFD_CLOEXEC);
  e.from_child = ::eventfd(0, EFD_CLOEXEC);
  e.pid = ::fork();
  if (e.pid == 0) {
    uint64_t v;
    for (;;) {
      if (::read(e.to_child, &v, 8) != 8) ::_exit(0);
      v = 1;
      if (::write(e.from_child, &v, 8) != 8) ::_exit(0);
    }
  }
  return e;
}

Echo StartSeqpacketEcho() {
  int a[2], b[2];
  ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, a);
  ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, b);
  Echo e;
  e.to_child = a[0];
  e.from_child = b[0];
  e.pid = ::fork();
  if (e.pid == 0) {
    char c;
    for (;;) {
      if (::recv(a[1], &c, 1, 0) != 1) ::_exit(0);
      if (::send(b[1], "p", 1, MSG_NOSIGNAL) != 1) ::_exit(0);
    }
  }
  return e;
}

// --- Timing -----------------------------------------------------------------------------------

struct Figure {
  std::string name;
  std::string unit_note;
  double best_ns = 1e300;
};

class Bench {
 public:
  Bench(int rounds, double scale) : rounds_(rounds), scale_(scale) {}

  // Registers an operation timed `iterations` times per round.
  void Add(const std::string& key, const std::string& name, const std::string& note,
           uint64_t iterations, std::function<void()> op) {
    order_.push_back(key);
    figures_[key] = Figure{name, note};
    ops_[key] = {std::max<uint64_t>(1, static_cast<uint64_t>(iterations * scale_)), std::move(op)};
  }

  void Run() {
    for (int r = 0; r < rounds_; ++r) {
      for (const auto& key : order_) {
        auto& [n, op] = ops_[key];
        for (uint64_t i = 0; i < std::max<uint64_t>(n / 20, 1); ++i) op();  // warm up
        auto t0 = Clock::now();
        for (uint64_t i = 0; i < n; ++i) op();
        const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n;
        figures_[key].best_ns = std::min(figures_[key].best_ns, ns);
      }
      std::fprintf(stderr, "round %d/%d done\n", r + 1, rounds_);
    }
  }

  double ns(const std::string& key) const { return figures_.at(key).best_ns; }

  void Print() const {
    std::printf("%-52s %12s  %s\n", "operation", "per op", "");
    for (const auto& key : order_) {
      const Figure& f = figures_.at(key);
      if (f.best_ns >= 1000) {
        std::printf("%-52s %9.2f us  %s\n", f.name.c_str(), f.best_ns / 1000, f.unit_note.c_str());
      } else {
        std::printf("%-52s %9.1f ns  %s\n", f.name.c_str(), f.best_ns, f.unit_note.c_str());
      }
    }
  }

 private:
  int rounds_;
  double scale_;
  std::vector<std::string> order_;
  std::map<std::string, Figure> figures_;
  std::map<std::string, std::pair<uint64_t, std::function<void()>>> ops_;
};

int RunBench(int rounds, double scale) {
  spdlog::set_level(spdlog::level::warn);
  // Baseline processes first, while this process has a single thread to fork.
  Echo efd = StartEventfdEcho();
  Echo seq = StartSeqpacketEcho();

  auto host = Must(SimHost::Start(), "start xpv-hv");
  char self[4096];
  const ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) Die("readlink /proc/self/exe", errno);
  self[len] = 0;

  // Domains: `ping` (this process) and `pong` (a process xpv-hv spawns); a frontend and a backend
  // in each mode (threads of this process: what is timed is their hypervisor round trips).
  auto ping = Must(host->NewDomain({.name = "ping", .memory_mib = 4}), "create ping");
  SimDomain pong_dom;
  Must(host->NewDomain({.name = "pong",
                        .memory_mib = 4,
                        .argv = {self, "--pong", std::to_string(ping->self().value)}},
                       &pong_dom),
       "create pong");
  auto store =
      Must(host->control().MapForeign(pong_dom.domid, pong_dom.store_gfn), "map pong's store page");
  auto* report = reinterpret_cast<PongReport*>(store->data());
  for (int i = 0; __atomic_load_n(&report->magic, __ATOMIC_ACQUIRE) != kPongMagic; ++i) {
    if (i > 5000) Die("pong domain did not start");
    ::usleep(1000);
  }
  const EvtchnPort port = Must(
      ping->events().BindInterdomain(pong_dom.domid, EvtchnPort(report->port)), "bind to pong");
  (void)ping->events().NextPending();  // pending from the bind
  Must(ping->events().Unmask(port), "unmask");

  auto front = Must(host->NewDomain({.name = "front", .memory_mib = 8}), "create front");
  auto back_map =
      Must(host->NewDomain({.name = "back-map", .memory_mib = 8, .mode = MappingMode::kMap}),
           "create back-map");
  auto back_copy =
      Must(host->NewDomain({.name = "back-copy", .memory_mib = 8, .mode = MappingMode::kCopy}),
           "create back-copy");
  constexpr int kBatch = 32;
  // The frontend grants kBatch pages to each backend.
  std::vector<GrantRef> to_map, to_copy;
  for (int i = 0; i < kBatch; ++i) {
    Gfn g = Must(front->memory().AllocPages(1), "alloc");
    std::memset(front->memory().PageAddress(g), i, kPageSize);
    to_map.push_back(
        Must(front->grants().GrantAccess(back_map->self(), g, Access::kReadWrite), "grant"));
    to_copy.push_back(
        Must(front->grants().GrantAccess(back_copy->self(), g, Access::kReadWrite), "grant"));
  }
  const Gfn map_local = Must(back_map->memory().AllocPages(kBatch), "alloc");
  const Gfn copy_local = Must(back_copy->memory().AllocPages(kBatch), "alloc");

  // memcpy baseline buffers.
  std::vector<uint8_t> src(kPageSize, 1), dst(kPageSize);

  Bench b(rounds, scale);
  b.Add("eventfd", "raw eventfd ping-pong, 2 processes", "round trip", 20000, [&] {
    uint64_t v = 1;
    (void)!::write(efd.to_child, &v, 8);
    (void)!::read(efd.from_child, &v, 8);
  });
  b.Add("seqpacket", "raw SOCK_SEQPACKET ping-pong, 2 processes", "round trip", 20000, [&] {
    char c = 'p';
    (void)::send(seq.to_child, &c, 1, MSG_NOSIGNAL);
    (void)::recv(seq.from_child, &c, 1, 0);
  });
  b.Add("evtchn", "event-channel ping-pong, 2 domain processes", "round trip", 20000, [&] {
    (void)ping->events().Notify(port);
    pollfd pfd{ping->events().fd(), POLLIN, 0};
    while (::poll(&pfd, 1, 5000) != 1) {
    }
    auto p = ping->events().NextPending();
    if (p) (void)ping->events().Unmask(*p);
  });
  b.Add("memcpy", "memcpy 4 KiB", "", 1000000, [&] {
    std::memcpy(dst.data(), src.data(), kPageSize);
    asm volatile("" : : "r"(dst.data()) : "memory");
  });
  b.Add("map_unmap", "grant map+unmap 4 KiB (map mode)", "", 20000, [&] {
    MapRequest req{front->self(), to_map[0], Access::kReadWrite};
    auto m = back_map->mapper().Map({&req, 1});
    if (!m || (*m)->status(0) != GrantStatus::kOkay) Die("map");
  });
  b.Add("map_memcpy_unmap", "grant map + memcpy 4 KiB + unmap (map mode)", "", 20000, [&] {
    MapRequest req{front->self(), to_map[0], Access::kReadOnly};
    auto m = back_map->mapper().Map({&req, 1});
    if (!m || (*m)->status(0) != GrantStatus::kOkay) Die("map");
    std::memcpy(back_map->memory().PageAddress(map_local), (*m)->page(0), kPageSize);
  });
  auto copy_op = [&](GrantRef ref, Gfn local) {
    CopyOp op;
    op.source = {CopyPtr::Kind::kGrant, front->self(), ref, Gfn(), 0};
    op.dest = {CopyPtr::Kind::kLocal, DomId(), GrantRef(), local, 0};
    op.len = kPageSize;
    return op;
  };
  b.Add("copy_map", "grant copy 4 KiB (map-mode domain)", "", 20000, [&] {
    CopyOp op = copy_op(to_map[0], map_local);
    if (!back_map->mapper().Copy({&op, 1}) || op.status != GrantStatus::kOkay) Die("copy");
  });
  b.Add("copy_copy", "grant copy 4 KiB (copy mode)", "", 20000, [&] {
    CopyOp op = copy_op(to_copy[0], copy_local);
    if (!back_copy->mapper().Copy({&op, 1}) || op.status != GrantStatus::kOkay) Die("copy");
  });
  b.Add("map_unmap_b32", "grant map+unmap, batch of 32 (map mode)", "per batch", 2000, [&] {
    std::vector<MapRequest> reqs;
    for (auto r : to_map) reqs.push_back({front->self(), r, Access::kReadWrite});
    auto m = back_map->mapper().Map(reqs);
    if (!m || (*m)->status(kBatch - 1) != GrantStatus::kOkay) Die("map batch");
  });
  b.Add("copy_copy_b32", "grant copy, batch of 32 (copy mode)", "per batch", 2000, [&] {
    std::vector<CopyOp> ops;
    for (int i = 0; i < kBatch; ++i) ops.push_back(copy_op(to_copy[i], Gfn(copy_local.value + i)));
    if (!back_copy->mapper().Copy(ops) || ops[kBatch - 1].status != GrantStatus::kOkay)
      Die("copy batch");
  });
  b.Run();

  // Batches are reported per page.
  auto per_page = [&](const std::string& k) { return b.ns(k) / kBatch; };
  std::printf(
      "xpv-hv-bench: best of %d rounds; hypervisor on a thread of this process, each domain its "
      "own connection\n\n",
      rounds);
  b.Print();
  std::printf("%-52s %9.2f us  per page\n", "  = map+unmap, batch of 32, per page",
              per_page("map_unmap_b32") / 1000);
  std::printf("%-52s %9.2f us  per page\n", "  = grant copy, batch of 32, per page",
              per_page("copy_copy_b32") / 1000);
  std::printf("\n");
  std::printf("ratio evtchn_pingpong_over_eventfd %.3f\n", b.ns("evtchn") / b.ns("eventfd"));
  std::printf("ratio evtchn_pingpong_over_seqpacket %.3f\n", b.ns("evtchn") / b.ns("seqpacket"));
  std::printf("ratio map_unmap_4k_over_memcpy_4k %.3f\n", b.ns("map_unmap") / b.ns("memcpy"));
  std::printf("ratio map_memcpy_unmap_4k_over_memcpy_4k %.3f\n",
              b.ns("map_memcpy_unmap") / b.ns("memcpy"));
  std::printf("ratio copy_4k_mapmode_over_memcpy_4k %.3f\n", b.ns("copy_map") / b.ns("memcpy"));
  std::printf("ratio copy_4k_copymode_over_memcpy_4k %.3f\n", b.ns("copy_copy") / b.ns("memcpy"));
  std::printf("ratio copy_4k_copymode_over_map_memcpy_unmap %.3f\n",
              b.ns("copy_copy") / b.ns("map_memcpy_unmap"));
  std::printf("ratio map_unmap_batch32_per_page_over_memcpy_4k %.3f\n",
              per_page("map_unmap_b32") / b.ns("memcpy"));
  std::printf("ratio copy_batch32_per_page_over_memcpy_4k %.3f\n",
              per_page("copy_copy_b32") / b.ns("memcpy"));
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace xpv::platform::sim

int main(int argc, char** argv) {
  int rounds = 5;
  double scale = 1.0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pong" && i + 1 < argc) {
      return xpv::platform::sim::RunPong(xpv::DomId(static_cast<uint32_t>(std::atoi(argv[i + 1]))));
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--scale" && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: xpv-hv-bench [--rounds N] [--scale F]\n");
      return 2;
    }
  }
  return xpv::platform::sim::RunBench(rounds, scale);
}
