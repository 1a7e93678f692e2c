// The daemon's event loop: a Unix socket for dom0 tools (libxenstore's XENSTORED_PATH), ring
// connections for domains, and the group commit of the journal before replies leave.
//
// Output is bounded per connection: once a client's unsent replies pass kMaxQueuedBytes the loop
// stops reading its requests until it drains them, and watch events beyond kMaxQueuedEvents are
// dropped (and counted). A client that never reads cannot make the daemon grow.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/engine.h"

namespace xpv::xenstore {

class Journal;

// Something the loop polls: a socket client, the listener, a domain ring's event channel.
class Pollable {
 public:
  virtual ~Pollable() = default;
  virtual void OnReady(uint32_t events) = 0;
  // Called once per loop iteration after the journal is flushed, for pollables marked dirty.
  virtual void Flush() {}

 private:
  friend class Server;
  bool flush_pending_ = false;
};

struct ServerOptions {
  std::string socket_path;
  size_t max_queued_bytes = 256 * 1024;
  size_t max_queued_events = 1024;
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

  // For transports: watch `fd` for `events`, calling `p` when ready.
  Status Add(int fd, uint32_t events, Pollable* p);
  Status Modify(int fd, uint32_t events, Pollable* p);
  void Remove(int fd);
  // Ask for p->Flush() at the end of this loop iteration.
  void MarkDirty(Pollable* p);
  // Destroy `p` at the end of this loop iteration (it may be on the stack now).
  void Retire(std::unique_ptr<Pollable> p);

  // Takes ownership of a connection made elsewhere (a socket accepted, a ring introduced).
  void Adopt(std::unique_ptr<Pollable> p);
  void Disown(Pollable* p);

  size_t client_count() const { return owned_.size(); }

 private:
  class Listener;
  class SocketConn;

  Server(Engine& engine, Journal* journal, ServerOptions options);
  void EndOfIteration();

  Engine& engine_;
  Journal* journal_;
  ServerOptions options_;
  UniqueFd epoll_;
  UniqueFd stop_fd_;
  std::unique_ptr<Listener> listener_;
  std::unordered_map<Pollable*, std::unique_ptr<Pollable>> owned_;
  std::vector<Pollable*> dirty_;
  std::vector<std::unique_ptr<Pollable>> retired_;
  bool running_ = false;
};

}  // namespace xpv::xenstore
