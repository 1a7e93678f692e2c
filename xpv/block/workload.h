// Workloads for a BlkFront: fio-like jobs (random or sequential, read or write, a block size, a
// queue depth, a time limit) and a pattern check, shared by the benchmark (xpv-blk-bench), the
// demo's guest (`xpv blk`) and tests.
#pragma once

#include <cstdint>
#include <string>

#include "xpv/base/result.h"
#include "xpv/block/frontend.h"

namespace xpv::block {

struct Workload {
  std::string name;    // "4k-randread-qd32"
  bool random = true;  // random offsets (aligned to block_size), else sequential wrapping
  bool write = false;
  uint32_t block_size = 4096;
  uint32_t queue_depth = 1;
  double seconds = 2.0;  // run time, after...
  double warmup_seconds = 0.3;
  uint64_t region_bytes = 0;  // 0: the whole disk
  uint64_t seed = 1;
};

struct WorkloadResult {
  uint64_t ops = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  double p50_us = 0;
  double p99_us = 0;
  double iops() const { return seconds > 0 ? ops / seconds : 0; }
  double mib_per_s() const { return seconds > 0 ? bytes / seconds / (1 << 20) : 0; }
};

// Runs `w` with queue_depth operations in flight. Any error status fails the run (EIO).
Result<WorkloadResult> RunWorkload(BlkFront& disk, const Workload& w);

struct VerifyResult {
  uint64_t bytes = 0;
  uint64_t written_fnv = 0;  // FNV-1a 64 of what was written
  uint64_t read_fnv = 0;     // ... and of what came back
  double seconds = 0;
};

// Writes a seeded pseudo-random pattern over the first `bytes` of the disk in `chunk`-byte
// writes, flushes, reads it back and compares. EIO (after filling the result) on a mismatch.
Result<VerifyResult> WriteAndVerify(BlkFront& disk, uint64_t bytes, uint32_t chunk, uint64_t seed);

// FNV-1a, 64 bits, continued from `h`.
uint64_t Fnv1a(std::span<const std::byte> data, uint64_t h = 0xcbf29ce484222325ull);

}  // namespace xpv::block
