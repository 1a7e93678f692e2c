// Event channels: Xen's interdomain state machine (common/event_channel.c: evtchn_alloc_unbound,
// evtchn_bind_interdomain, evtchn_send, evtchn_close, evtchn_status) with its errno results.
//
// Delivery: each port has a SOCK_SEQPACKET socketpair. Its owner polls the receive end; a
// datagram waiting there is "pending". The hypervisor keeps the send end and hands a copy to the
// bound peer, which then notifies with one non-blocking send(), no round trip through here. A
// connected SEQPACKET socket cannot be re-connected elsewhere, send(MSG_DONTWAIT) never blocks
// whatever the receiver does with its end, and the queue is bounded by the sender's buffer; an
// eventfd, shared between two untrusted processes, offers none of these (docs/xpv-hv.md).
#include <sys/socket.h>

#include "xpv/base/check.h"
#include "xpv/platform/sim/hypervisor.h"
#include "xpv/platform/sim/hypervisor_internal.h"

namespace xpv::platform::sim {

Result<Hypervisor::NewPort> Hypervisor::AllocPort(Domain& d, SessionId owner) {
  // get_free_port: the lowest free port; port 0 is reserved.
  uint32_t port = 0;
  for (uint32_t i = 1; i < d.ports.size(); ++i) {
    if (d.ports[i].state == Port::State::kFree) {
      port = i;
      break;
    }
  }
  if (port == 0) {
    if (d.ports.size() >= kMaxPorts) return Err(ENOSPC, "no free event channel port");
    port = static_cast<uint32_t>(d.ports.size());
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
    return Err(errno == EMFILE || errno == ENFILE ? ENOSPC : errno, "event channel socketpair");
  }
  UniqueFd recv(sv[0]), send(sv[1]);
  // One-way: the receiver cannot write back, and the send queue stays a few datagrams deep
  // (EAGAIN then just means "already pending").
  ::shutdown(send.get(), SHUT_RD);
  int sndbuf = 1;
  ::setsockopt(send.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (port == d.ports.size()) d.ports.emplace_back();
  Port& p = d.ports[port];
  p = Port{};
  p.owner = owner;
  p.send = std::move(send);
  return NewPort{port, std::move(recv)};
}

void Hypervisor::BumpGen(Domain& d, uint32_t port) {
  XPV_CHECK(port < kMaxPorts);
  d.gens[port] += 1;
  // SAFETY: an aligned 32-bit slot of the generation page this process maps; the guest only
  // reads it (and only confuses itself if it writes).
  __atomic_store_n(&d.port_gen[port], d.gens[port], __ATOMIC_RELEASE);
}

void Hypervisor::MarkPending(const Port& p) {
  if (!p.send.valid()) return;
  // EAGAIN: the queue is full, so the port is pending already. Other errors: the receiver closed
  // its end; Xen drops such notifications too.
  (void)::send(p.send.get(), "e", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

Hypervisor::Port* Hypervisor::OwnedPort(Session& s, Domain& d, EvtchnPort port) {
  if (port.value == 0 || port.value >= d.ports.size()) return nullptr;
  Port& p = d.ports[port.value];
  if (p.state == Port::State::kFree || p.owner != s.id) return nullptr;
  return &p;
}

Result<BoundPort> Hypervisor::AllocUnbound(SessionId session, DomId remote) {
  Session* s = FindSession(session);
  if (s == nullptr) return Err(ESRCH, "no session");
  Domain& d = *FindDomain(s->domid);
  // "<remote_dom> may be DOMID_SELF, allowing loopback connections."
  DomId r = remote == kDomIdSelf ? d.domid : remote;
  if (r.value >= kDomIdFirstReserved) return Err(EINVAL, "reserved remote domid");
  XPV_ASSIGN_OR_RETURN(NewPort np, AllocPort(d, s->id));
  Port& p = d.ports[np.port];
  p.state = Port::State::kUnbound;
  p.remote = r;
  BumpGen(d, np.port);
  BoundPort out;
  out.port = EvtchnPort(np.port);
  out.gen = d.gens[np.port];
  out.recv = std::move(np.recv);
  return out;
}

Result<BoundPort> Hypervisor::BindInterdomain(SessionId session, DomId remote,
                                              EvtchnPort remote_port) {
  Session* s = FindSession(session);
  if (s == nullptr) return Err(ESRCH, "no session");
  Domain& ld = *FindDomain(s->domid);
  DomId rdomid = remote == kDomIdSelf ? ld.domid : remote;
  Domain* rd = LiveDomain(rdomid.value);
  if (rd == nullptr) return Err(ESRCH, "no such remote domain");
  // Validate everything before allocating anything.
  const uint32_t rport = remote_port.value;
  if (rport == 0 || rport >= rd->ports.size()) return Err(EINVAL, "bad remote port");
  {
    const Port& rp = rd->ports[rport];
    // "<remote_dom,remote_port> must identify a port that is unbound and marked as accepting
    //  bindings from the calling domain."
    if (rp.state != Port::State::kUnbound || rp.remote != ld.domid) {
      return Err(EINVAL, "remote port is not offered to this domain");
    }
  }
  XPV_ASSIGN_OR_RETURN(NewPort np, AllocPort(ld, s->id));
  const uint32_t lport = np.port;
  // References only now: AllocPort may have grown ld.ports (and ld may be rd).
  Port& lp = ld.ports[lport];
  Port& rp = rd->ports[rport];
  lp.state = Port::State::kInterdomain;
  lp.remote = rd->domid;
  lp.remote_port = rport;
  rp.state = Port::State::kInterdomain;
  rp.remote = ld.domid;
  rp.remote_port = lport;
  BumpGen(ld, lport);
  BumpGen(*rd, rport);
  // "We may have lost notifications on the remote unbound port. Fix that up here by
  //  conservatively always setting a notification on the local port."
  MarkPending(lp);

  BoundPort out;
  out.port = EvtchnPort(lport);
  out.gen = ld.gens[lport];
  out.recv = std::move(np.recv);
  out.peer_send = rp.send.get();
  return out;
}

Result<SendResult> Hypervisor::Send(SessionId session, EvtchnPort port) {
  Session* s = FindSession(session);
  if (s == nullptr) return Err(ESRCH, "no session");
  Domain& d = *FindDomain(s->domid);
  Port* p = OwnedPort(*s, d, port);
  if (p == nullptr) return Err(EINVAL, "bad port");
  SendResult out;
  out.gen = d.gens[port.value];
  if (p->state == Port::State::kUnbound) return out;  // "silently drop the notification"
  Domain* rd = FindDomain(p->remote);
  // A peer that dies closes its ports first, so an interdomain port's peer is always here.
  XPV_CHECK(rd != nullptr && p->remote_port < rd->ports.size());
  const Port& rp = rd->ports[p->remote_port];
  MarkPending(rp);
  out.peer_send = rp.send.get();
  return out;
}

void Hypervisor::ClosePort(Domain& d, uint32_t port) {
  Port& p = d.ports[port];
  if (p.state == Port::State::kInterdomain) {
    // evtchn_close: "the remote end is placed in the unbound state ... awaiting a new connection"
    // from the domain that closed.
    Domain* rd = FindDomain(p.remote);
    XPV_CHECK(rd != nullptr && p.remote_port < rd->ports.size());
    Port& rp = rd->ports[p.remote_port];
    rp.state = Port::State::kUnbound;
    rp.remote = d.domid;
    rp.remote_port = 0;
    BumpGen(*rd, p.remote_port);
  }
  d.ports[port] = Port{};
  BumpGen(d, port);
}

Status Hypervisor::Close(SessionId session, EvtchnPort port) {
  Session* s = FindSession(session);
  if (s == nullptr) return Err(ESRCH, "no session");
  Domain& d = *FindDomain(s->domid);
  if (OwnedPort(*s, d, port) == nullptr) return Err(EINVAL, "bad port");
  ClosePort(d, port.value);
  return Ok();
}

Result<PortStatus> Hypervisor::EvtchnStatus(SessionId session, EvtchnPort port) {
  Session* s = FindSession(session);
  if (s == nullptr) return Err(ESRCH, "no session");
  Domain& d = *FindDomain(s->domid);
  if (port.value >= kMaxPorts) return Err(EINVAL, "bad port");
  PortStatus out;
  if (port.value >= d.ports.size()) return out;  // ECS_FREE: EVTCHNSTAT_closed
  const Port& p = d.ports[port.value];
  switch (p.state) {
    case Port::State::kFree:
      out.status = EVTCHNSTAT_closed;
      break;
    case Port::State::kUnbound:
      out.status = EVTCHNSTAT_unbound;
      out.remote = p.remote;
      break;
    case Port::State::kInterdomain:
      out.status = EVTCHNSTAT_interdomain;
      out.remote = p.remote;
      out.remote_port = EvtchnPort(p.remote_port);
      break;
  }
  return out;
}

}  // namespace xpv::platform::sim
