#include "xpv/platform/sim/client.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "xpv/abi/event_channel.h"
#include "xpv/base/check.h"
#include "xpv/base/unix_socket.h"
#include "xpv/platform/sim/grant_entry.h"
#include "xpv/platform/sim/shm.h"
#include "xpv/platform/sim/wire.h"

namespace xpv::platform::sim {
namespace {

using wire::Op;

// ---------------------------------------------------------------------------------------------
// The connection: one request, one reply, in order; serialized by a mutex.

class Channel {
 public:
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}

  // Sends `request` (whose Header carries the op) and returns the reply, checked: same op and
  // seq, exactly `nfds` fds attached. A reply with an error becomes that error. A successful
  // reply whose fds this process had no room for is EMFILE, and is left in `*lost` (when given)
  // for the caller to undo what the daemon did.
  Result<wire::Received> Call(std::vector<uint8_t> request, wire::Received* lost = nullptr) {
    std::lock_guard lock(mu_);
    wire::Header h = wire::ReadStruct<wire::Header>(request);
    h.magic = wire::kMagic;
    h.version = wire::kVersion;
    h.length = static_cast<uint32_t>(request.size());
    h.seq = ++seq_;
    std::memcpy(request.data(), &h, sizeof h);
    XPV_TRY(wire::SendMessage(fd_.get(), request, {}, /*nonblocking=*/false));
    XPV_ASSIGN_OR_RETURN(auto reply,
                         wire::ReceiveMessage(fd_.get(), wire::kMaxMessage, wire::kMaxReplyFds,
                                              /*nonblocking=*/false));
    if ((reply.truncated && !reply.fds_lost) || reply.bytes.size() < sizeof(wire::Reply)) {
      return Err(EPROTO, "malformed reply from xpv-hv");
    }
    const auto r = wire::ReadStruct<wire::Reply>(reply.bytes);
    if (r.h.magic != wire::kMagic || r.h.seq != h.seq || r.h.op != h.op ||
        r.h.length != reply.bytes.size()) {
      return Err(EPROTO, "unexpected reply from xpv-hv");
    }
    if (r.error != 0) return Err(r.error, "refused by xpv-hv");
    if (reply.fds_lost) {
      if (lost) *lost = std::move(reply);
      return Err(EMFILE, "out of descriptors for xpv-hv's reply");
    }
    if (r.nfds != reply.fds.size()) return Err(EPROTO, "unexpected reply from xpv-hv");
    return reply;
  }

 private:
  std::mutex mu_;
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

template <typename T>
std::vector<uint8_t> Request(Op op, T body) {
  body.h = wire::Header{wire::kMagic, wire::kVersion, static_cast<uint16_t>(op), 0, 0};
  std::vector<uint8_t> b(sizeof body);
  std::memcpy(b.data(), &body, sizeof body);
  return b;
}

template <typename T>
Result<T> ReplyAs(const wire::Received& r) {
  if (r.bytes.size() < sizeof(T)) return Err(EPROTO, "short reply from xpv-hv");
  return wire::ReadStruct<T>(r.bytes);
}

// ---------------------------------------------------------------------------------------------
// Guest memory: the domain's RAM memfd, mapped whole; a first-fit page allocator over the frames
// the hypervisor gave this session.

class SimMemory final : public GuestMemory {
 public:
  SimMemory(SharedMemory ram, uint64_t first, uint64_t end)
      : ram_(std::move(ram)), first_(first), used_(end - first, false) {}

  Result<Gfn> AllocPages(size_t count) override {
    if (count == 0) return Err(EINVAL, "zero pages");
    std::lock_guard lock(mu_);
    size_t run = 0;
    for (size_t i = 0; i < used_.size(); ++i) {
      run = used_[i] ? 0 : run + 1;
      if (run == count) {
        const size_t start = i + 1 - count;
        for (size_t j = start; j <= i; ++j) used_[j] = true;
        return Gfn(first_ + start);
      }
    }
    return Err(ENOMEM, "guest RAM exhausted");
  }

  void FreePages(Gfn first, size_t count) override {
    std::lock_guard lock(mu_);
    XPV_CHECK(first.value >= first_ && first.value - first_ + count <= used_.size());
    for (size_t j = first.value - first_; j < first.value - first_ + count; ++j) {
      XPV_CHECK(used_[j]);  // freeing what was not allocated is a bug of the caller
      used_[j] = false;
    }
  }

  uint8_t* PageAddress(Gfn gfn) override {
    if (gfn.value >= page_count()) return nullptr;
    return ram_.data() + gfn.value * kPageSize;
  }
  size_t page_count() const override { return ram_.size() / kPageSize; }

 private:
  SharedMemory ram_;
  uint64_t first_;
  std::mutex mu_;
  std::vector<bool> used_;
};

// ---------------------------------------------------------------------------------------------
// Grant access: entries written straight into the shared grant table, in grant_table.h's order.

class SimGrants final : public GrantTable {
 public:
  SimGrants(grant_entry_v1_t* table, uint32_t first, uint32_t end, uint64_t ram_pages)
      : table_(table), first_(first), mine_(end - first, false), ram_pages_(ram_pages) {
    for (uint32_t r = end; r > first; --r) free_.push_back(r - 1);
  }

  Result<GrantRef> GrantAccess(DomId peer, Gfn gfn, Access access) override {
    if (peer.value >= kDomIdFirstReserved) return Err(EINVAL, "bad domid");
    if (gfn.value >= ram_pages_) return Err(EINVAL, "frame is not this domain's");
    std::lock_guard lock(mu_);
    if (free_.empty()) return Err(ENOSPC, "grant table full");
    const uint32_t ref = free_.back();
    free_.pop_back();
    mine_[ref - first_] = true;
    PublishGrant(&table_[ref], static_cast<uint16_t>(peer.value), static_cast<uint32_t>(gfn.value),
                 access == Access::kReadOnly);
    return GrantRef(ref);
  }

  Status EndAccess(GrantRef ref) override {
    std::lock_guard lock(mu_);
    if (ref.value < first_ || ref.value - first_ >= mine_.size() || !mine_[ref.value - first_]) {
      return Err(EINVAL, "not a grant of ours");
    }
    switch (EndGrant(&table_[ref.value])) {
      case EndGrantResult::kInUse:
        return Err(EBUSY, "still mapped by the peer");
      case EndGrantResult::kUnstable:
        return Err(EAGAIN, "grant entry changing");
      case EndGrantResult::kEnded:
        break;
    }
    mine_[ref.value - first_] = false;
    free_.push_back(ref.value);
    return Ok();
  }

 private:
  grant_entry_v1_t* table_;
  uint32_t first_;
  std::mutex mu_;
  std::vector<bool> mine_;
  std::vector<uint32_t> free_;
  uint64_t ram_pages_;
};

// ---------------------------------------------------------------------------------------------
// Grant mapping and copy.

// What mappings share with the mapper (and keep alive if they outlive it).
struct MapperState {
  std::shared_ptr<Channel> channel;
  MappingMode mode;
  std::mutex mu;
  struct Ram {
    UniqueFd fd;
    uint64_t pages = 0;
  };
  std::unordered_map<uint64_t, Ram> rams;  // granting domains' RAM, by incarnation

  void Drop(const wire::DropList& drops) {
    std::lock_guard lock(mu);
    for (uint32_t i = 0; i < std::min<uint32_t>(drops.count, wire::kMaxDrops); ++i) {
      rams.erase(drops.incarnations[i]);
    }
  }

  // Unmaps handles, kMaxBatch at a time.
  void Unmap(std::span<const uint32_t> handles) {
    for (size_t at = 0; at < handles.size(); at += kMaxBatch) {
      const size_t n = std::min<size_t>(kMaxBatch, handles.size() - at);
      wire::BatchRequest req{};
      req.count = static_cast<uint32_t>(n);
      std::vector<uint8_t> bytes = Request(Op::kGrantUnmap, req);
      const auto* p = reinterpret_cast<const uint8_t*>(handles.data() + at);
      bytes.insert(bytes.end(), p, p + n * sizeof(uint32_t));
      auto reply = channel->Call(std::move(bytes));
      if (reply) {
        if (auto r = ReplyAs<wire::BatchReply>(*reply)) Drop(r->drops);
      }
    }
  }
};

class SimMapping final : public GrantMapping {
 public:
  SimMapping(std::shared_ptr<MapperState> state, size_t n) : state_(std::move(state)) {
    status_.assign(n, GrantStatus::kGeneralError);
    pages_.assign(n, nullptr);
  }
  ~SimMapping() override {
    // Our mappings go first, then the hypervisor's pins: an honest backend never touches a page
    // after the frontend could have reused it.
    if (region_ != nullptr) ::munmap(region_, region_size_);
    state_->Unmap(handles_);
  }

  std::shared_ptr<MapperState> state_;
  void* region_ = nullptr;
  size_t region_size_ = 0;
  std::vector<uint32_t> handles_;
  using GrantMapping::pages_;
  using GrantMapping::status_;
};

class SimMapper final : public GrantMapper {
 public:
  explicit SimMapper(std::shared_ptr<MapperState> state) : state_(std::move(state)) {}

  Result<std::unique_ptr<GrantMapping>> Map(std::span<const MapRequest> requests) override {
    if (state_->mode != MappingMode::kMap) {
      return Err(EOPNOTSUPP, "copy mode: this domain may not map grants; use Copy");
    }
    auto mapping = std::make_unique<SimMapping>(state_, requests.size());
    if (requests.empty()) return std::unique_ptr<GrantMapping>(std::move(mapping));
    // One reserved range for the whole batch; each granted frame is mapped over its slot.
    const size_t size = requests.size() * kPageSize;
    void* region =
        ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return Err(errno, "reserve mapping range");
    mapping->region_ = region;
    mapping->region_size_ = size;

    for (size_t at = 0; at < requests.size(); at += kMaxBatch) {
      const size_t n = std::min<size_t>(kMaxBatch, requests.size() - at);
      wire::BatchRequest req{};
      req.h.op = static_cast<uint16_t>(Op::kGrantMap);
      req.count = static_cast<uint32_t>(n);
      wire::MessageBuilder b(req);
      for (size_t i = 0; i < n; ++i) {
        const MapRequest& r = requests[at + i];
        wire::MapEntry e{r.domid.value, r.ref.value,
                         r.access == Access::kReadOnly ? uint32_t{GNTMAP_readonly} : 0u, 0};
        b.Append(&e, sizeof e);
      }
      std::vector<uint8_t> bytes = b.Finish();
      XPV_ASSIGN_OR_RETURN(auto reply, state_->channel->Call(std::move(bytes)));
      XPV_ASSIGN_OR_RETURN(auto head, ReplyAs<wire::BatchReply>(reply));
      if (head.count != n ||
          reply.bytes.size() != sizeof(wire::BatchReply) + n * sizeof(wire::MapResultEntry)) {
        return Err(EPROTO, "malformed map reply");
      }
      state_->Drop(head.drops);
      std::lock_guard lock(state_->mu);
      for (size_t i = 0; i < n; ++i) {
        const auto e = wire::ReadStruct<wire::MapResultEntry>(
            reply.bytes, sizeof(wire::BatchReply) + i * sizeof(wire::MapResultEntry));
        const size_t slot = at + i;
        mapping->status_[slot] = static_cast<GrantStatus>(e.status);
        if (e.status != GNTST_okay) continue;
        mapping->handles_.push_back(e.handle);
        if (e.fd_index >= 0 && static_cast<size_t>(e.fd_index) < reply.fds.size()) {
          state_->rams[e.incarnation] = {std::move(reply.fds[e.fd_index]), e.ram_pages};
        }
        auto ram = state_->rams.find(e.incarnation);
        void* want = static_cast<uint8_t*>(region) + slot * kPageSize;
        const int prot = PROT_READ | (requests[slot].access == Access::kReadWrite ? PROT_WRITE : 0);
        void* p = MAP_FAILED;
        if (ram != state_->rams.end() && ram->second.fd.valid() && e.gfn < ram->second.pages) {
          // SAFETY: exactly the granted frame of the granter's RAM, at our reserved slot.
          p = ::mmap(want, kPageSize, prot, MAP_SHARED | MAP_FIXED, ram->second.fd.get(),
                     static_cast<off_t>(e.gfn * kPageSize));
        }
        if (p == MAP_FAILED) {
          mapping->status_[slot] =
              GrantStatus::kGeneralError;  // the handle is unmapped with the rest
          continue;
        }
        mapping->pages_[slot] = static_cast<uint8_t*>(p);
      }
    }
    return std::unique_ptr<GrantMapping>(std::move(mapping));
  }

  Status Copy(std::span<CopyOp> ops) override {
    for (size_t at = 0; at < ops.size(); at += kMaxBatch) {
      const size_t n = std::min<size_t>(kMaxBatch, ops.size() - at);
      wire::BatchRequest req{};
      req.h.op = static_cast<uint16_t>(Op::kGrantCopy);
      req.count = static_cast<uint32_t>(n);
      wire::MessageBuilder b(req);
      for (size_t i = 0; i < n; ++i) {
        const CopyOp& op = ops[at + i];
        gnttab_copy_t c{};
        auto side = [&](const CopyPtr& p, gnttab_copy_t::gnttab_copy_ptr& w, uint16_t gref_flag) {
          if (p.kind == CopyPtr::Kind::kGrant) {
            c.flags |= gref_flag;
            w.u.ref = p.ref.value;
            // domid_t is 16 bits: anything wider cannot name a domain.
            w.domid = p.domid.value < kDomIdFirstReserved ? static_cast<domid_t>(p.domid.value)
                                                          : static_cast<domid_t>(DOMID_INVALID);
          } else {
            w.u.gmfn = p.gfn.value;
            w.domid = DOMID_SELF;
          }
          w.offset = p.offset;
        };
        side(op.source, c.source, GNTCOPY_source_gref);
        side(op.dest, c.dest, GNTCOPY_dest_gref);
        c.len = op.len;
        b.Append(&c, sizeof c);
      }
      std::vector<uint8_t> bytes = b.Finish();
      XPV_ASSIGN_OR_RETURN(auto reply, state_->channel->Call(std::move(bytes)));
      XPV_ASSIGN_OR_RETURN(auto head, ReplyAs<wire::BatchReply>(reply));
      if (head.count != n || reply.bytes.size() != sizeof(wire::BatchReply) + n * sizeof(int16_t)) {
        return Err(EPROTO, "malformed copy reply");
      }
      for (size_t i = 0; i < n; ++i) {
        ops[at + i].status = static_cast<GrantStatus>(
            wire::ReadStruct<int16_t>(reply.bytes, sizeof(wire::BatchReply) + i * sizeof(int16_t)));
      }
    }
    return Ok();
  }

 private:
  std::shared_ptr<MapperState> state_;
};

// ---------------------------------------------------------------------------------------------
// Event channels. Each port's receive end sits in one epoll set (fd()), with EPOLLONESHOT: a port
// reported by NextPending is disarmed, i.e. masked, until Unmask re-arms it, which reports it
// again at once if a notification came meanwhile (as Linux's /dev/xen/evtchn behaves).

class SimEvents final : public EventChannels {
 public:
  SimEvents(std::shared_ptr<Channel> channel, const uint32_t* gens, UniqueFd epoll)
      : channel_(std::move(channel)), gens_(gens), epoll_(std::move(epoll)) {}

  Status AddPort(uint32_t port, UniqueFd recv, UniqueFd peer, uint32_t gen) {
    if (port == 0 || port >= kMaxPorts || !recv.valid()) return Err(EPROTO, "bad port from xpv-hv");
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u32 = port;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, recv.get(), &ev) != 0)
      return Err(errno, "epoll_ctl");
    Port& p = ports_[port];
    p.recv = std::move(recv);
    p.peer = std::move(peer);
    p.gen = gen;
    p.masked = false;
    return Ok();
  }

  Result<EvtchnPort> AllocUnbound(DomId remote) override {
    wire::EvtchnRequest req{};
    req.domid = remote.value;
    return Bind(Request(Op::kEvtchnAllocUnbound, req));
  }

  Result<EvtchnPort> BindInterdomain(DomId remote, EvtchnPort remote_port) override {
    wire::EvtchnRequest req{};
    req.domid = remote.value;
    req.port = remote_port.value;
    return Bind(Request(Op::kEvtchnBindInterdomain, req));
  }

  Status Notify(EvtchnPort port) override {
    std::lock_guard lock(mu_);
    auto it = ports_.find(port.value);
    if (it == ports_.end()) return Err(EINVAL, "bad port");
    Port& p = it->second;
    // SAFETY: an aligned counter in the generation page; the hypervisor writes it.
    const uint32_t gen = __atomic_load_n(&gens_[port.value], __ATOMIC_ACQUIRE);
    if (p.peer.valid() && p.gen == gen) {
      // The fast path: one datagram to the peer's port. EAGAIN means it is pending already; any
      // other error means the peer is going away, and Xen drops those notifications too.
      (void)::send(p.peer.get(), "n", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
      return Ok();
    }
    // The peer changed (or we never had it): EVTCHNOP_send through the hypervisor, which also
    // tells us where to send next time.
    wire::EvtchnRequest req{};
    req.port = port.value;
    XPV_ASSIGN_OR_RETURN(auto reply, channel_->Call(Request(Op::kEvtchnSend, req)));
    XPV_ASSIGN_OR_RETURN(auto r, ReplyAs<wire::EvtchnReply>(reply));
    p.gen = r.gen;
    p.peer.reset();
    if ((r.flags & wire::kEvtchnHasPeer) != 0 && reply.fds.size() == 1)
      p.peer = std::move(reply.fds[0]);
    return Ok();
  }

  Status Close(EvtchnPort port) override {
    std::lock_guard lock(mu_);
    auto it = ports_.find(port.value);
    if (it == ports_.end()) return Err(EINVAL, "bad port");
    wire::EvtchnRequest req{};
    req.port = port.value;
    XPV_TRY(channel_->Call(Request(Op::kEvtchnClose, req)));
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.recv.get(), nullptr);
    ports_.erase(it);
    return Ok();
  }

  Status Unmask(EvtchnPort port) override {
    std::lock_guard lock(mu_);
    auto it = ports_.find(port.value);
    if (it == ports_.end()) return Err(EINVAL, "bad port");
    if (!it->second.masked) return Ok();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u32 = port.value;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, it->second.recv.get(), &ev) != 0) {
      return Err(errno, "epoll_ctl");
    }
    it->second.masked = false;
    return Ok();
  }

  int fd() const override { return epoll_.get(); }

  std::optional<EvtchnPort> NextPending() override {
    std::lock_guard lock(mu_);
    for (int attempt = 0; attempt < 8; ++attempt) {
      epoll_event ev{};
      if (::epoll_wait(epoll_.get(), &ev, 1, 0) != 1) return std::nullopt;
      auto it = ports_.find(ev.data.u32);
      if (it == ports_.end()) continue;  // closed meanwhile
      // Consume the notifications, all queued ones in one call (the queue holds a few; a flooding
      // peer just keeps the port pending).
      char buf[16][8];
      iovec iov[16];
      mmsghdr msgs[16]{};
      for (int i = 0; i < 16; ++i) {
        iov[i] = {buf[i], sizeof buf[i]};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      (void)::recvmmsg(it->second.recv.get(), msgs, 16, MSG_DONTWAIT, nullptr);
      it->second.masked = true;
      return EvtchnPort(ev.data.u32);
    }
    return std::nullopt;
  }

  Result<SimPortStatus> PortStatus(EvtchnPort port) {
    wire::EvtchnRequest req{};
    req.port = port.value;
    XPV_ASSIGN_OR_RETURN(auto reply, channel_->Call(Request(Op::kEvtchnStatus, req)));
    XPV_ASSIGN_OR_RETURN(auto r, ReplyAs<wire::EvtchnReply>(reply));
    return SimPortStatus{r.status, DomId(r.remote_domid), EvtchnPort(r.remote_port)};
  }

 private:
  struct Port {
    UniqueFd recv;
    UniqueFd peer;  // the peer port's send end, valid while gen matches the generation page
    uint32_t gen = 0;
    bool masked = false;
  };

  Result<EvtchnPort> Bind(std::vector<uint8_t> request) {
    std::lock_guard lock(mu_);
    wire::Received lost;
    auto called = channel_->Call(std::move(request), &lost);
    if (!called && called.error().code == EMFILE && !lost.bytes.empty()) {
      // The daemon made the port but we could not take its descriptors: close it there, or it
      // stays bound in our name until the session ends.
      if (auto r = ReplyAs<wire::EvtchnReply>(lost)) {
        wire::EvtchnRequest close{};
        close.port = r->port;
        (void)channel_->Call(Request(Op::kEvtchnClose, close));
      }
    }
    XPV_ASSIGN_OR_RETURN(auto reply, std::move(called));
    XPV_ASSIGN_OR_RETURN(auto r, ReplyAs<wire::EvtchnReply>(reply));
    if ((r.flags & wire::kEvtchnHasRecv) == 0 || reply.fds.empty())
      return Err(EPROTO, "no port fd");
    UniqueFd peer;
    if ((r.flags & wire::kEvtchnHasPeer) != 0 && reply.fds.size() == 2)
      peer = std::move(reply.fds[1]);
    XPV_TRY(AddPort(r.port, std::move(reply.fds[0]), std::move(peer), r.gen));
    return EvtchnPort(r.port);
  }

  std::shared_ptr<Channel> channel_;
  const uint32_t* gens_;
  UniqueFd epoll_;
  std::mutex mu_;
  std::unordered_map<uint32_t, Port> ports_;
};

// ---------------------------------------------------------------------------------------------
// Domain control.

class SimForeignPage final : public ForeignPage {
 public:
  explicit SimForeignPage(uint8_t* p) : p_(p) {}
  ~SimForeignPage() override { ::munmap(p_, kPageSize); }
  uint8_t* data() override { return p_; }

 private:
  uint8_t* p_;
};

class SimControl final : public SimDomainControl {
 public:
  SimControl(std::shared_ptr<Channel> channel, UniqueFd death)
      : channel_(std::move(channel)), death_(std::move(death)) {}

  Result<std::vector<DomainInfo>> List() override {
    std::vector<DomainInfo> out;
    uint32_t start = 0;
    for (int page = 0; page < 1024; ++page) {
      wire::DomainRequest req{};
      req.domid = start;
      XPV_ASSIGN_OR_RETURN(auto reply, channel_->Call(Request(Op::kDomainList, req)));
      XPV_ASSIGN_OR_RETURN(auto r, ReplyAs<wire::ListReply>(reply));
      if (r.count > wire::kMaxListEntries ||
          reply.bytes.size() != sizeof(wire::ListReply) + r.count * sizeof(wire::DomainEntry)) {
        return Err(EPROTO, "malformed list reply");
      }
      for (uint32_t i = 0; i < r.count; ++i) {
        auto e = wire::ReadStruct<wire::DomainEntry>(
            reply.bytes, sizeof(wire::ListReply) + i * sizeof(wire::DomainEntry));
        DomainInfo info;
        info.domid = DomId(e.domid);
        info.name = std::string(wire::NameField(e.name));
        info.memory_kib = e.memory_kib;
        info.dying = e.dying != 0;
        info.pid = e.pid;
        info.vcpus = e.vcpus == 0 ? 1 : e.vcpus;  // 0: a daemon from before the field
        out.push_back(std::move(info));
        start = e.domid + 1;
      }
      if (!r.more || r.count == 0) break;
    }
    return out;
  }

  Status Destroy(DomId domid) override {
    wire::DomainRequest req{};
    req.domid = domid.value;
    XPV_TRY(channel_->Call(Request(Op::kDomainDestroy, req)));
    return Ok();
  }

  Result<std::unique_ptr<ForeignPage>> MapForeign(DomId domid, Gfn gfn) override {
    wire::DomainRequest req{};
    req.domid = domid.value;
    req.gfn = gfn.value;
    XPV_ASSIGN_OR_RETURN(auto reply, channel_->Call(Request(Op::kMapForeign, req)));
    XPV_ASSIGN_OR_RETURN(auto r, ReplyAs<wire::ForeignReply>(reply));
    if (reply.fds.size() != 1 || gfn.value >= r.pages)
      return Err(EPROTO, "malformed foreign reply");
    void* p = ::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, reply.fds[0].get(),
                     static_cast<off_t>(gfn.value * kPageSize));
    if (p == MAP_FAILED) return Err(errno, "mmap foreign page");
    return std::unique_ptr<ForeignPage>(new SimForeignPage(static_cast<uint8_t*>(p)));
  }

  int death_fd() const override { return death_.get(); }

  std::vector<DomId> TakeDead() override {
    std::vector<DomId> out;
    char buf[64];
    while (death_.valid() && ::recv(death_.get(), buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    for (int page = 0; page < 256; ++page) {
      wire::DomainRequest req{};
      auto reply = channel_->Call(Request(Op::kTakeDead, req));
      if (!reply) break;
      auto r = ReplyAs<wire::DeadReply>(*reply);
      if (!r) break;
      for (uint32_t i = 0; i < std::min(r->count, wire::kMaxDeadEntries); ++i)
        out.push_back(DomId(r->domids[i]));
      if (!r->more) break;
    }
    return out;
  }

  Result<SimDomain> CreateDomain(const SimDomainSpec& spec) override {
    wire::CreateRequest req{};
    req.memory_mib = spec.memory_mib;
    req.grant_frames = spec.grant_frames;
    req.store_domid = spec.store_domid.value;
    req.mode = static_cast<uint8_t>(spec.mode);
    req.privilege = static_cast<uint8_t>(spec.privilege);
    req.vcpus = spec.vcpus;
    if (spec.name.size() >= wire::kNameSize || spec.argv.size() > wire::kMaxArgs) {
      return Err(EINVAL, "name or argv too long");
    }
    wire::SetNameField(req.name, spec.name);
    std::vector<uint8_t> blob;
    for (const auto& a : spec.argv) {
      blob.insert(blob.end(), a.begin(), a.end());
      blob.push_back(0);
    }
    if (blob.size() > wire::kMaxArgvBytes) return Err(E2BIG, "argv too long");
    req.argc = static_cast<uint32_t>(spec.argv.size());
    req.argv_bytes = static_cast<uint32_t>(blob.size());
    std::vector<uint8_t> bytes = Request(Op::kDomainCreate, req);
    bytes.insert(bytes.end(), blob.begin(), blob.end());
    XPV_ASSIGN_OR_RETURN(auto reply, channel_->Call(std::move(bytes)));
    XPV_ASSIGN_OR_RETURN(auto r, ReplyAs<wire::CreateReply>(reply));
    SimDomain out;
    out.domid = DomId(r.domid);
    out.incarnation = r.incarnation;
    out.store_gfn = Gfn(r.store_gfn);
    out.store_port = EvtchnPort(r.store_port);
    out.pid = r.pid;
    if (spec.argv.empty()) {
      if (reply.fds.size() != 1) return Err(EPROTO, "no domain connection in reply");
      out.connection = std::move(reply.fds[0]);
    }
    return out;
  }

 private:
  std::shared_ptr<Channel> channel_;
  UniqueFd death_;
};

// ---------------------------------------------------------------------------------------------

class SimPlatformImpl final : public SimPlatform {
 public:
  DomId self() const override { return domid_; }
  GuestMemory& memory() override { return *memory_; }
  GrantTable& grants() override { return *grants_; }
  GrantMapper& mapper() override { return *mapper_; }
  EventChannels& events() override { return *events_; }
  DomainControl* control() override { return control_.get(); }
  SimDomainControl* sim_control() override { return control_.get(); }
  MappingMode mode() const override { return mode_; }
  Privilege privilege() const override { return privilege_; }
  std::optional<Gfn> store_gfn() const override { return store_gfn_; }
  std::optional<EvtchnPort> store_port() const override { return store_port_; }
  Result<SimPortStatus> PortStatus(EvtchnPort port) override { return events_->PortStatus(port); }

  DomId domid_;
  MappingMode mode_ = MappingMode::kCopy;
  Privilege privilege_ = Privilege::kNone;
  std::optional<Gfn> store_gfn_;
  std::optional<EvtchnPort> store_port_;
  SharedMemory shared_;
  std::unique_ptr<SimMemory> memory_;
  std::unique_ptr<SimGrants> grants_;
  std::unique_ptr<SimMapper> mapper_;
  std::unique_ptr<SimEvents> events_;
  std::unique_ptr<SimControl> control_;
};

Result<std::unique_ptr<SimPlatform>> Hello(UniqueFd fd, const wire::HelloRequest& hello) {
  auto channel = std::make_shared<Channel>(std::move(fd));
  XPV_ASSIGN_OR_RETURN(auto reply, channel->Call(Request(Op::kHello, hello)));
  XPV_ASSIGN_OR_RETURN(auto r, ReplyAs<wire::HelloReply>(reply));
  const bool has_store = (r.flags & wire::kHelloHasStorePort) != 0;
  const bool has_death = (r.flags & wire::kHelloHasDeathFd) != 0;
  if (reply.fds.size() != 2u + has_store + has_death || r.grant_frames == 0 ||
      r.grant_frames > kMaxGrantFrames || r.ram_pages == 0 || r.ram_pages > kMaxMemoryMib * 256 ||
      r.ref_first > r.ref_end || r.ref_end > r.grant_frames * abi::kGrantEntriesPerFrame ||
      r.gfn_first > r.gfn_end || r.gfn_end > r.ram_pages) {
    return Err(EPROTO, "malformed hello reply");
  }
  auto p = std::make_unique<SimPlatformImpl>();
  p->domid_ = DomId(r.domid);
  p->mode_ = static_cast<MappingMode>(r.mode);
  p->privilege_ = static_cast<Privilege>(r.privilege);
  UniqueFd ram_fd = std::move(reply.fds[0]);
  UniqueFd own_ram(::fcntl(ram_fd.get(), F_DUPFD_CLOEXEC, 0));
  XPV_ASSIGN_OR_RETURN(auto ram, SharedMemory::Map(std::move(ram_fd), r.ram_pages * kPageSize));
  XPV_ASSIGN_OR_RETURN(p->shared_,
                       SharedMemory::Map(std::move(reply.fds[1]), SharedSize(r.grant_frames)));
  p->memory_ = std::make_unique<SimMemory>(std::move(ram), r.gfn_first, r.gfn_end);
  // SAFETY: the shared memfd starts with the grant table (config.h); page-aligned mapping.
  auto* table = reinterpret_cast<grant_entry_v1_t*>(p->shared_.data());
  p->grants_ = std::make_unique<SimGrants>(table, r.ref_first, r.ref_end, r.ram_pages);

  auto state = std::make_shared<MapperState>();
  state->channel = channel;
  state->mode = p->mode_;
  state->rams[r.incarnation] = {std::move(own_ram), r.ram_pages};  // mapping our own grants
  p->mapper_ = std::make_unique<SimMapper>(state);

  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return Err(errno, "epoll_create1");
  const auto* gens =
      reinterpret_cast<const uint32_t*>(p->shared_.data() + PortGenOffset(r.grant_frames));
  p->events_ = std::make_unique<SimEvents>(channel, gens, std::move(epoll));
  size_t next = 2;
  if (has_store) {
    p->store_gfn_ = Gfn(r.store_gfn);
    p->store_port_ = EvtchnPort(r.store_port);
    XPV_TRY(p->events_->AddPort(r.store_port, std::move(reply.fds[next++]), UniqueFd(),
                                ~uint32_t{0} /* no peer yet: first Notify asks */));
  }
  if (p->privilege_ != Privilege::kNone) {
    UniqueFd death;
    if (has_death) death = std::move(reply.fds[next++]);
    p->control_ = std::make_unique<SimControl>(channel, std::move(death));
  }
  return std::unique_ptr<SimPlatform>(std::move(p));
}

wire::HelloRequest MakeHello(wire::Role role) {
  wire::HelloRequest h{};
  h.role = static_cast<uint32_t>(role);
  h.pid = ::getpid();
  return h;
}

Result<UniqueFd> ConnectSocket(const std::string& path) {
  return ConnectUnix(path, SOCK_SEQPACKET);
}

}  // namespace

Result<std::unique_ptr<SimPlatform>> ConnectSimDomain(UniqueFd connection) {
  if (!connection.valid()) return Err(EBADF, "no connection");
  return Hello(std::move(connection), MakeHello(wire::Role::kDomain));
}

Result<std::unique_ptr<SimPlatform>> ConnectSimDom0(const std::string& socket_path) {
  XPV_ASSIGN_OR_RETURN(auto fd,
                       ConnectSocket(socket_path.empty() ? DefaultSocketPath() : socket_path));
  return Hello(std::move(fd), MakeHello(wire::Role::kDom0));
}

Result<std::unique_ptr<SimPlatform>> ConnectSimService(const std::string& socket_path,
                                                       const SimServiceSpec& spec) {
  if (spec.name.empty() || spec.name.size() >= wire::kNameSize) return Err(EINVAL, "bad name");
  XPV_ASSIGN_OR_RETURN(auto fd,
                       ConnectSocket(socket_path.empty() ? DefaultSocketPath() : socket_path));
  wire::HelloRequest h = MakeHello(wire::Role::kService);
  h.memory_mib = spec.memory_mib;
  h.mode = static_cast<uint8_t>(spec.mode);
  wire::SetNameField(h.name, spec.name);
  return Hello(std::move(fd), h);
}

Result<std::unique_ptr<SimPlatform>> ConnectSim() {
  const char* env = std::getenv(kEnvHvFd);
  if (env == nullptr || *env == '\0') return ConnectSimDom0();
  int fd = -1;
  auto [ptr, ec] = std::from_chars(env, env + std::strlen(env), fd);
  if (ec != std::errc() || *ptr != '\0' || fd < 0) return Err(EINVAL, "bad XPV_HV_FD");
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return Err(errno, "XPV_HV_FD is not open");
  ::unsetenv(kEnvHvFd);
  return ConnectSimDomain(UniqueFd(fd));
}

}  // namespace xpv::platform::sim
