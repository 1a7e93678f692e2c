#include "xpv/xenstore/server.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "xpv/xenstore/journal.h"

namespace xpv::xenstore {

// A dom0 tool on the Unix socket: privileged, as with Xen's daemon.
class Server::SocketConn final : public Pollable, public Sink {
 public:
  SocketConn(Server& server, UniqueFd fd)
      : server_(server), fd_(std::move(fd)), conn_(server.engine(), *this, kDom0,
                                                   Privilege::kPrivileged) {}

  int fd() const { return fd_.get(); }

  void OnReady(uint32_t events) override {
    if (closing_) return;
    if (events & EPOLLOUT) Flush();
    if (closing_) return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ReadAndHandle();
  }

  // Sink.
  void Reply(MsgType type, uint32_t req_id, uint32_t tx_id, std::string_view payload) override {
    AppendMessage(out_, type, req_id, tx_id, payload);
    server_.MarkDirty(this);
  }
  bool Event(std::string_view payload) override {
    if (queued_events_ >= server_.options().max_queued_events) return false;
    ++queued_events_;
    event_ends_.push_back(out_.size() + kHeaderSize + payload.size() + out_off_base_);
    AppendMessage(out_, MsgType::kWatchEvent, 0, 0, payload);
    server_.MarkDirty(this);
    return true;
  }

  void Flush() override {
    if (closing_) return;
    while (out_off_ < out_.size()) {
      const ssize_t n =
          ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return Close("send failed");
      }
      out_off_ += static_cast<size_t>(n);
    }
    // Count the events that have left.
    const uint64_t sent_abs = out_off_base_ + out_off_;
    while (!event_ends_.empty() && event_ends_.front() <= sent_abs) {
      event_ends_.pop_front();
      --queued_events_;
    }
    if (out_off_ == out_.size()) {
      out_off_base_ += out_.size();
      out_.clear();
      out_off_ = 0;
    } else if (out_off_ > (64u << 10)) {
      out_.erase(0, out_off_);
      out_off_base_ += out_off_;
      out_off_ = 0;
    }
    UpdateInterest();
    // Requests held back while the queue was full can go on now.
    if (!closing_ && Pending() < server_.options().max_queued_bytes && !inbuf_.empty()) {
      HandleBuffered();
    }
  }

 private:
  size_t Pending() const { return out_.size() - out_off_; }

  void UpdateInterest() {
    uint32_t want = 0;
    if (Pending() < server_.options().max_queued_bytes) want |= EPOLLIN;
    if (Pending() > 0) want |= EPOLLOUT;
    if (want != interest_) {
      interest_ = want;
      (void)server_.Modify(fd_.get(), want, this);
    }
  }

  void ReadAndHandle() {
    char buf[16384];
    while (true) {
      const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n == 0) return Close(nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return Close("recv failed");
      }
      inbuf_.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof(buf)) break;  // drained: skip the EAGAIN round trip
      if (inbuf_.size() > 2 * (kHeaderSize + kPayloadMax)) break;
    }
    HandleBuffered();
  }

  void HandleBuffered() {
    size_t used = 0;
    while (used < inbuf_.size() && Pending() < server_.options().max_queued_bytes) {
      auto r = decoder_.Feed(std::string_view(inbuf_).substr(used));
      if (!r) {
        // xs_wire.h: "Violating this is very bad": Xen drops the connection.
        return Close("request longer than XENSTORE_PAYLOAD_MAX");
      }
      used += *r;
      if (!decoder_.HasMessage()) break;
      Message msg = decoder_.TakeMessage();
      server_.engine().Handle(conn_, msg);
    }
    inbuf_.erase(0, used);
    UpdateInterest();
  }

  void Close(const char* why) {
    if (closing_) return;
    closing_ = true;
    if (why) spdlog::info("socket client: {}: closing", why);
    server_.Remove(fd_.get());
    server_.Disown(this);
  }

  Server& server_;
  UniqueFd fd_;
  Conn conn_;
  StreamDecoder decoder_;
  std::string inbuf_;
  std::string out_;
  size_t out_off_ = 0;
  uint64_t out_off_base_ = 0;  // bytes sent before out_[0]
  std::deque<uint64_t> event_ends_;
  size_t queued_events_ = 0;
  uint32_t interest_ = EPOLLIN;
  bool closing_ = false;
};

class Server::Listener final : public Pollable {
 public:
  Listener(Server& server, UniqueFd fd) : server_(server), fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

  void OnReady(uint32_t) override {
    for (int i = 0; i < 64; ++i) {
      UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!c.valid()) {
        if (errno != EAGAIN && errno != EINTR) spdlog::warn("accept: {}", std::strerror(errno));
        return;
      }
      const int cfd = c.get();
      auto conn = std::make_unique<SocketConn>(server_, std::move(c));
      if (!server_.Add(cfd, EPOLLIN, conn.get())) {
        spdlog::warn("epoll add failed: {}", std::strerror(errno));
        continue;
      }
      server_.Adopt(std::move(conn));
    }
  }

 private:
  Server& server_;
  UniqueFd fd_;
};

Server::Server(Engine& engine, Journal* journal, ServerOptions options)
    : engine_(engine), journal_(journal), options_(std::move(options)) {}

Server::~Server() {
  owned_.clear();
  retired_.clear();
}

Result<std::unique_ptr<Server>> Server::Create(Engine& engine, Journal* journal,
                                               ServerOptions options) {
  std::unique_ptr<Server> s(new Server(engine, journal, std::move(options)));
  s->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!s->epoll_.valid()) return Err(errno, "epoll_create1");
  s->stop_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!s->stop_fd_.valid()) return Err(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (::epoll_ctl(s->epoll_.get(), EPOLL_CTL_ADD, s->stop_fd_.get(), &ev) != 0) {
    return Err(errno, "epoll_ctl");
  }

  const std::string& path = s->options_.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Err(ENAMETOOLONG, "bad socket path");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // Create the socket's directory (as Xen's daemon does for /var/run/xenstored).
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    ::mkdir(path.substr(0, slash).c_str(), 0755);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Err(errno, "socket");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Err(errno, "bind");
  }
  ::chmod(path.c_str(), 0600);
  if (::listen(fd.get(), 1024) != 0) return Err(errno, "listen");
  const int lfd = fd.get();
  s->listener_ = std::make_unique<Listener>(*s, std::move(fd));
  XPV_TRY(s->Add(lfd, EPOLLIN, s->listener_.get()));
  return s;
}

Status Server::Add(int fd, uint32_t events, Pollable* p) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = p;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Err(errno, "epoll_ctl add");
  return Ok();
}

Status Server::Modify(int fd, uint32_t events, Pollable* p) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = p;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return Err(errno, "epoll_ctl mod");
  return Ok();
}

void Server::Remove(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void Server::MarkDirty(Pollable* p) {
  if (p->flush_pending_) return;
  p->flush_pending_ = true;
  dirty_.push_back(p);
}

void Server::Adopt(std::unique_ptr<Pollable> p) {
  Pollable* raw = p.get();
  owned_.emplace(raw, std::move(p));
}

void Server::Disown(Pollable* p) {
  auto it = owned_.find(p);
  if (it == owned_.end()) return;
  std::erase(dirty_, p);
  retired_.push_back(std::move(it->second));
  owned_.erase(it);
}

void Server::Retire(std::unique_ptr<Pollable> p) {
  std::erase(dirty_, p.get());
  retired_.push_back(std::move(p));
}

void Server::Stop() {
  const uint64_t one = 1;
  // SAFETY: write(2) to an eventfd is async-signal-safe.
  [[maybe_unused]] ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
}

void Server::EndOfIteration() {
  // Group commit: every change made this iteration reaches the journal before any reply leaves.
  if (journal_ && journal_->dirty()) {
    if (auto st = journal_->Flush(); !st) {
      spdlog::critical("journal: {} ({}): stopping rather than acknowledge unsaved writes",
                       st.error().message, std::strerror(st.error().code));
      std::abort();
    }
  }
  // Flushing may handle held-back requests, which may dirty more pollables.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Pollable* p = dirty_[i];
    p->flush_pending_ = false;
    if (journal_ && journal_->dirty()) (void)journal_->Flush();
    p->Flush();
  }
  dirty_.clear();
  retired_.clear();
}

int Server::Run() {
  running_ = true;
  while (RunOnce(-1)) {
  }
  return 0;
}

bool Server::RunOnce(int timeout_ms) {
  running_ = true;
  epoll_event events[256];
  const int n = ::epoll_wait(epoll_.get(), events, 256, timeout_ms);
  if (n < 0 && errno != EINTR) {
    spdlog::error("epoll_wait: {}", std::strerror(errno));
    return false;
  }
  for (int i = 0; i < n; ++i) {
    auto* p = static_cast<Pollable*>(events[i].data.ptr);
    if (!p) {
      running_ = false;
      continue;
    }
    // A pollable retired earlier in this batch stays alive until EndOfIteration.
    p->OnReady(events[i].events);
  }
  EndOfIteration();
  return running_;
}

}  // namespace xpv::xenstore
