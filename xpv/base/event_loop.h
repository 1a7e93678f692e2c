// EventLoop: a small epoll loop for daemons whose work arrives on file descriptors (device
// backends: the store client, event-channel kicks, io_uring completion eventfds).
//
//   EventLoop loop;
//   XPV_TRY(loop.Add(fd, [&] { ... }));   // level-triggered: called while `fd` is readable
//   while (!stop) XPV_TRY(loop.RunOnce(-1));
//
// A callback may Add and Remove descriptors, its own included; a descriptor removed during an
// iteration is not called again in that iteration. Single-threaded.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"

namespace xpv {

class EventLoop {
 public:
  static Result<std::unique_ptr<EventLoop>> Create();

  Status Add(int fd, std::function<void()> on_readable);
  void Remove(int fd);
  // Waits up to `timeout_ms` (-1: forever) and runs the callbacks of readable descriptors.
  Status RunOnce(int timeout_ms);
  size_t size() const { return handlers_.size(); }

 private:
  explicit EventLoop(UniqueFd epoll) : epoll_(std::move(epoll)) {}

  UniqueFd epoll_;
  // Shared so that a callback removing itself does not destroy the function it is running.
  std::unordered_map<int, std::shared_ptr<std::function<void()>>> handlers_;
};

}  // namespace xpv
