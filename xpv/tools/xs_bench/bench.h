// The xenstored benchmark: starts xpv-xenstored, Xen's C xenstored and the echo ceiling, each on
// its own socket, runs the same loads against each, and prints every figure with its unit followed
// by one `ratio NAME VALUE` line per comparison (xpv over the other daemon, or a daemon over
// itself).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xpv/tools/xs_bench/loadgen.h"

namespace xpv::xs_bench {

struct BenchOptions {
  // What to start; an empty path leaves that daemon out.
  std::string xenstored;         // xpv-xenstored binary
  std::string cxenstored_start;  // shared/peers/xenstored/start-cxenstored.sh
  std::string echo;              // xpv-xs-echo binary
  std::string work_dir;          // sockets and logs; empty: a temporary folder, removed afterwards

  // Every timed figure is measured this many times, interleaved across daemons, and keeps its best:
  // other work on the machine only ever slows a run down. CPU per operation is the mean over all
  // rounds instead. Times below are per round.
  int rounds = 5;

  // Throughput loads: every op at every client count.
  std::vector<int> clients = {1, 8};
  Seconds load_time{0.3};
  LoadShape shape;

  // Watch latency.
  Seconds watch_time{0.4};
  uint64_t watch_events = 20'000;

  // Latency of a READ with this many idle connections open, against none.
  int idle_connections = 1000;
  Seconds idle_time{0.2};

  // Memory per node once the store holds mem_nodes; create rate once it holds create_nodes, against
  // the rate on an empty store (the best of `rounds` windows at each). A daemon too slow to get
  // there in fill_budget is measured where it got to. Creation is timed in windows of up to
  // window_leaves nodes or window_time.
  uint64_t mem_nodes = 400'000;
  uint64_t create_nodes = 1'000'000;
  uint64_t window_leaves = 20'000;
  Seconds window_time{3};
  Seconds fill_budget{90};
  int fanout = 100;
  int pipeline = 32;  // writes in flight while filling
  // The filler and the daemon share this CPU while filling; -1 leaves them to the scheduler.
  int fill_cpu = -1;

  std::string json_path;  // also write the figures as JSON here
};

// Runs the benchmark and prints the report on stdout (progress on stderr). Returns the process exit
// status: non-zero when xpv-xenstored could not be measured or a daemon failed during a load.
int RunBench(const BenchOptions& options);

}  // namespace xpv::xs_bench
