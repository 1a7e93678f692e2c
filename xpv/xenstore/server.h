// The daemon's event loop: a Unix socket for dom0 tools (libxenstore's XENSTORED_PATH), ring
// connections for domains, and the group commit of the journal before replies leave.
//
// Output is bounded per connection: once a client's unsent replies pass max_queued_bytes the loop
// stops reading its requests until it drains them, and watch events beyond max_queued_events are
// dropped (and counted). A client that never reads cannot make the daemon grow.
//
// The loop runs on io_uring where the kernel allows it (one io_uring_enter(2) per iteration: the
// replies of one iteration are submitted with the wait for the next), else on epoll; both sit
// behind event_loop.h, so the connection logic here is written once.
#pragma once

#include <poll.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/engine.h"

namespace xpv::xenstore {

class EventLoop;
class Journal;

// A connection the server owns: a socket client or a domain's ring.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // Called once per loop iteration after the journal is flushed, for endpoints marked dirty.
  virtual void Flush() {}

 private:
  friend class Server;
  bool flush_pending_ = false;
};

// An endpoint the loop polls for readiness: a domain ring's event channel.
class Pollable : public Endpoint {
 public:
  // `events` holds poll(2) bits. Called when the descriptor becomes ready; the pollable consumes
  // what made it ready (reads its eventfd): a descriptor left ready need not be reported again.
  virtual void OnReady(uint32_t events) = 0;
};

enum class LoopKind {
  kAuto,  // io_uring unless $XPV_XENSTORED_LOOP=epoll, epoll when io_uring is unavailable
  kEpoll,
  kUring,  // io_uring or fail
};

struct ServerOptions {
  std::string socket_path;
  size_t max_queued_bytes = 256 * 1024;
  size_t max_queued_events = 1024;
  LoopKind loop = LoopKind::kAuto;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(Engine& engine, Journal* journal,
                                                ServerOptions options);
  ~Server();

  // Runs until Stop(); returns 0.
  int Run();
  // One loop iteration, waiting up to `timeout_ms` for something to do: for tests. Returns false
  // once stopped.
  bool RunOnce(int timeout_ms);
  // Async-signal-safe.
  void Stop();

  Engine& engine() { return engine_; }
  const ServerOptions& options() const { return options_; }
  // "io_uring" or "epoll".
  const char* loop_name() const;

  // For transports: watch `fd` for `events` (poll(2) bits), calling `p` when ready.
  Status Add(int fd, uint32_t events, Pollable* p);
  Status Modify(int fd, uint32_t events, Pollable* p);
  void Remove(int fd);
  // Ask for p->Flush() at the end of this loop iteration.
  void MarkDirty(Endpoint* p);
  // Destroy `p` at the end of this loop iteration (it may be on the stack now).
  void Retire(std::unique_ptr<Endpoint> p);

  // Takes ownership of a connection made elsewhere (a socket accepted, a ring introduced).
  void Adopt(std::unique_ptr<Endpoint> p);
  void Disown(Endpoint* p);

  size_t client_count() const { return owned_.size(); }

 private:
  class SocketConn;
  class StopSignal;

  Server(Engine& engine, Journal* journal, ServerOptions options);
  void Accept(UniqueFd fd);
  void FlushJournal();
  void EndOfIteration();

  Engine& engine_;
  Journal* journal_;
  ServerOptions options_;
  std::unique_ptr<EventLoop> loop_;
  UniqueFd stop_fd_;
  std::unique_ptr<StopSignal> stop_signal_;
  std::unordered_map<Endpoint*, std::unique_ptr<Endpoint>> owned_;
  std::vector<Endpoint*> dirty_;
  std::vector<std::unique_ptr<Endpoint>> retired_;
  bool stopped_ = false;
};

}  // namespace xpv::xenstore
