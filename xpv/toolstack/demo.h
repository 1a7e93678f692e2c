// `xpv demo`, the main job: a whole simulated Xen host in a temporary run directory. xpv-hv and
// xpv-xenstored start; for each grant mode (map, then copy) a driver domain runs xpv-blkback on
// a disk image and a guest domain (`xpv blk`) connects its blkfront through xenbus, writes a
// pattern, reads it back and compares, and runs short benchmark workloads. Progress is printed
// as the store shows it; then the device's store nodes, the negotiated features, the check and
// the figures; then everything is torn down.
#pragma once

#include <cstdint>

namespace xpv::toolstack {

struct DemoOptions {
  uint64_t disk_mib = 64;
  uint64_t verify_mib = 16;
  double bench_seconds = 1.0;
  bool keep = false;  // leave the run directory (logs, configs, image) behind
};

// Returns the process exit code: 0 when both guests verified their data and finished.
int RunDemo(const DemoOptions& options);

}  // namespace xpv::toolstack
