#include "xpv/tools/xs_bench/loadgen.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <thread>

namespace xpv::xs_bench {
namespace {

using xenstore::Client;
using xenstore::MsgType;

// A daemon that has not answered in this long is stuck, not slow.
constexpr int kReplyTimeoutMs = 10'000;
// Per-client keys do not conflict, so a transaction that keeps failing means a broken daemon.
constexpr int kMaxTransactionAttempts = 100;

// Connects with a receive timeout, so that a daemon that stops answering fails the load rather
// than hanging it.
Result<Client> Connect(const std::string& socket) {
  XPV_ASSIGN_OR_RETURN(Client conn, Client::Connect(socket));
  const timeval timeout{.tv_sec = kReplyTimeoutMs / 1000, .tv_usec = 0};
  if (::setsockopt(conn.fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0) {
    return Err(errno, "setsockopt SO_RCVTIMEO");
  }
  return conn;
}

std::string KeyPath(int client, int key) {
  return fmt::format("{}/load/c{}/k{}", kBenchRoot, client, key);
}
std::string DirectoryPath() {
  return fmt::format("{}/dir", kBenchRoot);
}
std::string DirectoryEntry(int i) {
  return fmt::format("entry{:05}", i);
}
std::string Value(const LoadShape& shape) {
  return std::string(shape.value_size, 'v');
}
std::string WatchedPath() {
  return fmt::format("{}/watch", kBenchRoot);
}

// One client of a throughput load: its own connection, its own keys, one request in flight.
class Worker {
 public:
  Worker(Client conn, const LoadShape& shape, int id)
      : conn_(std::move(conn)), value_(Value(shape)), directory_request_(DirectoryPath() + '\0') {
    for (int k = 0; k < shape.keys_per_client; ++k) keys_.push_back(KeyPath(id, k));
  }

  // Performs operation number `i` of the load.
  Status Do(Op op, uint64_t i) {
    const std::string& key = keys_[i % keys_.size()];
    switch (op) {
      case Op::kRead:
        return Discard(conn_.Read(key));
      case Op::kWrite:
        return conn_.Write(key, value_);
      case Op::kDirectory:
        // Call, not Directory(): splitting the listing would be client work, not daemon work.
        return Discard(conn_.Call(MsgType::kDirectory, directory_request_));
      case Op::kTransaction:
        return ReadModifyWrite(key);
    }
    return Err(EINVAL, "unknown op");
  }

  uint64_t retries() const { return retries_; }

 private:
  template <typename T>
  static Status Discard(const Result<T>& r) {
    if (!r) return r.error();
    return Ok();
  }

  Status ReadModifyWrite(const std::string& key) {
    for (int attempt = 0; attempt < kMaxTransactionAttempts; ++attempt) {
      XPV_ASSIGN_OR_RETURN(uint32_t tx, conn_.TransactionStart());
      XPV_ASSIGN_OR_RETURN(std::string value, conn_.Read(key, tx));
      if (value.empty()) value = value_;
      value[0] = value[0] == 'v' ? 'w' : 'v';
      XPV_TRY(conn_.Write(key, value, tx));
      // Raw, so that only the daemon's own EAGAIN (xenstore.txt: the transaction conflicted) is
      // taken for a conflict, never a socket's.
      XPV_ASSIGN_OR_RETURN(xenstore::Message end,
                           conn_.Raw(MsgType::kTransactionEnd, std::string_view("T", 2), tx));
      if (end.type() != MsgType::kError) return Ok();
      std::string_view error = end.payload;
      if (error.ends_with('\0')) error.remove_suffix(1);
      if (error != "EAGAIN") {
        return Err(xenstore::ErrnoFromString(error), "daemon refused the transaction's commit");
      }
      ++retries_;
    }
    return Err(EAGAIN, "transaction kept conflicting");
  }

  Client conn_;
  std::string value_;
  std::string directory_request_;  // the path, nul-terminated
  std::vector<std::string> keys_;
  uint64_t retries_ = 0;
};

}  // namespace

size_t ReadReplyBytes(const LoadShape& shape) {
  return shape.value_size;
}

size_t DirectoryReplyBytes(const LoadShape& shape) {
  // xenstore.txt, DIRECTORY: the children's names, each followed by a nul.
  return static_cast<size_t>(shape.directory_entries) * (DirectoryEntry(0).size() + 1);
}

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kRead:
      return "read";
    case Op::kWrite:
      return "write";
    case Op::kDirectory:
      return "directory";
    case Op::kTransaction:
      return "transaction";
  }
  return "unknown";
}

Status PrepareStore(const std::string& socket, const LoadShape& shape) {
  XPV_ASSIGN_OR_RETURN(Client conn, Connect(socket));
  const std::string value = Value(shape);
  for (int c = 0; c < shape.max_clients; ++c) {
    for (int k = 0; k < shape.keys_per_client; ++k) XPV_TRY(conn.Write(KeyPath(c, k), value));
  }
  for (int i = 0; i < shape.directory_entries; ++i) {
    XPV_TRY(conn.Write(DirectoryPath() + "/" + DirectoryEntry(i), "x"));
  }
  return Ok();
}

Result<LoadResult> RunLoad(const std::string& socket, const LoadShape& shape, Op op, int clients,
                           Seconds duration) {
  if (clients < 1 || clients > shape.max_clients) {
    return Err(EINVAL, "client count outside 1..LoadShape::max_clients");
  }
  std::vector<Worker> workers;
  for (int id = 0; id < clients; ++id) {
    XPV_ASSIGN_OR_RETURN(Client conn, Connect(socket));
    workers.emplace_back(std::move(conn), shape, id);
  }

  std::vector<uint64_t> ops(workers.size());
  std::vector<Status> status(workers.size());
  std::latch go(1);
  std::atomic<bool> stop{false};
  std::vector<std::jthread> threads;
  for (size_t w = 0; w < workers.size(); ++w) {
    threads.emplace_back([&, w] {
      go.wait();
      while (!stop.load(std::memory_order_relaxed)) {
        status[w] = workers[w].Do(op, ops[w]);
        if (!status[w]) return;
        ++ops[w];
      }
    });
  }
  const auto start = Clock::now();
  go.count_down();
  std::this_thread::sleep_for(duration);
  stop = true;
  threads.clear();  // joins
  LoadResult result;
  result.seconds = Seconds(Clock::now() - start).count();

  for (size_t w = 0; w < workers.size(); ++w) {
    if (!status[w]) return status[w].error();
    result.ops += ops[w];
    result.retries += workers[w].retries();
  }
  return result;
}

Result<std::vector<Client>> OpenIdleConnections(const std::string& socket, int count) {
  std::vector<Client> conns;
  conns.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    XPV_ASSIGN_OR_RETURN(Client conn, Connect(socket));
    XPV_TRY(conn.Read(kBenchRoot));
    conns.push_back(std::move(conn));
  }
  return conns;
}

Result<LatencyStats> RunWatchLatency(const std::string& socket, Seconds duration,
                                     uint64_t max_events) {
  XPV_ASSIGN_OR_RETURN(Client watcher, Connect(socket));
  XPV_ASSIGN_OR_RETURN(Client writer, Connect(socket));
  const std::string watched = WatchedPath();
  const std::string prefix = watched + "/";
  XPV_TRY(watcher.Watch(watched, "bench"));

  // The watcher thread stamps each event's arrival; the writer waits for it before writing again.
  std::mutex mu;
  std::condition_variable arrived;
  uint64_t events = 0;
  Clock::time_point arrival;
  Status watcher_status;
  std::jthread watcher_thread([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      Result<xenstore::WatchEvent> event = watcher.NextEvent(/*timeout_ms=*/100);
      const auto now = Clock::now();
      if (!event && event.error().code == ETIMEDOUT) continue;
      std::lock_guard lock(mu);
      if (!event) {
        watcher_status = event.error();
        arrived.notify_one();
        return;
      }
      // Xen fires every watch once when it is set; that event names the watched path itself.
      if (!event->path.starts_with(prefix)) continue;
      ++events;
      arrival = now;
      arrived.notify_one();
    }
  });

  std::vector<double> samples_us;
  const auto end = After(duration);
  for (uint64_t i = 0; i < max_events && Clock::now() < end; ++i) {
    const auto sent = Clock::now();
    XPV_TRY(writer.Write(fmt::format("{}n{}", prefix, i % 64), "x"));
    std::unique_lock lock(mu);
    if (!arrived.wait_for(lock, std::chrono::milliseconds(kReplyTimeoutMs),
                          [&] { return events > i || !watcher_status; })) {
      return Err(ETIMEDOUT, "watch event not delivered within 10 s");
    }
    if (!watcher_status) return watcher_status.error();
    samples_us.push_back(std::chrono::duration<double, std::micro>(arrival - sent).count());
  }
  if (samples_us.empty()) return Err(ETIMEDOUT, "no watch event measured");

  std::sort(samples_us.begin(), samples_us.end());
  auto percentile = [&](double q) {
    return samples_us[std::min(samples_us.size() - 1, static_cast<size_t>(q * samples_us.size()))];
  };
  return LatencyStats{
      .samples = samples_us.size(), .p50_us = percentile(0.50), .p99_us = percentile(0.99)};
}

NodeFiller::NodeFiller(Client conn, const LoadShape& shape, int fanout, int pipeline)
    : conn_(std::move(conn)), value_(Value(shape)), fanout_(fanout), pipeline_(pipeline) {}

Result<NodeFiller> NodeFiller::Create(const std::string& socket, const LoadShape& shape, int fanout,
                                      int pipeline) {
  if (fanout < 1 || pipeline < 1) return Err(EINVAL, "fanout and pipeline must be at least 1");
  XPV_ASSIGN_OR_RETURN(Client conn, Connect(socket));
  return NodeFiller(std::move(conn), shape, fanout, pipeline);
}

uint64_t NodeFiller::nodes() const {
  if (leaves_ == 0) return 0;
  const uint64_t fanout = static_cast<uint64_t>(fanout_);
  // The leaves, their parent directories, and /bench/mem itself.
  return leaves_ + (leaves_ + fanout - 1) / fanout + 1;
}

Result<FillWindow> NodeFiller::CreateLeaves(uint64_t max_leaves, Clock::time_point deadline) {
  FillWindow window{.nodes_before = nodes()};
  const auto start = Clock::now();
  while (window.leaves < max_leaves && Clock::now() < deadline) {
    const uint64_t batch =
        std::min<uint64_t>(static_cast<uint64_t>(pipeline_), max_leaves - window.leaves);
    XPV_TRY(SendAndAwait(leaves_, batch));
    leaves_ += batch;
    window.leaves += batch;
  }
  window.seconds = Seconds(Clock::now() - start).count();
  return window;
}

Status NodeFiller::SendAndAwait(uint64_t first_leaf, uint64_t count) {
  out_.clear();
  const uint64_t fanout = static_cast<uint64_t>(fanout_);
  for (uint64_t leaf = first_leaf; leaf < first_leaf + count; ++leaf) {
    std::string payload =
        fmt::format("{}/mem/a{:06}/b{:02}", kBenchRoot, leaf / fanout, leaf % fanout);
    payload += '\0';
    payload += value_;
    xenstore::AppendMessage(out_, MsgType::kWrite, static_cast<uint32_t>(leaf), 0, payload);
  }
  const int fd = conn_.fd();
  for (size_t off = 0; off < out_.size();) {
    const ssize_t n = ::send(fd, out_.data() + off, out_.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "send");
    off += static_cast<size_t>(n);
  }

  xenstore::StreamDecoder decoder;
  char buf[16384];
  for (uint64_t replies = 0; replies < count;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, kReplyTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Err(errno, "poll");
    if (ready == 0) {
      return Err(ETIMEDOUT, "daemon stopped answering pipelined writes (try --pipeline 1)");
    }
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(errno, "recv");
    if (n == 0) return Err(ECONNRESET, "daemon closed the connection");
    std::string_view data(buf, static_cast<size_t>(n));
    while (!data.empty()) {
      XPV_ASSIGN_OR_RETURN(size_t used, decoder.Feed(data));
      data.remove_prefix(used);
      if (!decoder.HasMessage()) continue;
      const xenstore::Message reply = decoder.TakeMessage();
      if (reply.type() == MsgType::kError) {
        std::string_view error = reply.payload;
        if (error.ends_with('\0')) error.remove_suffix(1);
        return Err(xenstore::ErrnoFromString(error), "daemon refused to create a node");
      }
      ++replies;
    }
  }
  return Ok();
}

}  // namespace xpv::xs_bench
