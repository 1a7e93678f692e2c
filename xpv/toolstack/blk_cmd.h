// `xpv blk`: a guest's userspace blkfront as a command. Run as a domain's program (kernel = xpv,
// extra = "blk ...") it connects to its vbd through xenbus, then optionally verifies a pattern
// and runs the benchmark workloads. It reports on stdout and in its own store directory
// (data/blk/: status, negotiated, verify, bench/<workload>), which is how `xpv demo` follows it.
#pragma once

#include <string>

#include "xpv/block/frontend.h"

namespace xpv::toolstack {

struct BlkCommand {
  std::string platform = "sim";
  std::string vdev = "xvda";
  block::FrontOptions front;
  uint64_t verify_mib = 0;   // 0: no pattern check
  double bench_seconds = 0;  // 0: no benchmark
  bool stay = false;         // after the work, stay connected until killed (xpv demo)
};

// Returns the process exit code.
int RunBlk(const BlkCommand& cmd);

}  // namespace xpv::toolstack
