// The epoll loop: the fallback where io_uring is unavailable (a seccomp profile, the
// kernel.io_uring_disabled sysctl, an old kernel). Readiness, then recv(2) and send(2): three
// system calls per synchronous request.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "xpv/xenstore/event_loop.h"

namespace xpv::xenstore {

namespace {

// What an epoll_event's data.ptr points at.
class Target {
 public:
  virtual ~Target() = default;
  virtual void OnEvents(uint32_t events) = 0;
};

class PollTarget final : public Target {
 public:
  explicit PollTarget(Pollable* p) : pollable(p) {}
  void OnEvents(uint32_t events) override {
    if (pollable) pollable->OnReady(events);
  }
  Pollable* pollable;  // null once unwatched
};

class ListenTarget final : public Target {
 public:
  ListenTarget(UniqueFd fd, std::function<void(UniqueFd)> on_accept)
      : fd(std::move(fd)), on_accept(std::move(on_accept)) {}

  void OnEvents(uint32_t) override {
    // A bounded batch per wakeup; level-triggered epoll reports the rest.
    for (int i = 0; i < 64; ++i) {
      UniqueFd c(::accept4(fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!c.valid()) {
        if (errno != EAGAIN && errno != EINTR) spdlog::warn("accept: {}", std::strerror(errno));
        return;
      }
      on_accept(std::move(c));
    }
  }

  UniqueFd fd;
  std::function<void(UniqueFd)> on_accept;
};

class EpollStream final : public Stream, public Target {
 public:
  EpollStream(int epoll, UniqueFd fd, StreamHandler* handler)
      : epoll_(epoll), fd_(std::move(fd)), handler_(handler) {}

  int fd() const { return fd_.get(); }

  void OnEvents(uint32_t events) override {
    if (!handler_) return;  // closed earlier in this batch
    if ((events & EPOLLOUT) && out_off_ < out_.size()) TrySend();
    // A hangup or error is read even while paused: recv reports it, after any bytes left.
    if (handler_ && ((receiving_ && (events & EPOLLIN)) || (events & (EPOLLHUP | EPOLLERR)))) {
      Receive();
    }
  }

  void SetReceiving(bool on) {
    receiving_ = on;
    UpdateInterest();
  }

  void Send(std::string bytes) {
    XPV_CHECK(out_.empty());
    out_ = std::move(bytes);
    out_off_ = 0;
    TrySend();
  }

  void Close() {
    handler_ = nullptr;
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd_.get(), nullptr);
    fd_.reset();
  }

 private:
  // One recv per wakeup: a synchronous request is one, and level-triggered epoll reports the rest.
  void Receive() {
    char buf[16384];
    ssize_t n;
    do {
      n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) return handler_->OnReceived(std::string_view(buf, static_cast<size_t>(n)));
    if (n == 0) return handler_->OnClosed(nullptr);
    if (errno != EAGAIN) handler_->OnClosed("recv failed");
  }

  void TrySend() {
    while (out_off_ < out_.size()) {
      const ssize_t n =
          ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return handler_->OnClosed("send failed");
      }
      out_off_ += static_cast<size_t>(n);
    }
    const bool done = out_off_ == out_.size();
    UpdateInterest();
    if (done) {
      out_off_ = 0;
      handler_->OnSent(std::exchange(out_, {}));
    }
  }

  void UpdateInterest() {
    uint32_t want = receiving_ ? uint32_t{EPOLLIN} : 0;
    if (out_off_ < out_.size()) want |= EPOLLOUT;
    if (want == interest_) return;
    interest_ = want;
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = static_cast<Target*>(this);
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd_.get(), &ev);
  }

  int epoll_;
  UniqueFd fd_;
  StreamHandler* handler_;  // null once closed
  std::string out_;         // the send in progress
  size_t out_off_ = 0;
  bool receiving_ = true;
  uint32_t interest_ = EPOLLIN;
};

class EpollLoop final : public EventLoop {
 public:
  static Result<std::unique_ptr<EventLoop>> Create() {
    std::unique_ptr<EpollLoop> loop(new EpollLoop());
    loop->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!loop->epoll_.valid()) return Err(errno, "epoll_create1");
    return std::unique_ptr<EventLoop>(std::move(loop));
  }

  const char* name() const override { return "epoll"; }

  Status Watch(int fd, uint32_t events, Pollable* p) override {
    auto target = std::make_unique<PollTarget>(p);
    XPV_TRY(Register(EPOLL_CTL_ADD, fd, events, target.get()));
    polls_[fd] = std::move(target);
    return Ok();
  }

  void Unwatch(int fd) override {
    auto it = polls_.find(fd);
    if (it == polls_.end()) return;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    it->second->pollable = nullptr;
    graveyard_.push_back(std::move(it->second));
    polls_.erase(it);
  }

  Status Listen(UniqueFd fd, std::function<void(UniqueFd)> on_accept) override {
    const int raw = fd.get();
    listener_ = std::make_unique<ListenTarget>(std::move(fd), std::move(on_accept));
    return Register(EPOLL_CTL_ADD, raw, EPOLLIN, listener_.get());
  }

  Result<Stream*> AddStream(UniqueFd fd, StreamHandler* handler) override {
    const int raw = fd.get();
    auto stream = std::make_unique<EpollStream>(epoll_.get(), std::move(fd), handler);
    XPV_TRY(Register(EPOLL_CTL_ADD, raw, EPOLLIN, stream.get()));
    EpollStream* s = stream.get();
    streams_.emplace(s, std::move(stream));
    return static_cast<Stream*>(s);
  }

  void SetReceiving(Stream* stream, bool on) override { Cast(stream)->SetReceiving(on); }
  void Send(Stream* stream, std::string bytes) override { Cast(stream)->Send(std::move(bytes)); }

  void CloseStream(Stream* stream) override {
    auto it = streams_.find(Cast(stream));
    if (it == streams_.end()) return;
    it->second->Close();
    // Its events may still be in the batch being dispatched: freed after it.
    graveyard_.push_back(std::move(it->second));
    streams_.erase(it);
  }

  Status Wait(int timeout_ms) override {
    epoll_event events[256];
    const int n = ::epoll_wait(epoll_.get(), events, 256, timeout_ms);
    if (n < 0 && errno != EINTR) return Err(errno, "epoll_wait");
    for (int i = 0; i < n; ++i) {
      static_cast<Target*>(events[i].data.ptr)->OnEvents(events[i].events);
    }
    graveyard_.clear();
    return Ok();
  }

 private:
  EpollLoop() = default;

  static EpollStream* Cast(Stream* s) { return static_cast<EpollStream*>(s); }

  Status Register(int op, int fd, uint32_t events, Target* target) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = target;
    if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0) return Err(errno, "epoll_ctl");
    return Ok();
  }

  UniqueFd epoll_;
  std::unique_ptr<ListenTarget> listener_;
  std::unordered_map<int, std::unique_ptr<PollTarget>> polls_;
  std::unordered_map<EpollStream*, std::unique_ptr<EpollStream>> streams_;
  std::vector<std::unique_ptr<Target>> graveyard_;  // unwatched or closed during a batch
};

}  // namespace

Result<std::unique_ptr<EventLoop>> CreateEpollLoop() {
  return EpollLoop::Create();
}

}  // namespace xpv::xenstore
