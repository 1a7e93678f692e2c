#include "xpv/toolstack/blk_cmd.h"

#include <cstdio>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "xpv/block/workload.h"
#include "xpv/toolstack/disk_spec.h"
#include "xpv/toolstack/domain_env.h"

namespace xpv::toolstack {

namespace {

// The workloads of the demo and the benchmark, shorter.
std::vector<block::Workload> DemoWorkloads(double seconds) {
  return {
      {.name = "4k-randread-qd1", .block_size = 4096, .queue_depth = 1, .seconds = seconds},
      {.name = "4k-randread-qd32", .block_size = 4096, .queue_depth = 32, .seconds = seconds},
      {.name = "128k-seqread-qd8",
       .random = false,
       .block_size = 128 << 10,
       .queue_depth = 8,
       .seconds = seconds},
      {.name = "128k-seqwrite-qd8",
       .random = false,
       .write = true,
       .block_size = 128 << 10,
       .queue_depth = 8,
       .seconds = seconds},
  };
}

std::string Describe(const block::Negotiated& n) {
  return fmt::format(
      "protocol={} queues={} ring-pages={} ring-entries={} persistent={} indirect-segments={} "
      "flush={} discard={} sectors={} sector-size={} physical-sector-size={} read-only={}",
      n.protocol == abi::blkif::Protocol::kX86_32 ? abi::blkif::kProtocolX86_32
                                                  : abi::blkif::kProtocolX86_64,
      n.queues, n.ring_pages, n.ring_entries, n.persistent ? 1 : 0, n.indirect_segments,
      n.flush ? 1 : 0, n.discard ? 1 : 0, n.sectors, n.sector_size, n.physical_sector_size,
      n.read_only ? 1 : 0);
}

}  // namespace

int RunBlk(const BlkCommand& cmd) {
  auto fail = [](const char* what, const Error& e) {
    std::fprintf(stderr, "xpv blk: %s: %s (%s)\n", what, std::string(e.message).c_str(),
                 std::strerror(e.code));
    return 1;
  };
  auto vdev = ParseVirtualDevice(cmd.vdev);
  if (!vdev) {
    std::fprintf(stderr, "xpv blk: --vdev: %s\n", vdev.error().message.c_str());
    return 2;
  }
  auto env = ConnectDomainEnv(cmd.platform);
  if (!env) return fail("connecting", env.error());
  xenstore::Client& store = *env->store;
  store.set_reply_timeout_ms(30000);
  auto report = [&](const std::string& node, const std::string& value) {
    (void)store.Write("data/blk/" + node, value);  // relative: this domain's home
  };
  report("status", "connecting");
  const xenbus::DeviceId id{"vbd", kDom0, env->platform->self(), vdev->number};
  auto front = block::BlkFront::Connect(*env->platform, *env->ports, store, id, cmd.front);
  if (!front) {
    report("status", fmt::format("failed: connect: {}", std::strerror(front.error().code)));
    return fail("connecting the vbd", front.error());
  }
  const std::string negotiated = Describe((*front)->negotiated());
  std::printf("xpv blk: %s connected: %s\n", cmd.vdev.c_str(), negotiated.c_str());
  report("negotiated", negotiated);

  if (cmd.verify_mib > 0) {
    report("status", "verifying");
    auto v = block::WriteAndVerify(**front, cmd.verify_mib << 20, 1 << 20, /*seed=*/7);
    if (!v) {
      report("status", "failed: verify");
      return fail("verify", v.error());
    }
    const std::string line =
        fmt::format("bytes={} written-fnv={:016x} read-fnv={:016x} seconds={:.2f}", v->bytes,
                    v->written_fnv, v->read_fnv, v->seconds);
    std::printf("xpv blk: verify %s\n", line.c_str());
    report("verify", line);
  }
  if (cmd.bench_seconds > 0) {
    for (const block::Workload& w : DemoWorkloads(cmd.bench_seconds)) {
      report("status", "benchmark " + w.name);
      auto r = block::RunWorkload(**front, w);
      if (!r) {
        report("status", "failed: " + w.name);
        return fail(w.name.c_str(), r.error());
      }
      const std::string line = fmt::format("iops={:.0f} mibps={:.1f} p50-us={:.0f} p99-us={:.0f}",
                                           r->iops(), r->mib_per_s(), r->p50_us, r->p99_us);
      std::printf("xpv blk: %s %s\n", w.name.c_str(), line.c_str());
      report("bench/" + w.name, line);
    }
  }
  report("status", "done");
  if (cmd.stay) {
    // A domain's nodes go when it dies: stay until the toolstack destroys us.
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (auto st = (*front)->Close(); !st) return fail("close", st.error());
  return 0;
}

}  // namespace xpv::toolstack
