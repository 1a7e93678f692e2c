// How the server waits, behind one interface: epoll (readiness, then recv and send) or io_uring
// (multishot accept, poll and recv, sends as submissions, one system call per iteration). Internal
// to server.cc; the connection logic over it is written once, there.
//
// A connected socket is a Stream that the loop owns together with the bytes in flight on it, so a
// connection can go away while the kernel still holds a send of its.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/server.h"

namespace xpv::xenstore {

// A connected socket, owned by the loop. Opaque: each backend derives its own.
class Stream {
 protected:
  ~Stream() = default;
};

// What a stream reports, to the connection that added it. Called only from EventLoop::Wait and
// EventLoop::Send, never after EventLoop::CloseStream.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Bytes arrived; `bytes` is valid only during the call. May still be called a few times after
  // SetReceiving(false), with what the kernel had already taken.
  virtual void OnReceived(std::string_view bytes) = 0;
  // All of the last Send()'s bytes have left; the buffer comes back for reuse.
  virtual void OnSent(std::string buffer) = 0;
  // The peer closed the connection (`why` null) or it failed. The handler calls CloseStream().
  virtual void OnClosed(const char* why) = 0;
};

class EventLoop {
 public:
  virtual ~EventLoop() = default;

  virtual const char* name() const = 0;

  // Readiness of a descriptor, as poll(2) bits: the stop eventfd, domain event channels.
  virtual Status Watch(int fd, uint32_t events, Pollable* p) = 0;
  virtual void Unwatch(int fd) = 0;

  // A listening socket: each connection accepted on it goes to `on_accept`.
  virtual Status Listen(UniqueFd fd, std::function<void(UniqueFd)> on_accept) = 0;

  // Connected sockets. A stream receives from the start.
  virtual Result<Stream*> AddStream(UniqueFd fd, StreamHandler* handler) = 0;
  virtual void SetReceiving(Stream* stream, bool on) = 0;
  // Sends all of `bytes`, then calls OnSent (possibly from within this call) or OnClosed. One
  // send at a time per stream.
  virtual void Send(Stream* stream, std::string bytes) = 0;
  // Stops the stream's I/O and closes it once the kernel has let go of it.
  virtual void CloseStream(Stream* stream) = 0;

  // Starts what was queued since the last call (io_uring: sends, re-armed receives), then waits
  // up to `timeout_ms` (-1: forever) for something to happen and dispatches it.
  virtual Status Wait(int timeout_ms) = 0;
};

Result<std::unique_ptr<EventLoop>> CreateEpollLoop();
// Fails where the kernel refuses io_uring or lacks what this loop uses (Linux 6.0: multishot
// receive, provided-buffer rings).
Result<std::unique_ptr<EventLoop>> CreateUringLoop();

}  // namespace xpv::xenstore
