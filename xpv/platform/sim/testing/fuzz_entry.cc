#include "xpv/platform/sim/testing/fuzz_entry.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xpv/base/check.h"
#include "xpv/base/testing/fuzz_reader.h"
#include "xpv/platform/sim/daemon.h"
#include "xpv/platform/sim/grant_entry.h"
#include "xpv/platform/sim/hypervisor.h"
#include "xpv/platform/sim/wire.h"

namespace xpv::platform::sim::testing {
namespace {

using Reader = xpv::testing::FuzzReader;

struct FuzzDomain {
  DomId domid;
  uint64_t incarnation = 0;
  SessionId session = 0;
  std::vector<uint32_t> handles;
  std::vector<uint32_t> ports;
};

}  // namespace

void FuzzCoreOnce(const uint8_t* data, size_t size) {
  HypervisorOptions o;
  o.dom0_memory_mib = 1;
  o.dom0_grant_frames = 1;
  auto hv_or = Hypervisor::Create(o);
  XPV_CHECK(hv_or.has_value());
  Hypervisor& hv = **hv_or;
  Reader in(data, size);

  std::vector<FuzzDomain> doms(4);
  auto make = [&](size_t i) {
    FuzzDomain& d = doms[i];
    d = FuzzDomain{};
    if (i == 0) {
      d.domid = kDom0;
      d.incarnation = hv.Find(kDom0)->incarnation;
    } else {
      DomainConfig c;
      c.name = "f" + std::to_string(i);
      c.memory_mib = 1;
      c.grant_frames = 1;
      c.mode = i == 3 ? MappingMode::kCopy : MappingMode::kMap;
      c.privilege = i == 1 ? Privilege::kService : Privilege::kNone;
      auto created = hv.CreateDomain(c);
      XPV_CHECK(created.has_value());
      d.domid = created->domid;
      d.incarnation = created->incarnation;
    }
    auto s = hv.Attach(d.domid, d.incarnation);
    XPV_CHECK(s.has_value());
    d.session = s->id;
  };
  for (size_t i = 0; i < doms.size(); ++i) make(i);
  auto pick = [&]() -> FuzzDomain& { return doms[in.u8() % doms.size()]; };
  auto domid_of = [&](uint8_t b) {
    // Mostly a live domain, sometimes DOMID_SELF or nonsense.
    switch (b % 8) {
      case 6:
        return kDomIdSelf;
      case 7:
        return DomId(in.u32());
      default:
        return doms[b % doms.size()].domid;
    }
  };

  for (int step = 0; step < 2000 && !in.done(); ++step) {
    switch (in.u8() % 14) {
      case 0: {  // a guest publishes an entry
        FuzzDomain& g = pick();
        grant_entry_v1_t* t = hv.GrantTableForTest(g.domid);
        const uint32_t ref = in.u8() % 40;
        PublishGrant(&t[ref], static_cast<uint16_t>(domid_of(in.u8()).value), in.u8() % 300,
                     in.u8() & 1);
        break;
      }
      case 1: {  // a guest scribbles over an entry
        FuzzDomain& g = pick();
        grant_entry_v1_t* t = hv.GrantTableForTest(g.domid);
        const uint32_t ref = in.u8() % 40;
        __atomic_store_n(reinterpret_cast<uint32_t*>(&t[ref]), in.u32(), __ATOMIC_RELAXED);
        __atomic_store_n(&t[ref].frame, in.u32(), __ATOMIC_RELAXED);
        break;
      }
      case 2: {  // map a batch
        FuzzDomain& m = pick();
        MapOp ops[4];
        MapResult rs[4];
        const size_t n = 1 + in.u8() % 4;
        for (size_t i = 0; i < n; ++i) {
          ops[i] = MapOp{domid_of(in.u8()), GrantRef(in.u8() % 48), (in.u8() & 1) != 0};
        }
        hv.Map(m.session, {ops, n}, {rs, n});
        for (size_t i = 0; i < n; ++i) {
          if (rs[i].status == GNTST_okay) m.handles.push_back(rs[i].handle);
        }
        break;
      }
      case 3: {  // unmap
        FuzzDomain& m = pick();
        uint32_t h = in.u32();
        if (!m.handles.empty() && (h & 1)) {
          const size_t i = h % m.handles.size();
          h = m.handles[i];
          m.handles.erase(m.handles.begin() + static_cast<ptrdiff_t>(i));
          int16_t st = 0;
          hv.Unmap(m.session, {&h, 1}, {&st, 1});
          XPV_CHECK(st == GNTST_okay);
        } else {
          int16_t st = 0;
          hv.Unmap(m.session, {&h, 1}, {&st, 1});
          if (st == GNTST_okay) std::erase(m.handles, h);  // it was one of ours after all
        }
        break;
      }
      case 4: {  // copy
        FuzzDomain& m = pick();
        gnttab_copy_t op{};
        op.flags = in.u8();
        op.source.u.gmfn = (op.flags & GNTCOPY_source_gref) ? in.u8() % 48 : in.u32() % 300;
        op.source.domid = static_cast<domid_t>(domid_of(in.u8()).value);
        op.source.offset = static_cast<uint16_t>(in.u32());
        op.dest.u.gmfn = (op.flags & GNTCOPY_dest_gref) ? in.u8() % 48 : in.u32() % 300;
        op.dest.domid = static_cast<domid_t>(domid_of(in.u8()).value);
        op.dest.offset = static_cast<uint16_t>(in.u32() % 4200);
        op.len = static_cast<uint16_t>(in.u32() % 4200);
        hv.Copy(m.session, {&op, 1});
        break;
      }
      case 5: {  // a guest ends access by the protocol
        FuzzDomain& g = pick();
        (void)EndGrant(&hv.GrantTableForTest(g.domid)[in.u8() % 40]);
        break;
      }
      case 6: {
        FuzzDomain& d = pick();
        auto p = hv.AllocUnbound(d.session, domid_of(in.u8()));
        if (p) d.ports.push_back(p->port.value);
        break;
      }
      case 7: {
        FuzzDomain& d = pick();
        FuzzDomain& r = pick();
        uint32_t port =
            r.ports.empty() || (in.u8() & 1) ? in.u32() % 20 : r.ports[in.u8() % r.ports.size()];
        auto p = hv.BindInterdomain(d.session, r.domid, EvtchnPort(port));
        if (p) d.ports.push_back(p->port.value);
        break;
      }
      case 8: {
        FuzzDomain& d = pick();
        (void)hv.Send(d.session,
                      EvtchnPort(d.ports.empty() ? in.u32() : d.ports[in.u8() % d.ports.size()]));
        break;
      }
      case 9: {
        FuzzDomain& d = pick();
        (void)hv.Close(d.session,
                       EvtchnPort(d.ports.empty() ? in.u32() : d.ports[in.u8() % d.ports.size()]));
        break;
      }
      case 10: {
        FuzzDomain& d = pick();
        (void)hv.EvtchnStatus(d.session, EvtchnPort(in.u32() % 40));
        break;
      }
      case 11: {  // a domain's process dies (or a dom0 session ends); it comes back as a new one
        const size_t i = in.u8() % doms.size();
        hv.Detach(doms[i].session);
        make(i);
        break;
      }
      case 12: {  // dom0 destroys one
        const size_t i = 1 + in.u8() % (doms.size() - 1);
        (void)hv.DestroyDomain(doms[i].domid);
        make(i);
        break;
      }
      case 13: {
        bool more = false;
        (void)hv.TakeDead(doms[in.u8() % doms.size()].session, 8, &more);
        (void)hv.MapForeign(doms[in.u8() % doms.size()].session, domid_of(in.u8()),
                            Gfn(in.u32() % 300));
        (void)hv.List(DomId(0), 16);
        break;
      }
    }
  }
  // Everyone goes: every pin must have been released, every domain freed.
  for (size_t i = 1; i < doms.size(); ++i) hv.Detach(doms[i].session);
  hv.Detach(doms[0].session);
  XPV_CHECK(hv.domain_count() == 1);
}

void FuzzWireOnce(const uint8_t* data, size_t size) {
  struct State {
    std::unique_ptr<HvServer> server;
    UniqueFd dom0;
    UniqueFd domain;
    std::string dir;
  };
  static State* st = [] {
    auto* s = new State();
    char dir[] = "/tmp/xpv-hv-fuzz-XXXXXX";
    XPV_CHECK(::mkdtemp(dir) != nullptr);
    s->dir = dir;
    HvOptions o;
    o.socket_path = s->dir + "/hv.sock";
    o.hypervisor.dom0_memory_mib = 16;
    auto server = HvServer::Create(o);
    XPV_CHECK(server.has_value());
    s->server = std::move(*server);
    return s;
  }();
  auto exchange = [&](int fd, std::span<const uint8_t> bytes) -> std::optional<wire::Received> {
    if (!wire::SendMessage(fd, bytes, {}, false)) return std::nullopt;
    for (int i = 0; i < 1000; ++i) {
      st->server->RunOnce(0);
      auto r = wire::ReceiveMessage(fd, wire::kMaxMessage, wire::kMaxReplyFds, true);
      if (r) return std::move(*r);
      if (r.error().code != EAGAIN) return std::nullopt;
    }
    return std::nullopt;
  };
  auto hello = [&](int fd, wire::Role role) {
    wire::HelloRequest h{};
    h.h = {wire::kMagic, wire::kVersion, static_cast<uint16_t>(wire::Op::kHello), sizeof h, 1};
    h.role = static_cast<uint32_t>(role);
    std::vector<uint8_t> b(sizeof h);
    std::memcpy(b.data(), &h, sizeof h);
    return exchange(fd, b).has_value();
  };
  // (Re)connect dom0 and a domain whenever a previous input closed them.
  if (!st->dom0.valid()) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, st->server->socket_path().c_str(), sizeof addr.sun_path - 1);
    st->dom0.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    XPV_CHECK(::connect(st->dom0.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    st->server->RunOnce(0);
    XPV_CHECK(hello(st->dom0.get(), wire::Role::kDom0));
  }
  if (!st->domain.valid()) {
    wire::CreateRequest c{};
    c.h = {wire::kMagic, wire::kVersion, static_cast<uint16_t>(wire::Op::kDomainCreate), sizeof c,
           2};
    c.memory_mib = 1;
    c.grant_frames = 1;
    wire::SetNameField(c.name, "fuzz");
    std::vector<uint8_t> b(sizeof c);
    std::memcpy(b.data(), &c, sizeof c);
    auto r = exchange(st->dom0.get(), b);
    XPV_CHECK(r.has_value() && r->fds.size() == 1);
    st->domain = std::move(r->fds[0]);
    XPV_CHECK(hello(st->domain.get(), wire::Role::kDomain));
  }
  if (size < 2 || size > wire::kMaxMessage) return;
  // Never let the fuzzer run programs: creation requests must not carry an argv.
  if (size - 1 >= sizeof(wire::CreateRequest)) {
    const auto c = wire::ReadStruct<wire::CreateRequest>({data + 1, size - 1});
    if (c.h.op == static_cast<uint16_t>(wire::Op::kDomainCreate) && c.argc != 0) return;
  }
  UniqueFd& fd = (data[0] & 1) ? st->domain : st->dom0;
  auto reply = exchange(fd.get(), {data + 1, size - 1});
  if (!reply) fd.reset();  // closed by the daemon (or a zero-length message): start over next time
}

}  // namespace xpv::platform::sim::testing
