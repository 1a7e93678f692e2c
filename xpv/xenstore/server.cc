#include "xpv/xenstore/server.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "xpv/xenstore/event_loop.h"
#include "xpv/xenstore/journal.h"

namespace xpv::xenstore {

// A dom0 tool on the Unix socket: privileged, as with Xen's daemon.
//
// Its output is a queue of replies and events (out_) and at most one batch handed to the loop
// for sending; Pending() counts both. Bytes are positions in the connection's output stream, so
// an event is known to have left when the stream has sent past its end.
class Server::SocketConn final : public Endpoint, public Sink, public StreamHandler {
 public:
  explicit SocketConn(Server& server)
      : server_(server), conn_(server.engine(), *this, kDom0, Privilege::kPrivileged) {}

  void Attach(Stream* stream) { stream_ = stream; }

  // Sink.
  void Reply(MsgType type, uint32_t req_id, uint32_t tx_id, std::string_view payload) override {
    AppendMessage(out_, type, req_id, tx_id, payload);
    server_.MarkDirty(this);
  }
  bool Event(std::string_view payload) override {
    if (queued_events_ >= server_.options().max_queued_events) return false;
    ++queued_events_;
    AppendMessage(out_, MsgType::kWatchEvent, 0, 0, payload);
    event_ends_.push_back(handed_off_ + out_.size());
    server_.MarkDirty(this);
    return true;
  }

  // StreamHandler.
  void OnReceived(std::string_view bytes) override {
    if (closing_) return;
    if (inbuf_.empty()) {
      // The usual case, a whole request or several: decoded straight from the loop's buffer.
      const size_t used = Consume(bytes);
      if (!closing_) inbuf_.assign(bytes.substr(used));
    } else {
      inbuf_.append(bytes);
      const size_t used = Consume(inbuf_);
      if (!closing_) inbuf_.erase(0, used);
    }
    UpdateReceiving();
  }
  void OnSent(std::string buffer) override {
    sent_ += buffer.size();
    while (!event_ends_.empty() && event_ends_.front() <= sent_) {
      event_ends_.pop_front();
      --queued_events_;
    }
    buffer.clear();
    spare_ = std::move(buffer);  // keeps its capacity for the next batch
    sending_ = false;
    // More to send, or requests held back while the queue was full.
    if (!out_.empty() || !inbuf_.empty()) server_.MarkDirty(this);
  }
  void OnClosed(const char* why) override { Close(why); }

  // Endpoint: after the journal flush.
  void Flush() override {
    if (closing_) return;
    if (!sending_ && !out_.empty()) {
      sending_ = true;
      handed_off_ += out_.size();
      std::string batch = std::exchange(out_, std::move(spare_));
      server_.loop_->Send(stream_, std::move(batch));  // may call OnSent or OnClosed at once
      if (closing_) return;
    }
    // Requests held back while the queue was full go on now; their replies leave in a later
    // Flush, after the journal has their changes.
    if (!inbuf_.empty() && Pending() < server_.options().max_queued_bytes) {
      const size_t used = Consume(inbuf_);
      if (closing_) return;
      inbuf_.erase(0, used);
    }
    UpdateReceiving();
  }

 private:
  size_t Pending() const { return static_cast<size_t>(handed_off_ + out_.size() - sent_); }

  // Handles the whole requests at the front of `data` while the output queue has room; returns
  // the bytes used.
  size_t Consume(std::string_view data) {
    size_t used = 0;
    while (used < data.size() && Pending() < server_.options().max_queued_bytes) {
      auto r = decoder_.Feed(data.substr(used));
      if (!r) {
        // xs_wire.h: "Violating this is very bad": Xen drops the connection.
        Close("request longer than XENSTORE_PAYLOAD_MAX");
        return used;
      }
      used += *r;
      if (!decoder_.HasMessage()) break;
      server_.engine().Handle(conn_, decoder_.TakeMessage());
    }
    return used;
  }

  // Reads requests only while the output queue has room: a client that never reads stops being
  // read, and its socket buffer, not the daemon, holds what it sends.
  void UpdateReceiving() {
    if (closing_) return;
    const bool want = Pending() < server_.options().max_queued_bytes;
    if (want == receiving_) return;
    receiving_ = want;
    server_.loop_->SetReceiving(stream_, want);
  }

  void Close(const char* why) {
    if (closing_) return;
    closing_ = true;
    if (why) spdlog::info("socket client: {}: closing", why);
    server_.loop_->CloseStream(stream_);
    server_.Disown(this);
  }

  Server& server_;
  Stream* stream_ = nullptr;
  Conn conn_;
  StreamDecoder decoder_;
  std::string inbuf_;        // received, not yet handled (a partial request, or held back)
  std::string out_;          // queued, not yet handed to the loop
  std::string spare_;        // the last sent batch, emptied, for its capacity
  uint64_t handed_off_ = 0;  // bytes of output handed to the loop, before out_[0]
  uint64_t sent_ = 0;        // bytes of output that have left
  std::deque<uint64_t> event_ends_;
  size_t queued_events_ = 0;
  bool sending_ = false;
  bool receiving_ = true;
  bool closing_ = false;
};

// Server::Stop()'s eventfd becoming readable.
class Server::StopSignal final : public Pollable {
 public:
  StopSignal(Server& server, int fd) : server_(server), fd_(fd) {}
  void OnReady(uint32_t) override {
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(fd_, &v, sizeof(v));
    server_.stopped_ = true;
  }

 private:
  Server& server_;
  int fd_;
};

namespace {

Result<std::unique_ptr<EventLoop>> CreateLoop(LoopKind kind) {
  if (kind == LoopKind::kAuto) {
    const char* value = std::getenv("XPV_XENSTORED_LOOP");
    const std::string_view env = value ? value : "";
    if (env == "epoll") {
      kind = LoopKind::kEpoll;
    } else if (env == "io_uring") {
      kind = LoopKind::kUring;
    } else if (!env.empty()) {
      spdlog::warn("XPV_XENSTORED_LOOP={}: ignored (epoll or io_uring)", env);
    }
  }
  if (kind == LoopKind::kEpoll) return CreateEpollLoop();
  auto uring = CreateUringLoop();
  if (uring || kind == LoopKind::kUring) return uring;
  spdlog::warn("io_uring unavailable ({}: {}): using epoll", uring.error().message,
               std::strerror(uring.error().code));
  return CreateEpollLoop();
}

Result<UniqueFd> ListenOn(const std::string& path) {
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
  return fd;
}

}  // namespace

Server::Server(Engine& engine, Journal* journal, ServerOptions options)
    : engine_(engine), journal_(journal), options_(std::move(options)) {}

Server::~Server() {
  owned_.clear();
  retired_.clear();
}

Result<std::unique_ptr<Server>> Server::Create(Engine& engine, Journal* journal,
                                               ServerOptions options) {
  std::unique_ptr<Server> s(new Server(engine, journal, std::move(options)));
  XPV_ASSIGN_OR_RETURN(s->loop_, CreateLoop(s->options_.loop));
  s->stop_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!s->stop_fd_.valid()) return Err(errno, "eventfd");
  s->stop_signal_ = std::make_unique<StopSignal>(*s, s->stop_fd_.get());
  XPV_TRY(s->loop_->Watch(s->stop_fd_.get(), POLLIN, s->stop_signal_.get()));
  XPV_ASSIGN_OR_RETURN(UniqueFd listener, ListenOn(s->options_.socket_path));
  Server* raw = s.get();
  XPV_TRY(
      s->loop_->Listen(std::move(listener), [raw](UniqueFd fd) { raw->Accept(std::move(fd)); }));
  spdlog::info("event loop: {}", s->loop_name());
  return s;
}

const char* Server::loop_name() const {
  return loop_->name();
}

void Server::Accept(UniqueFd fd) {
  auto conn = std::make_unique<SocketConn>(*this);
  auto stream = loop_->AddStream(std::move(fd), conn.get());
  if (!stream) {
    spdlog::warn("socket client: {}: {}: dropped", stream.error().message,
                 std::strerror(stream.error().code));
    return;
  }
  conn->Attach(*stream);
  Adopt(std::move(conn));
}

Status Server::Add(int fd, uint32_t events, Pollable* p) {
  return loop_->Watch(fd, events, p);
}

Status Server::Modify(int fd, uint32_t events, Pollable* p) {
  loop_->Unwatch(fd);
  return loop_->Watch(fd, events, p);
}

void Server::Remove(int fd) {
  loop_->Unwatch(fd);
}

void Server::MarkDirty(Endpoint* p) {
  if (p->flush_pending_) return;
  p->flush_pending_ = true;
  dirty_.push_back(p);
}

void Server::Adopt(std::unique_ptr<Endpoint> p) {
  Endpoint* raw = p.get();
  owned_.emplace(raw, std::move(p));
}

void Server::Disown(Endpoint* p) {
  auto it = owned_.find(p);
  if (it == owned_.end()) return;
  Retire(std::move(it->second));
  owned_.erase(it);
}

void Server::Retire(std::unique_ptr<Endpoint> p) {
  // Blanked rather than erased: EndOfIteration may be walking dirty_ (a send failing in Flush).
  std::replace(dirty_.begin(), dirty_.end(), p.get(), static_cast<Endpoint*>(nullptr));
  retired_.push_back(std::move(p));
}

void Server::Stop() {
  const uint64_t one = 1;
  // SAFETY: write(2) to an eventfd is async-signal-safe.
  [[maybe_unused]] ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
}

void Server::FlushJournal() {
  if (!journal_ || !journal_->dirty()) return;
  if (auto st = journal_->Flush(); !st) {
    spdlog::critical("journal: {} ({}): stopping rather than acknowledge unsaved writes",
                     st.error().message, std::strerror(st.error().code));
    std::abort();
  }
}

void Server::EndOfIteration() {
  // Group commit: every change made so far reaches the journal before any reply leaves (sent
  // here with epoll, queued for the next submission with io_uring). Flushing may handle
  // held-back requests, which may dirty more endpoints: the journal is flushed again before each.
  FlushJournal();
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Endpoint* p = dirty_[i];
    if (!p) continue;  // retired
    p->flush_pending_ = false;
    FlushJournal();
    p->Flush();
  }
  dirty_.clear();
  retired_.clear();
}

int Server::Run() {
  while (RunOnce(-1)) {
  }
  return 0;
}

bool Server::RunOnce(int timeout_ms) {
  if (auto st = loop_->Wait(timeout_ms); !st) {
    spdlog::error("{}: {}", st.error().message, std::strerror(st.error().code));
    return false;
  }
  EndOfIteration();
  return !stopped_;
}

}  // namespace xpv::xenstore
