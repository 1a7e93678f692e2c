#include "xpv/platform/sim/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <spdlog/spdlog.h>

#include "xpv/platform/sim/spawn.h"

namespace xpv::platform::sim {

using wire::Op;

namespace {

// epoll data: the fd and what it is.
enum class Tag : uint32_t { kListener = 1, kConn = 2, kChild = 3, kStop = 4 };
uint64_t Key(Tag tag, int fd) {
  return (uint64_t{static_cast<uint32_t>(tag)} << 32) | static_cast<uint32_t>(fd);
}

constexpr size_t kRequestsPerWakeup = 32;  // fairness between connections
constexpr size_t kMaxRequestFds = 4;       // requests carry none; a few are received to be refused

UniqueFd DupFd(int fd) {
  return UniqueFd(fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

wire::Header ReplyHeader(const wire::Header& req) {
  return wire::Header{wire::kMagic, wire::kVersion, req.op, 0, req.seq};
}

template <typename T>
std::vector<uint8_t> Bytes(const T& v) {
  std::vector<uint8_t> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

HvServer* g_server = nullptr;  // RunDaemon's, for the signal handler

}  // namespace

struct HvServer::Conn {
  UniqueFd fd;
  bool from_listener = false;
  DomId domid;               // domain connections: fixed when the daemon made them
  uint64_t incarnation = 0;  // ditto
  SessionId session = 0;
  int peer_pid = 0;
  bool closing = false;
  // A reply the socket had no room for. No request is read until it is sent.
  bool has_pending = false;
  Out pending;
};

// ---------------------------------------------------------------------------------------------
// Setup and loop.

Result<std::unique_ptr<HvServer>> HvServer::Create(const HvOptions& options) {
  std::unique_ptr<HvServer> s(new HvServer());
  s->options_ = options;
  s->socket_path_ = options.socket_path.empty() ? DefaultSocketPath() : options.socket_path;
  s->uid_ = ::geteuid();
  XPV_ASSIGN_OR_RETURN(s->hv_, Hypervisor::Create(options.hypervisor));
  HvServer* self = s.get();
  s->hv_->set_session_closed_hook([self](SessionId id) {
    auto it = self->by_session_.find(id);
    if (it == self->by_session_.end()) return;
    auto c = self->conns_.find(it->second);
    if (c != self->conns_.end()) {
      c->second->session = 0;  // already ended by the hypervisor
      self->ScheduleClose(*c->second);
    }
    self->by_session_.erase(it);
  });

  s->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!s->epoll_.valid()) return Err(errno, "epoll_create1");
  s->stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->stop_.valid()) return Err(errno, "eventfd");

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (s->socket_path_.size() >= sizeof addr.sun_path)
    return Err(ENAMETOOLONG, "socket path too long");
  std::memcpy(addr.sun_path, s->socket_path_.c_str(), s->socket_path_.size() + 1);
  // The parent directory (/run/xpv by default) is created if missing.
  if (auto slash = s->socket_path_.rfind('/'); slash != std::string::npos && slash > 0) {
    (void)::mkdir(s->socket_path_.substr(0, slash).c_str(), 0755);
  }
  s->listen_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s->listen_.valid()) return Err(errno, "socket");
  // A stale socket file from a dead daemon is replaced; a live daemon's is not.
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return Err(EADDRINUSE, "another xpv-hv is listening on that socket");
    }
    ::unlink(s->socket_path_.c_str());
  }
  if (::bind(s->listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Err(errno, "bind");
  }
  if (::listen(s->listen_.get(), 64) != 0) return Err(errno, "listen");

  auto add = [&](int fd, Tag tag) -> Status {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Key(tag, fd);
    if (::epoll_ctl(s->epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Err(errno, "epoll_ctl");
    return Ok();
  };
  XPV_TRY(add(s->listen_.get(), Tag::kListener));
  XPV_TRY(add(s->stop_.get(), Tag::kStop));
  return s;
}

HvServer::~HvServer() {
  for (auto& [fd, child] : children_) {
    ::syscall(SYS_pidfd_send_signal, child.pidfd.get(), SIGKILL, nullptr, 0);
    ::waitpid(child.pid, nullptr, 0);
  }
  if (listen_.valid()) ::unlink(socket_path_.c_str());
}

void HvServer::Stop() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
}

int HvServer::Run() {
  while (RunOnce(-1)) {
  }
  return 0;
}

bool HvServer::RunOnce(int timeout_ms) {
  if (!running_) return false;
  epoll_event events[64];
  int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
  if (n < 0 && errno != EINTR) {
    spdlog::error("epoll_wait: {}", std::strerror(errno));
    return false;
  }
  for (int i = 0; i < n; ++i) {
    const auto tag = static_cast<Tag>(events[i].data.u64 >> 32);
    const int fd = static_cast<int>(events[i].data.u64 & 0xFFFFFFFFu);
    switch (tag) {
      case Tag::kListener:
        Accept();
        break;
      case Tag::kStop:
        running_ = false;
        break;
      case Tag::kChild:
        OnChildExit(fd);
        break;
      case Tag::kConn: {
        auto it = conns_.find(fd);
        if (it != conns_.end() && !it->second->closing) OnConnReady(*it->second, events[i].events);
        break;
      }
    }
  }
  // Closes are deferred to here, so no fd is reused while this batch of events still names it.
  while (!to_close_.empty()) {
    std::vector<int> batch;
    batch.swap(to_close_);
    for (int fd : batch) CloseConn(fd);
  }
  return running_;
}

HvServer::Conn* HvServer::AddConn(UniqueFd fd, bool from_listener, DomId domid,
                                  uint64_t incarnation) {
  auto c = std::make_unique<Conn>();
  c->from_listener = from_listener;
  c->domid = domid;
  c->incarnation = incarnation;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Key(Tag::kConn, fd.get());
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) return nullptr;
  const int raw = fd.get();
  c->fd = std::move(fd);
  Conn* out = c.get();
  conns_[raw] = std::move(c);
  return out;
}

void HvServer::Accept() {
  for (int i = 0; i < 16; ++i) {
    UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.valid()) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
    // Domain 0 is whoever runs as the hypervisor's user, or root.
    if (cred.uid != uid_ && cred.uid != 0) {
      spdlog::warn("refused a connection from uid {} pid {}", cred.uid, cred.pid);
      continue;
    }
    if (conns_.size() >= options_.max_connections) {
      spdlog::warn("refused a connection from pid {}: too many connections", cred.pid);
      continue;
    }
    Conn* c = AddConn(std::move(fd), /*from_listener=*/true, kDom0, 0);
    if (c != nullptr) c->peer_pid = cred.pid;
  }
}

void HvServer::ScheduleClose(Conn& c) {
  if (c.closing) return;
  c.closing = true;
  to_close_.push_back(c.fd.get());
}

void HvServer::CloseConn(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  if (c->session != 0) {
    by_session_.erase(c->session);
    auto rec = hv_->Find(c->domid);
    hv_->Detach(c->session);  // a domain other than 0 dies with its connection
    if (c->domid != kDom0) {
      spdlog::info("domain {} ({}) disconnected: destroyed", c->domid.value,
                   rec ? rec->name : std::string("?"));
      DomainGone(c->domid, c->incarnation);
    }
  } else if (!c->from_listener) {
    // A domain that never said hello: still a domain, and it is gone.
    auto rec = hv_->Find(c->domid);
    if (rec && rec->incarnation == c->incarnation && !rec->dying) {
      (void)hv_->DestroyDomain(c->domid);
    }
    DomainGone(c->domid, c->incarnation);
  }
}

// After a domain is destroyed, whatever way: its process is killed and its unused connection
// closed.
void HvServer::DomainGone(DomId domid, uint64_t incarnation) {
  for (auto& [pidfd, child] : children_) {
    if (child.domid == domid && child.incarnation == incarnation) {
      ::syscall(SYS_pidfd_send_signal, child.pidfd.get(), SIGKILL, nullptr, 0);
    }
  }
  for (auto& [fd, c] : conns_) {
    if (!c->from_listener && c->domid == domid && c->incarnation == incarnation) ScheduleClose(*c);
  }
}

void HvServer::OnChildExit(int pidfd) {
  auto it = children_.find(pidfd);
  if (it == children_.end()) return;
  Child child = std::move(it->second);
  children_.erase(it);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, pidfd, nullptr);
  int wstatus = 0;
  ::waitpid(child.pid, &wstatus, WNOHANG);
  auto rec = hv_->Find(child.domid);
  if (rec && rec->incarnation == child.incarnation && !rec->dying) {
    spdlog::info("domain {} ({}): process {} exited (status {:#x}): destroyed", child.domid.value,
                 rec->name, child.pid, wstatus);
    (void)hv_->DestroyDomain(child.domid);
  }
  DomainGone(child.domid, child.incarnation);
}

void HvServer::OnConnReady(Conn& c, uint32_t events) {
  if ((events & EPOLLOUT) != 0 && c.has_pending) {
    Out out = std::move(c.pending);
    c.has_pending = false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Key(Tag::kConn, c.fd.get());
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    SendReply(c, std::move(out));
    if (c.has_pending || c.closing) return;
  }
  if (c.has_pending && (events & (EPOLLHUP | EPOLLERR)) != 0) {
    ScheduleClose(c);  // gone without reading its reply
    return;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0) return;
  for (size_t i = 0; i < kRequestsPerWakeup && !c.has_pending && !c.closing; ++i) {
    auto msg =
        wire::ReceiveMessage(c.fd.get(), wire::kMaxMessage, kMaxRequestFds, /*nonblocking=*/true);
    if (!msg) {
      if (msg.error().code != EAGAIN)
        ScheduleClose(c);
      else if ((events & (EPOLLHUP | EPOLLERR)) != 0)
        ScheduleClose(c);
      return;
    }
    Dispatch(c, *msg);
  }
}

void HvServer::SendReply(Conn& c, Out out) {
  std::vector<int> fds;
  for (auto& f : out.fds) fds.push_back(f.get());
  Status st = wire::SendMessage(c.fd.get(), out.bytes, fds, /*nonblocking=*/true);
  if (st) return;  // out.fds close here: the peer has its own copies
  if (st.error().code == EAGAIN) {
    c.pending = std::move(out);
    c.has_pending = true;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = Key(Tag::kConn, c.fd.get());
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    return;
  }
  ScheduleClose(c);
}

// ---------------------------------------------------------------------------------------------
// Dispatch.

HvServer::Out HvServer::ErrorOut(const wire::Header& req, int error) {
  wire::Reply r{ReplyHeader(req), error, 0};
  r.h.length = sizeof r;
  return Out{Bytes(r), {}};
}

void HvServer::Dispatch(Conn& c, wire::Received& m) {
  wire::Header h{};
  if (m.bytes.size() < sizeof h) {
    // Too short to echo anything: answer with op 0.
    SendReply(c, ErrorOut(wire::Header{}, EINVAL));
    return;
  }
  h = wire::ReadStruct<wire::Header>(m.bytes);
  if (h.magic != wire::kMagic || h.version != wire::kVersion) {
    SendReply(c, ErrorOut(h, EPROTO));
    return;
  }
  if (m.truncated || h.length != m.bytes.size()) {
    SendReply(c, ErrorOut(h, EINVAL));
    return;
  }
  if (!m.fds.empty()) {
    m.fds.clear();                      // closed here
    SendReply(c, ErrorOut(h, EINVAL));  // requests carry no fds
    return;
  }
  const auto op = static_cast<Op>(h.op);
  if (op != Op::kHello && c.session == 0) {
    SendReply(c, ErrorOut(h, ENOTCONN));
    return;
  }
  Out out;
  switch (op) {
    case Op::kHello:
      out = Hello(c, m);
      break;
    case Op::kGrantMap:
      out = GrantMap(c, m);
      break;
    case Op::kGrantUnmap:
      out = GrantUnmap(c, m);
      break;
    case Op::kGrantCopy:
      out = GrantCopy(c, m);
      break;
    case Op::kEvtchnAllocUnbound:
    case Op::kEvtchnBindInterdomain:
    case Op::kEvtchnSend:
    case Op::kEvtchnClose:
    case Op::kEvtchnStatus:
      out = Evtchn(c, m, op);
      break;
    case Op::kDomainCreate:
      out = DomainCreate(c, m);
      break;
    case Op::kDomainDestroy:
    case Op::kDomainList:
    case Op::kMapForeign:
    case Op::kTakeDead:
      out = DomainOp(c, m, op);
      break;
    default:
      out = ErrorOut(h, ENOSYS);
      break;
  }
  // Finish: the reply's length and fd count.
  XPV_CHECK(out.bytes.size() >= sizeof(wire::Reply));
  const auto length = static_cast<uint32_t>(out.bytes.size());
  const auto nfds = static_cast<uint32_t>(out.fds.size());
  std::memcpy(out.bytes.data() + offsetof(wire::Header, length), &length, sizeof length);
  std::memcpy(out.bytes.data() + offsetof(wire::Reply, nfds), &nfds, sizeof nfds);
  SendReply(c, std::move(out));
}

HvServer::Out HvServer::Hello(Conn& c, const wire::Received& m) {
  const auto h = wire::ReadStruct<wire::Header>(m.bytes);
  if (m.bytes.size() != sizeof(wire::HelloRequest)) return ErrorOut(h, EINVAL);
  const auto req = wire::ReadStruct<wire::HelloRequest>(m.bytes);
  if (c.session != 0) return ErrorOut(h, EISCONN);

  DomId domid;
  uint64_t incarnation = 0;
  switch (static_cast<wire::Role>(req.role)) {
    case wire::Role::kDomain:
      if (c.from_listener) return ErrorOut(h, EPERM);
      domid = c.domid;
      incarnation = c.incarnation;
      break;
    case wire::Role::kDom0:
      if (!c.from_listener) return ErrorOut(h, EPERM);
      domid = kDom0;
      incarnation = hv_->Find(kDom0)->incarnation;
      break;
    case wire::Role::kService: {
      if (!c.from_listener) return ErrorOut(h, EPERM);
      DomainConfig config;
      config.name = std::string(wire::NameField(req.name));
      config.memory_mib = req.memory_mib;
      config.mode = static_cast<MappingMode>(req.mode);
      config.privilege = Privilege::kService;
      auto created = hv_->CreateDomain(config);
      if (!created) return ErrorOut(h, created.error().code);
      hv_->SetPid(created->domid, c.peer_pid);
      domid = created->domid;
      incarnation = created->incarnation;
      // From now on this connection is that domain's.
      c.domid = domid;
      c.incarnation = incarnation;
      spdlog::info("service domain {} ({}) connected, pid {}", domid.value, config.name,
                   c.peer_pid);
      break;
    }
    default:
      return ErrorOut(h, EINVAL);
  }
  auto info = hv_->Attach(domid, incarnation);
  if (!info) {
    if (static_cast<wire::Role>(req.role) == wire::Role::kService) (void)hv_->DestroyDomain(domid);
    return ErrorOut(h, info.error().code);
  }
  c.session = info->id;
  if (domid != kDom0) {
    auto rec = hv_->Find(domid);
    if (rec && rec->pid == 0 && req.pid > 0) hv_->SetPid(domid, req.pid);
  }
  by_session_[info->id] = c.fd.get();

  wire::HelloReply r{};
  r.r.h = ReplyHeader(h);
  r.domid = domid.value;
  r.privilege = static_cast<uint8_t>(info->privilege);
  r.mode = static_cast<uint8_t>(info->mode);
  r.incarnation = info->incarnation;
  r.ram_pages = info->ram_pages;
  r.grant_frames = info->grant_frames;
  r.max_ports = kMaxPorts;
  r.ref_first = info->ref_first;
  r.ref_end = info->ref_end;
  r.gfn_first = info->gfn_first;
  r.gfn_end = info->gfn_end;
  r.store_gfn = info->store_gfn ? info->store_gfn->value : ~uint64_t{0};
  r.store_port = info->store_port ? info->store_port->value : 0;
  Out out;
  out.fds.push_back(DupFd(info->ram_fd));
  out.fds.push_back(DupFd(info->shared_fd));
  if (info->store_recv.valid()) {
    r.flags |= wire::kHelloHasStorePort;
    out.fds.push_back(std::move(info->store_recv));
  }
  if (info->death_recv.valid()) {
    r.flags |= wire::kHelloHasDeathFd;
    out.fds.push_back(std::move(info->death_recv));
  }
  for (const auto& f : out.fds) {
    if (!f.valid()) return ErrorOut(h, EMFILE);
  }
  out.bytes = Bytes(r);
  return out;
}

// Reads a batch request of `Entry`s: exactly count of them, count <= kMaxBatch.
template <typename Entry>
static std::optional<std::vector<Entry>> ReadBatch(const wire::Received& m) {
  if (m.bytes.size() < sizeof(wire::BatchRequest)) return std::nullopt;
  const auto req = wire::ReadStruct<wire::BatchRequest>(m.bytes);
  if (req.count > kMaxBatch) return std::nullopt;
  if (m.bytes.size() != sizeof(wire::BatchRequest) + size_t{req.count} * sizeof(Entry)) {
    return std::nullopt;
  }
  std::vector<Entry> out(req.count);
  if (req.count > 0) {
    std::memcpy(out.data(), m.bytes.data() + sizeof(wire::BatchRequest), req.count * sizeof(Entry));
  }
  return out;
}

static void FillDrops(Hypervisor& hv, SessionId s, wire::DropList& d) {
  auto drops = hv.TakeRamDrops(s, wire::kMaxDrops);
  d.count = static_cast<uint32_t>(drops.size());
  for (size_t i = 0; i < drops.size(); ++i) d.incarnations[i] = drops[i];
}

HvServer::Out HvServer::GrantMap(Conn& c, const wire::Received& m) {
  const auto h = wire::ReadStruct<wire::Header>(m.bytes);
  auto entries = ReadBatch<wire::MapEntry>(m);
  if (!entries) return ErrorOut(h, EINVAL);
  std::vector<MapOp> ops(entries->size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto& e = (*entries)[i];
    ops[i] = MapOp{DomId(e.domid), GrantRef(e.ref), (e.flags & GNTMAP_readonly) != 0};
  }
  std::vector<MapResult> results(ops.size());
  hv_->Map(c.session, ops, results);

  Out out;
  std::vector<wire::MapResultEntry> wire_results(results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    const MapResult& r = results[i];
    wire::MapResultEntry& w = wire_results[i];
    w.status = r.status;
    w.handle = r.handle;
    w.gfn = r.gfn;
    w.incarnation = r.incarnation;
    w.ram_pages = r.ram_pages;
    w.fd_index = -1;
    if (r.ram_fd >= 0) {
      UniqueFd dup = DupFd(r.ram_fd);
      if (dup.valid()) {
        w.fd_index = static_cast<int32_t>(out.fds.size());
        out.fds.push_back(std::move(dup));
      } else {
        // Out of fds (another domain may have used them up): undo this one mapping rather than
        // hand out a frame with no way to reach it, and let the next mapping of that domain send
        // its RAM, or this session could never map that domain's grants again.
        int16_t st;
        hv_->Unmap(c.session, {&r.handle, 1}, {&st, 1});
        hv_->RamNotSent(c.session, r.incarnation);
        w.status = GNTST_no_space;
      }
    }
  }
  wire::BatchReply r{};
  r.r.h = ReplyHeader(h);
  FillDrops(*hv_, c.session, r.drops);
  r.count = static_cast<uint32_t>(wire_results.size());
  wire::MessageBuilder b(r);
  b.AppendArray<wire::MapResultEntry>(wire_results);
  out.bytes = std::move(b.Finish());
  return out;
}

HvServer::Out HvServer::GrantUnmap(Conn& c, const wire::Received& m) {
  const auto h = wire::ReadStruct<wire::Header>(m.bytes);
  auto handles = ReadBatch<uint32_t>(m);
  if (!handles) return ErrorOut(h, EINVAL);
  std::vector<int16_t> status(handles->size());
  hv_->Unmap(c.session, *handles, status);
  wire::BatchReply r{};
  r.r.h = ReplyHeader(h);
  FillDrops(*hv_, c.session, r.drops);
  r.count = static_cast<uint32_t>(status.size());
  wire::MessageBuilder b(r);
  b.AppendArray<int16_t>(status);
  return Out{std::move(b.Finish()), {}};
}

HvServer::Out HvServer::GrantCopy(Conn& c, const wire::Received& m) {
  const auto h = wire::ReadStruct<wire::Header>(m.bytes);
  auto ops = ReadBatch<gnttab_copy_t>(m);
  if (!ops) return ErrorOut(h, EINVAL);
  hv_->Copy(c.session, *ops);
  std::vector<int16_t> status(ops->size());
  for (size_t i = 0; i < ops->size(); ++i) status[i] = (*ops)[i].status;
  wire::BatchReply r{};
  r.r.h = ReplyHeader(h);
  r.count = static_cast<uint32_t>(status.size());
  wire::MessageBuilder b(r);
  b.AppendArray<int16_t>(status);
  return Out{std::move(b.Finish()), {}};
}

HvServer::Out HvServer::Evtchn(Conn& c, const wire::Received& m, Op op) {
  const auto h = wire::ReadStruct<wire::Header>(m.bytes);
  if (m.bytes.size() != sizeof(wire::EvtchnRequest)) return ErrorOut(h, EINVAL);
  const auto req = wire::ReadStruct<wire::EvtchnRequest>(m.bytes);
  wire::EvtchnReply r{};
  r.r.h = ReplyHeader(h);
  Out out;
  switch (op) {
    case Op::kEvtchnAllocUnbound: {
      auto p = hv_->AllocUnbound(c.session, DomId(req.domid));
      if (!p) return ErrorOut(h, p.error().code);
      r.port = p->port.value;
      r.gen = p->gen;
      r.flags = wire::kEvtchnHasRecv;
      out.fds.push_back(std::move(p->recv));
      break;
    }
    case Op::kEvtchnBindInterdomain: {
      auto p = hv_->BindInterdomain(c.session, DomId(req.domid), EvtchnPort(req.port));
      if (!p) return ErrorOut(h, p.error().code);
      r.port = p->port.value;
      r.gen = p->gen;
      r.flags = wire::kEvtchnHasRecv | wire::kEvtchnHasPeer;
      out.fds.push_back(std::move(p->recv));
      out.fds.push_back(DupFd(p->peer_send));
      break;
    }
    case Op::kEvtchnSend: {
      auto p = hv_->Send(c.session, EvtchnPort(req.port));
      if (!p) return ErrorOut(h, p.error().code);
      r.port = req.port;
      r.gen = p->gen;
      if (p->peer_send >= 0) {
        r.flags = wire::kEvtchnHasPeer;
        out.fds.push_back(DupFd(p->peer_send));
      }
      break;
    }
    case Op::kEvtchnClose: {
      auto st = hv_->Close(c.session, EvtchnPort(req.port));
      if (!st) return ErrorOut(h, st.error().code);
      r.port = req.port;
      break;
    }
    case Op::kEvtchnStatus: {
      auto st = hv_->EvtchnStatus(c.session, EvtchnPort(req.port));
      if (!st) return ErrorOut(h, st.error().code);
      r.port = req.port;
      r.status = st->status;
      r.remote_domid = st->remote.value;
      r.remote_port = st->remote_port.value;
      break;
    }
    default:
      return ErrorOut(h, ENOSYS);
  }
  for (const auto& f : out.fds) {
    if (f.valid()) continue;
    // Out of descriptors. The error carries no port number, so a port allocated or bound here
    // would be one its owner cannot name, held until the session ends: close it again (a bound
    // port's peer is left unbound, as before the bind). A send's port stays; the caller has it.
    if (op == Op::kEvtchnAllocUnbound || op == Op::kEvtchnBindInterdomain)
      (void)hv_->Close(c.session, EvtchnPort(r.port));
    return ErrorOut(h, EMFILE);
  }
  out.bytes = Bytes(r);
  return out;
}

HvServer::Out HvServer::DomainCreate(Conn& c, const wire::Received& m) {
  const auto h = wire::ReadStruct<wire::Header>(m.bytes);
  if (auto st = hv_->CheckPrivilege(c.session, Privilege::kControl); !st) {
    return ErrorOut(h, st.error().code);
  }
  if (m.bytes.size() < sizeof(wire::CreateRequest)) return ErrorOut(h, EINVAL);
  const auto req = wire::ReadStruct<wire::CreateRequest>(m.bytes);
  if (req.argc > wire::kMaxArgs || req.argv_bytes > wire::kMaxArgvBytes ||
      m.bytes.size() != sizeof(wire::CreateRequest) + req.argv_bytes) {
    return ErrorOut(h, EINVAL);
  }
  // argv: exactly argc NUL-terminated strings, filling argv_bytes exactly; argv[0] not empty.
  std::vector<std::string> argv;
  {
    const char* p = reinterpret_cast<const char*>(m.bytes.data() + sizeof(wire::CreateRequest));
    const char* end = p + req.argv_bytes;
    while (p < end && argv.size() < req.argc) {
      const char* nul =
          static_cast<const char*>(std::memchr(p, '\0', static_cast<size_t>(end - p)));
      if (nul == nullptr) return ErrorOut(h, EINVAL);
      argv.emplace_back(p, nul);
      p = nul + 1;
    }
    if (argv.size() != req.argc || p != end) return ErrorOut(h, EINVAL);
    if (!argv.empty() && argv[0].empty()) return ErrorOut(h, EINVAL);
  }
  DomainConfig config;
  config.name = std::string(wire::NameField(req.name));
  config.memory_mib = req.memory_mib;
  config.grant_frames = req.grant_frames;
  config.store_domid = DomId(req.store_domid);
  config.mode = static_cast<MappingMode>(req.mode);
  config.privilege = static_cast<Privilege>(req.privilege);
  config.vcpus = req.vcpus == 0 ? 1 : req.vcpus;  // 0: a client from before the field

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return ErrorOut(h, errno);
  UniqueFd ours(sv[0]), theirs(sv[1]);
  if (::fcntl(ours.get(), F_SETFL, O_NONBLOCK) != 0) return ErrorOut(h, errno);

  auto created = hv_->CreateDomain(config);
  if (!created) return ErrorOut(h, created.error().code);
  int pid = 0;
  if (!argv.empty()) {
    auto spawned = SpawnDomainProcess(argv, theirs.get(), created->domid);
    if (!spawned) {
      (void)hv_->DestroyDomain(created->domid);
      spdlog::warn("domain {}: cannot run {}: {}", config.name, argv[0],
                   std::strerror(spawned.error().code));
      return ErrorOut(h, spawned.error().code);
    }
    pid = spawned->pid;
    hv_->SetPid(created->domid, pid);
    const int pidfd = spawned->pidfd.get();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Key(Tag::kChild, pidfd);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pidfd, &ev);
    children_[pidfd] = Child{pid, std::move(spawned->pidfd), created->domid, created->incarnation};
    theirs.reset();
  }
  if (AddConn(std::move(ours), /*from_listener=*/false, created->domid, created->incarnation) ==
      nullptr) {
    (void)hv_->DestroyDomain(created->domid);
    DomainGone(created->domid, created->incarnation);
    return ErrorOut(h, EMFILE);
  }
  spdlog::info("domain {} ({}) created: {} MiB, {} mode{}{}", created->domid.value, config.name,
               config.memory_mib, MappingModeName(config.mode), pid ? ", pid " : "",
               pid ? std::to_string(pid) : std::string());

  wire::CreateReply r{};
  r.r.h = ReplyHeader(h);
  r.domid = created->domid.value;
  r.store_port = created->store_port.value;
  r.store_gfn = created->store_gfn.value;
  r.incarnation = created->incarnation;
  r.pid = pid;
  Out out;
  out.bytes = Bytes(r);
  if (theirs.valid()) out.fds.push_back(std::move(theirs));
  return out;
}

HvServer::Out HvServer::DomainOp(Conn& c, const wire::Received& m, Op op) {
  const auto h = wire::ReadStruct<wire::Header>(m.bytes);
  if (m.bytes.size() != sizeof(wire::DomainRequest)) return ErrorOut(h, EINVAL);
  const auto req = wire::ReadStruct<wire::DomainRequest>(m.bytes);
  const Privilege needed = op == Op::kDomainDestroy ? Privilege::kControl : Privilege::kService;
  if (auto st = hv_->CheckPrivilege(c.session, needed); !st) return ErrorOut(h, st.error().code);
  switch (op) {
    case Op::kDomainDestroy: {
      auto rec = hv_->Find(DomId(req.domid));
      if (auto st = hv_->DestroyDomain(DomId(req.domid)); !st) return ErrorOut(h, st.error().code);
      if (rec) {
        spdlog::info("domain {} ({}) destroyed", req.domid, rec->name);
        DomainGone(rec->domid, rec->incarnation);
      }
      wire::Reply r{ReplyHeader(h), 0, 0};
      return Out{Bytes(r), {}};
    }
    case Op::kDomainList: {
      auto list = hv_->List(DomId(req.domid), wire::kMaxListEntries + 1);
      wire::ListReply r{};
      r.r.h = ReplyHeader(h);
      r.more = list.size() > wire::kMaxListEntries;
      if (r.more) list.pop_back();
      r.count = static_cast<uint32_t>(list.size());
      std::vector<wire::DomainEntry> entries(list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        wire::DomainEntry& e = entries[i];
        e.domid = list[i].domid.value;
        e.dying = list[i].dying;
        e.mode = static_cast<uint8_t>(list[i].mode);
        e.privilege = static_cast<uint8_t>(list[i].privilege);
        e.memory_kib = list[i].memory_kib;
        e.pid = list[i].pid;
        e.vcpus = list[i].vcpus;
        wire::SetNameField(e.name, list[i].name);
      }
      wire::MessageBuilder b(r);
      b.AppendArray<wire::DomainEntry>(entries);
      return Out{std::move(b.Finish()), {}};
    }
    case Op::kMapForeign: {
      auto ram = hv_->MapForeign(c.session, DomId(req.domid), Gfn(req.gfn));
      if (!ram) return ErrorOut(h, ram.error().code);
      wire::ForeignReply r{};
      r.r.h = ReplyHeader(h);
      r.pages = ram->pages;
      Out out;
      out.fds.push_back(DupFd(ram->fd));
      if (!out.fds[0].valid()) return ErrorOut(h, EMFILE);
      out.bytes = Bytes(r);
      return out;
    }
    case Op::kTakeDead: {
      bool more = false;
      auto dead = hv_->TakeDead(c.session, wire::kMaxDeadEntries, &more);
      if (!dead) return ErrorOut(h, dead.error().code);
      wire::DeadReply r{};
      r.r.h = ReplyHeader(h);
      r.count = static_cast<uint32_t>(dead->size());
      r.more = more;
      for (size_t i = 0; i < dead->size(); ++i) r.domids[i] = (*dead)[i].value;
      return Out{Bytes(r), {}};
    }
    default:
      return ErrorOut(h, ENOSYS);
  }
}

// ---------------------------------------------------------------------------------------------

int RunDaemon(const HvOptions& options) {
  InitLogging("xpv-hv", options.log_sink, options.log_level);
  // Every port is an fd in this process: take all the descriptors the system allows.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  ::signal(SIGPIPE, SIG_IGN);
  auto server = HvServer::Create(options);
  if (!server) {
    spdlog::critical("cannot start: {}: {}", server.error().message,
                     std::strerror(server.error().code));
    return 1;
  }
  g_server = server->get();
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    if (g_server != nullptr) g_server->Stop();
  };
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  if (!options.pid_file.empty()) std::ofstream(options.pid_file) << ::getpid() << "\n";
  spdlog::info("listening on {}", (*server)->socket_path());
  int rc = (*server)->Run();
  spdlog::info("stopping");
  g_server = nullptr;
  server->reset();
  if (!options.pid_file.empty()) ::unlink(options.pid_file.c_str());
  return rc;
}

}  // namespace xpv::platform::sim
