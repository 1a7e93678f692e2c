#include "xpv/base/event_loop.h"

#include <sys/epoll.h>

namespace xpv {

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return Err(errno, "epoll_create1");
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(ep)));
}

Status EventLoop::Add(int fd, std::function<void()> on_readable) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Err(errno, "epoll_ctl add");
  handlers_[fd] = std::make_shared<std::function<void()>>(std::move(on_readable));
  return Ok();
}

void EventLoop::Remove(int fd) {
  if (handlers_.erase(fd) == 0) return;
  (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

Status EventLoop::RunOnce(int timeout_ms) {
  epoll_event events[64];
  const int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
  if (n < 0) return errno == EINTR ? Ok() : Status(Err(errno, "epoll_wait"));
  for (int i = 0; i < n; ++i) {
    // Looked up again for each event: an earlier callback may have removed this descriptor (and
    // a new one may have taken its number; calling it once spuriously is harmless, as callbacks
    // read non-blocking descriptors).
    auto it = handlers_.find(events[i].data.fd);
    if (it == handlers_.end()) continue;
    std::shared_ptr<std::function<void()>> h = it->second;
    (*h)();
  }
  return Ok();
}

}  // namespace xpv
