// The loads of xpv-xs-bench, run against any daemon that speaks xs_wire.h over a Unix socket
// (xpv-xenstored, Xen's C xenstored, the xpv-xs-echo ceiling). Each function opens its own
// connections, measures one thing and returns plain numbers; which daemon it talked to, and what
// the numbers are compared with, is bench.h's business.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/xenstore/client.h"

namespace xpv::xs_bench {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// The time point `d` from now.
inline Clock::time_point After(Seconds d) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(d);
}

// Every node the loads touch lives under this path.
inline constexpr std::string_view kBenchRoot = "/bench";

// The nodes the throughput loads use. The echo server is told the reply sizes these imply, so the
// ceiling moves the same bytes as the real daemons.
struct LoadShape {
  size_t value_size = 16;       // bytes of every value written
  int keys_per_client = 256;    // READ and WRITE cycle over this many keys per client
  int directory_entries = 100;  // children of the node DIRECTORY lists
  int max_clients = 8;          // keys are written for this many clients
};

// The payload sizes a real daemon answers to this shape's READ and DIRECTORY.
size_t ReadReplyBytes(const LoadShape& shape);
size_t DirectoryReplyBytes(const LoadShape& shape);

// Writes the nodes the throughput loads read: keys per client and the listed directory.
Status PrepareStore(const std::string& socket, const LoadShape& shape);

// One operation as a client performs it, synchronously.
enum class Op {
  kRead,
  kWrite,
  kDirectory,
  // Read-modify-write of one key in a transaction, retried while the commit says EAGAIN.
  kTransaction,
};
inline constexpr Op kAllOps[] = {Op::kRead, Op::kWrite, Op::kDirectory, Op::kTransaction};
std::string_view OpName(Op op);

struct LoadResult {
  uint64_t ops = 0;
  uint64_t retries = 0;  // transactions restarted after EAGAIN
  double seconds = 0;

  double OpsPerSecond() const { return ops / seconds; }
  double MicrosPerOp() const { return seconds * 1e6 / static_cast<double>(ops); }
};

// Runs `op` from `clients` threads, each with its own connection and one request in flight, for
// `duration`. Fails on the first error any client sees (the loads never expect one), or when a
// daemon leaves a request unanswered for 10 s. `ops` can be 0 when the machine's other work starved
// the clients for all of `duration`.
Result<LoadResult> RunLoad(const std::string& socket, const LoadShape& shape, Op op, int clients,
                           Seconds duration);

// Opens `count` connections that send one request each (so the daemon has fully accepted them) and
// then stay idle for as long as the vector lives.
Result<std::vector<xenstore::Client>> OpenIdleConnections(const std::string& socket, int count);

struct LatencyStats {
  uint64_t samples = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// One watcher, one writer: the writer writes under a watched path and waits for the event before
// writing again. Measures write-sent to event-received, for `duration` or `max_events`.
Result<LatencyStats> RunWatchLatency(const std::string& socket, Seconds duration,
                                     uint64_t max_events);

// One stretch of node creation: how big the store was, how many leaves were added, how long it
// took.
struct FillWindow {
  uint64_t nodes_before = 0;
  uint64_t leaves = 0;
  double seconds = 0;

  double LeavesPerSecond() const { return leaves / seconds; }
};

// Creates nodes /bench/mem/aNNNNNN/bNN..., `fanout` leaves per directory, from one connection with
// up to `pipeline` writes in flight, so the daemon rather than the round trip sets the pace.
class NodeFiller {
 public:
  static Result<NodeFiller> Create(const std::string& socket, const LoadShape& shape, int fanout,
                                   int pipeline);

  // Creates up to `max_leaves` more leaves, stopping early at `deadline`.
  Result<FillWindow> CreateLeaves(uint64_t max_leaves, Clock::time_point deadline);
  // Nodes added to the store so far: leaves and the directories above them.
  uint64_t nodes() const;

 private:
  NodeFiller(xenstore::Client conn, const LoadShape& shape, int fanout, int pipeline);
  Status SendAndAwait(uint64_t first_leaf, uint64_t count);

  xenstore::Client conn_;  // only its socket is used: Client has no pipelining
  std::string value_;
  int fanout_;
  int pipeline_;
  uint64_t leaves_ = 0;
  std::string out_;  // reused request buffer
};

}  // namespace xpv::xs_bench
