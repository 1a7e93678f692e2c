#include "xpv/block/workload.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

namespace xpv::block {

namespace {
using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}
}  // namespace

uint64_t Fnv1a(std::span<const std::byte> data, uint64_t h) {
  for (std::byte b : data) h = (h ^ static_cast<uint8_t>(b)) * 0x100000001b3ull;
  return h;
}

Result<WorkloadResult> RunWorkload(BlkFront& disk, const Workload& w) {
  const uint64_t size = disk.negotiated().size_bytes();
  const uint64_t region = w.region_bytes == 0 ? size : std::min(w.region_bytes, size);
  const uint64_t blocks = region / w.block_size;
  if (blocks == 0 || w.queue_depth == 0 || w.block_size > disk.max_io_bytes())
    return Err(EINVAL, "workload does not fit the disk");
  std::mt19937_64 rng(w.seed);
  std::vector<std::vector<std::byte>> buffers(
      w.queue_depth, std::vector<std::byte>(w.block_size, std::byte{0x5a}));
  std::vector<Clock::time_point> started(w.queue_depth);
  std::vector<uint32_t> idle;
  for (uint32_t i = w.queue_depth; i > 0; --i) idle.push_back(i - 1);
  uint64_t next_block = 0;

  auto submit = [&](uint32_t slot) -> Status {
    const uint64_t block = w.random ? rng() % blocks : next_block++ % blocks;
    started[slot] = Clock::now();
    return w.write ? disk.SubmitWrite(slot, block * w.block_size, buffers[slot])
                   : disk.SubmitRead(slot, block * w.block_size, buffers[slot]);
  };

  WorkloadResult r;
  std::vector<double> latencies;
  std::vector<IoCompletion> done;
  const auto t0 = Clock::now();
  const auto measure_from = t0 + std::chrono::duration<double>(w.warmup_seconds);
  const auto end = measure_from + std::chrono::duration<double>(w.seconds);
  while (true) {
    const auto now = Clock::now();
    const bool running = now < end;
    while (running && !idle.empty()) {
      const uint32_t slot = idle.back();
      auto st = submit(slot);
      if (!st) {
        if (st.error().code == EAGAIN) break;  // rings or pages busy: reap first
        return st.error();
      }
      idle.pop_back();
    }
    if (idle.size() == w.queue_depth) break;  // drained after the end
    done.clear();
    auto n = disk.Wait(done, 5000);
    if (!n) return n.error();
    const auto t = Clock::now();
    for (const IoCompletion& c : done) {
      if (c.status != BLKIF_RSP_OKAY) return Err(EIO, "an I/O failed");
      const auto slot = static_cast<uint32_t>(c.tag);
      if (started[slot] >= measure_from && t <= end) {
        ++r.ops;
        r.bytes += w.block_size;
        latencies.push_back(std::chrono::duration<double, std::micro>(t - started[slot]).count());
      }
      idle.push_back(slot);
    }
  }
  r.seconds = w.seconds;
  r.p50_us = Percentile(latencies, 0.50);
  r.p99_us = Percentile(latencies, 0.99);
  return r;
}

Result<VerifyResult> WriteAndVerify(BlkFront& disk, uint64_t bytes, uint32_t chunk, uint64_t seed) {
  bytes = std::min(bytes, disk.negotiated().size_bytes());
  chunk = static_cast<uint32_t>(std::min<uint64_t>(chunk, disk.max_io_bytes()));
  if (bytes == 0 || chunk == 0 || bytes % chunk != 0) return Err(EINVAL, "bad verify size");
  VerifyResult r;
  r.bytes = bytes;
  r.written_fnv = r.read_fnv = 0xcbf29ce484222325ull;
  std::vector<std::byte> buf(chunk);
  const auto t0 = Clock::now();
  std::mt19937_64 rng(seed);
  for (uint64_t off = 0; off < bytes; off += chunk) {
    for (size_t i = 0; i < chunk; i += 8) {
      const uint64_t v = rng() ^ off;
      std::memcpy(buf.data() + i, &v, std::min<size_t>(8, chunk - i));
    }
    r.written_fnv = Fnv1a(buf, r.written_fnv);
    XPV_TRY(disk.Write(off, buf));
  }
  XPV_TRY(disk.Flush());
  for (uint64_t off = 0; off < bytes; off += chunk) {
    std::fill(buf.begin(), buf.end(), std::byte{0});
    XPV_TRY(disk.Read(off, buf));
    r.read_fnv = Fnv1a(buf, r.read_fnv);
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (r.read_fnv != r.written_fnv) return Err(EIO, "read back differs from what was written");
  return r;
}

}  // namespace xpv::block
