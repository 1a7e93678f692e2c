// Domains, sessions and teardown. Grant operations are in hypervisor_grant.cc, event channels in
// hypervisor_evtchn.cc.
#include "xpv/platform/sim/hypervisor.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "xpv/base/check.h"
#include "xpv/platform/sim/grant_entry.h"
#include "xpv/platform/sim/hypervisor_internal.h"

namespace xpv::platform::sim {

Hypervisor::Hypervisor(const HypervisorOptions& options) : options_(options) {}
Hypervisor::~Hypervisor() = default;

Result<std::unique_ptr<Hypervisor>> Hypervisor::Create(const HypervisorOptions& options) {
  if (options.dom0_memory_mib == 0 || options.dom0_memory_mib > kMaxMemoryMib ||
      options.dom0_grant_frames == 0 || options.dom0_grant_frames > kMaxGrantFrames) {
    return Err(EINVAL, "bad dom0 options");
  }
  std::unique_ptr<Hypervisor> hv(new Hypervisor(options));
  DomainConfig dom0;
  dom0.name = "Domain-0";
  dom0.memory_mib = options.dom0_memory_mib;
  dom0.mode = options.dom0_mode;
  dom0.privilege = Privilege::kControl;
  dom0.grant_frames = options.dom0_grant_frames;
  XPV_ASSIGN_OR_RETURN(auto d, hv->MakeDomain(kDom0, dom0));
  d->incarnation = hv->next_incarnation_++;
  hv->domains_.emplace(0, std::move(d));
  return hv;
}

// ---------------------------------------------------------------------------------------------
// Domains.

Result<std::unique_ptr<Hypervisor::Domain>> Hypervisor::MakeDomain(DomId domid,
                                                                   const DomainConfig& config) {
  auto d = std::make_unique<Domain>();
  d->domid = domid;
  d->config = config;
  d->pages = config.memory_mib * (1024 * 1024 / kPageSize);
  XPV_ASSIGN_OR_RETURN(d->ram, SharedMemory::Create("xpv-ram", d->pages * kPageSize));
  XPV_ASSIGN_OR_RETURN(d->shared,
                       SharedMemory::Create("xpv-shared", SharedSize(config.grant_frames)));
  // SAFETY: the shared memfd starts with grant_frames pages of grant_entry_v1_t (8-byte aligned,
  // page-aligned mapping), followed by the port generation page.
  d->gnttab = reinterpret_cast<grant_entry_v1_t*>(d->shared.data());
  d->nr_grants = config.grant_frames * abi::kGrantEntriesPerFrame;
  d->port_gen = reinterpret_cast<uint32_t*>(d->shared.data() + PortGenOffset(config.grant_frames));
  d->gens.assign(kMaxPorts, 0);
  d->ports.resize(1);  // port 0 is reserved, as in Xen
  return d;
}

static Status ValidateConfig(const DomainConfig& c) {
  if (c.name.empty() || c.name.size() > kMaxNameLen) return Err(EINVAL, "bad domain name length");
  for (char ch : c.name) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return Err(EINVAL, "bad domain name");
  }
  if (c.memory_mib == 0 || c.memory_mib > kMaxMemoryMib) return Err(EINVAL, "bad memory size");
  if (c.grant_frames == 0 || c.grant_frames > kMaxGrantFrames)
    return Err(EINVAL, "bad grant frames");
  if (c.mode != MappingMode::kCopy && c.mode != MappingMode::kMap) return Err(EINVAL, "bad mode");
  if (c.vcpus == 0 || c.vcpus > kMaxVcpus) return Err(EINVAL, "bad vcpu count");
  if (c.privilege != Privilege::kNone && c.privilege != Privilege::kService) {
    return Err(EINVAL, "only domain 0 has control privilege");
  }
  if (c.store_domid.value >= kDomIdFirstReserved) return Err(EINVAL, "bad store domain");
  return Ok();
}

Result<DomId> Hypervisor::PickDomId() {
  if (domains_.size() >= kMaxDomains) return Err(ENOSPC, "too many domains");
  // Sequential, wrapping below DOMID_FIRST_RESERVED, skipping ids still in use (dying included),
  // as Xen's toolstack allocates them.
  for (uint32_t tries = 0; tries < kDomIdFirstReserved; ++tries) {
    uint32_t id = next_domid_;
    next_domid_ = next_domid_ + 1 >= kDomIdFirstReserved ? 1 : next_domid_ + 1;
    if (!domains_.contains(id)) return DomId(id);
  }
  return Err(ENOSPC, "no free domid");
}

Result<DomainCreated> Hypervisor::CreateDomain(const DomainConfig& config) {
  XPV_TRY(ValidateConfig(config));
  XPV_ASSIGN_OR_RETURN(DomId domid, PickDomId());
  XPV_ASSIGN_OR_RETURN(auto d, MakeDomain(domid, config));
  d->incarnation = next_incarnation_++;

  // The store page: the last frame of RAM, granted to the store's domain as ref 1
  // (GNTTAB_RESERVED_XENSTORE), as Xen's xc_dom_gnttab_seed does.
  d->store_gfn = Gfn(d->pages - 1);
  PublishGrant(&d->gnttab[GNTTAB_RESERVED_XENSTORE],
               static_cast<uint16_t>(config.store_domid.value),
               static_cast<uint32_t>(d->store_gfn.value), /*readonly=*/false);

  // The store's event channel: unbound, offered to the store's domain. Owned by the domain's
  // session once it attaches; until then the receive end waits here.
  XPV_ASSIGN_OR_RETURN(auto port, AllocPort(*d, /*owner=*/0));
  Port& p = d->ports[port.port];
  p.state = Port::State::kUnbound;
  p.remote = config.store_domid;
  d->store_port = EvtchnPort(port.port);
  d->store_recv = std::move(port.recv);
  BumpGen(*d, port.port);

  DomainCreated created{domid, d->incarnation, d->store_gfn, d->store_port};
  domains_.emplace(domid.value, std::move(d));
  return created;
}

Hypervisor::Domain* Hypervisor::FindDomain(DomId domid) {
  auto it = domains_.find(domid.value);
  return it == domains_.end() ? nullptr : it->second.get();
}
const Hypervisor::Domain* Hypervisor::FindDomain(DomId domid) const {
  auto it = domains_.find(domid.value);
  return it == domains_.end() ? nullptr : it->second.get();
}
Hypervisor::Domain* Hypervisor::LiveDomain(uint32_t raw_domid) {
  Domain* d = FindDomain(DomId(raw_domid));
  return d == nullptr || d->dying ? nullptr : d;
}
Hypervisor::Session* Hypervisor::FindSession(SessionId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

static DomainRecord RecordOf(const auto& d) {
  DomainRecord r;
  r.domid = d.domid;
  r.incarnation = d.incarnation;
  r.name = d.config.name;
  r.memory_kib = d.config.memory_mib * 1024;
  r.vcpus = d.config.vcpus;
  r.dying = d.dying;
  r.pid = d.pid;
  r.mode = d.config.mode;
  r.privilege = d.config.privilege;
  return r;
}

std::optional<DomainRecord> Hypervisor::Find(DomId domid) const {
  const Domain* d = FindDomain(domid);
  if (d == nullptr) return std::nullopt;
  return RecordOf(*d);
}

std::vector<DomainRecord> Hypervisor::List(DomId start, size_t max) const {
  std::vector<DomainRecord> out;
  for (auto it = domains_.lower_bound(start.value); it != domains_.end() && out.size() < max;
       ++it) {
    out.push_back(RecordOf(*it->second));
  }
  return out;
}

void Hypervisor::SetPid(DomId domid, int pid) {
  if (Domain* d = FindDomain(domid)) d->pid = pid;
}

Status Hypervisor::DestroyDomain(DomId domid) {
  if (domid == kDom0) return Err(EPERM, "domain 0 cannot be destroyed");
  Domain* d = FindDomain(domid);
  if (d == nullptr) return Err(ESRCH, "no such domain");
  if (d->dying) return Ok();
  KillDomain(*d, /*notify_hook=*/true);
  return Ok();
}

void Hypervisor::KillDomain(Domain& d, bool notify_hook) {
  XPV_CHECK(d.domid != kDom0);
  d.dying = true;
  d.tearing_down = true;
  const DomId domid = d.domid;
  // Sessions first: their mappings of other domains' grants are released (gnttab_release_mappings).
  std::vector<SessionId> sessions = d.sessions;
  for (SessionId id : sessions) {
    if (Session* s = FindSession(id)) EndSession(*s, notify_hook);
  }
  // Then every channel, so peers see their ends return to unbound (evtchn_destroy).
  for (uint32_t port = 1; port < d.ports.size(); ++port) {
    if (d.ports[port].state != Port::State::kFree) ClosePort(d, port);
  }
  d.store_recv.reset();
  ReportDeath(domid);
  d.tearing_down = false;
  MaybeFree(d);
}

void Hypervisor::MaybeFree(Domain& d) {
  if (!d.dying || d.tearing_down || d.pinned != 0 || !d.sessions.empty()) return;
  // Every session that was handed this RAM is told to let go of it.
  for (auto& [id, s] : sessions_) {
    if (s->ram_sent.erase(d.incarnation) != 0) s->ram_drops.push_back(d.incarnation);
  }
  domains_.erase(d.domid.value);  // `d` is gone
}

void Hypervisor::ReportDeath(DomId dead) {
  for (auto& [id, s] : sessions_) {
    if (!s->death_send.valid()) continue;
    s->dead.insert(dead.value);
    // One byte is a doorbell; a full queue means the subscriber has not looked yet.
    (void)::send(s->death_send.get(), "d", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions.

Result<SessionInfo> Hypervisor::Attach(DomId domid, uint64_t incarnation) {
  Domain* d = FindDomain(domid);
  if (d == nullptr || d->dying || d->incarnation != incarnation)
    return Err(ESRCH, "no such domain");

  auto s = std::make_unique<Session>();
  s->id = next_session_++;
  s->domid = domid;
  s->incarnation = d->incarnation;
  s->privilege = d->config.privilege;
  s->mode = d->config.mode;

  if (domid == kDom0) {
    // A slot whose grant references nobody has pinned any more.
    const uint32_t per_refs = (d->nr_grants - GNTTAB_NR_RESERVED_ENTRIES) / kDom0Slots;
    const uint64_t per_gfns = d->pages / kDom0Slots;
    int slot = -1;
    for (uint32_t i = 0; i < kDom0Slots && slot < 0; ++i) {
      if (d->slots[i] != 0) continue;
      const uint32_t first = GNTTAB_NR_RESERVED_ENTRIES + i * per_refs;
      bool pinned = std::any_of(d->active.begin(), d->active.end(), [&](const auto& kv) {
        return kv.first >= first && kv.first < first + per_refs;
      });
      if (!pinned) slot = static_cast<int>(i);
    }
    if (slot < 0) return Err(EBUSY, "all dom0 session slots are in use");
    s->slot = slot;
    s->ref_first = GNTTAB_NR_RESERVED_ENTRIES + static_cast<uint32_t>(slot) * per_refs;
    s->ref_end = s->ref_first + per_refs;
    s->gfn_first = static_cast<uint64_t>(slot) * per_gfns;
    s->gfn_end = s->gfn_first + per_gfns;
    // A fresh slice: whatever an earlier session left granted there is revoked.
    std::memset(&d->gnttab[s->ref_first], 0, size_t{per_refs} * sizeof(grant_entry_v1_t));
    d->slots[slot] = s->id;
  } else {
    if (!d->sessions.empty() || d->attached_once) return Err(EBUSY, "domain already connected");
    s->ref_first = GNTTAB_NR_RESERVED_ENTRIES;
    s->ref_end = d->nr_grants;
    s->gfn_first = 0;
    s->gfn_end = d->pages - 1;  // the last frame is the store page
    for (auto& p : d->ports) {
      if (p.state != Port::State::kFree && p.owner == 0) p.owner = s->id;
    }
    d->attached_once = true;
  }

  SessionInfo info;
  if (s->privilege != Privilege::kNone) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
      if (s->slot >= 0) d->slots[s->slot] = 0;
      return Err(errno, "death socketpair");
    }
    info.death_recv.reset(sv[0]);
    s->death_send.reset(sv[1]);
    ::shutdown(sv[1], SHUT_RD);
  }
  info.id = s->id;
  info.domid = domid;
  info.incarnation = d->incarnation;
  info.privilege = s->privilege;
  info.mode = s->mode;
  info.ram_fd = d->ram.fd();
  info.ram_pages = d->pages;
  info.shared_fd = d->shared.fd();
  info.grant_frames = d->config.grant_frames;
  info.ref_first = s->ref_first;
  info.ref_end = s->ref_end;
  info.gfn_first = s->gfn_first;
  info.gfn_end = s->gfn_end;
  if (domid != kDom0) {
    info.store_gfn = d->store_gfn;
    info.store_port = d->store_port;
    info.store_recv = std::move(d->store_recv);
  }
  s->ram_sent.insert(d->incarnation);  // its own RAM comes with the session
  d->sessions.push_back(s->id);
  sessions_.emplace(s->id, std::move(s));
  return info;
}

bool Hypervisor::Dom0RefOrphaned(const Domain& dom0, uint32_t ref) {
  const uint32_t per_refs = (dom0.nr_grants - GNTTAB_NR_RESERVED_ENTRIES) / kDom0Slots;
  if (ref < GNTTAB_NR_RESERVED_ENTRIES || per_refs == 0) return false;
  const uint32_t slot = (ref - GNTTAB_NR_RESERVED_ENTRIES) / per_refs;
  return slot < kDom0Slots && dom0.slots[slot] == 0;
}

void Hypervisor::Detach(SessionId id) {
  Session* s = FindSession(id);
  if (s == nullptr) return;
  Domain* d = FindDomain(s->domid);
  XPV_CHECK(d != nullptr);
  if (d->domid == kDom0) {
    EndSession(*s, /*notify_hook=*/false);
  } else {
    KillDomain(*d, /*notify_hook=*/false);
  }
}

void Hypervisor::EndSession(Session& s, bool notify_hook) {
  const SessionId id = s.id;
  Domain* d = FindDomain(s.domid);
  XPV_CHECK(d != nullptr);
  // Its mappings (the process that held them is gone or going).
  for (uint32_t h = 0; h < s.maptrack.size(); ++h) {
    if (s.maptrack[h].live) (void)UnmapOne(s, h);
  }
  // Its ports.
  for (uint32_t port = 1; port < d->ports.size(); ++port) {
    if (d->ports[port].state != Port::State::kFree && d->ports[port].owner == id) {
      ClosePort(*d, port);
    }
  }
  if (s.slot >= 0) {
    // dom0: revoke what the session granted and nobody maps; pinned entries stay until unmapped,
    // and the slot is not handed out again before then.
    for (uint32_t ref = s.ref_first; ref < s.ref_end; ++ref) {
      if (!d->active.contains(ref)) std::memset(&d->gnttab[ref], 0, sizeof(grant_entry_v1_t));
    }
    d->slots[s.slot] = 0;
  }
  std::erase(d->sessions, id);
  sessions_.erase(id);  // `s` is gone
  if (notify_hook && on_closed_) on_closed_(id);
  MaybeFree(*d);
}

Status Hypervisor::CheckPrivilege(SessionId session, Privilege needed) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return Err(ESRCH, "no session");
  if (static_cast<int>(it->second->privilege) < static_cast<int>(needed)) {
    return Err(EPERM, "not privileged");
  }
  return Ok();
}

Result<Hypervisor::ForeignRam> Hypervisor::MapForeign(SessionId session, DomId domid, Gfn gfn) {
  XPV_TRY(CheckPrivilege(session, Privilege::kService));
  Domain* d = LiveDomain(domid.value);
  if (d == nullptr) return Err(ESRCH, "no such domain");
  // The fd handed out is the whole RAM, so this is privilege over the domain (Xen's
  // xsm_map_gmfn_foreign: XSM_TARGET). Domain 0 has it over every domain; a service domain only
  // over the domains whose store it is, which is all a store needs (their ring pages). Without
  // this a service domain could read and write dom0's RAM and every other domain's.
  const Session* s = FindSession(session);
  if (s->privilege != Privilege::kControl && d->config.store_domid != s->domid) {
    return Err(EPERM, "not this domain's store domain");
  }
  if (gfn.value >= d->pages) return Err(EINVAL, "frame beyond the domain's RAM");
  return ForeignRam{d->ram.fd(), d->pages};
}

Result<std::vector<DomId>> Hypervisor::TakeDead(SessionId session, size_t max, bool* more) {
  XPV_TRY(CheckPrivilege(session, Privilege::kService));
  Session* s = FindSession(session);
  std::vector<DomId> out;
  while (!s->dead.empty() && out.size() < max) {
    out.push_back(DomId(*s->dead.begin()));
    s->dead.erase(s->dead.begin());
  }
  if (more != nullptr) *more = !s->dead.empty();
  return out;
}

std::vector<uint64_t> Hypervisor::TakeRamDrops(SessionId session, size_t max) {
  std::vector<uint64_t> out;
  Session* s = FindSession(session);
  if (s == nullptr) return out;
  size_t n = std::min(max, s->ram_drops.size());
  out.assign(s->ram_drops.begin(), s->ram_drops.begin() + static_cast<ptrdiff_t>(n));
  s->ram_drops.erase(s->ram_drops.begin(), s->ram_drops.begin() + static_cast<ptrdiff_t>(n));
  return out;
}

void Hypervisor::RamNotSent(SessionId session, uint64_t incarnation) {
  if (Session* s = FindSession(session)) s->ram_sent.erase(incarnation);
}

grant_entry_v1_t* Hypervisor::GrantTableForTest(DomId domid) {
  Domain* d = FindDomain(domid);
  return d == nullptr ? nullptr : d->gnttab;
}
uint8_t* Hypervisor::RamForTest(DomId domid) {
  Domain* d = FindDomain(domid);
  return d == nullptr ? nullptr : d->ram.data();
}
uint32_t Hypervisor::PinsForTest(DomId domid, GrantRef ref) const {
  const Domain* d = FindDomain(domid);
  if (d == nullptr) return 0;
  auto it = d->active.find(ref.value);
  return it == d->active.end() ? 0 : it->second.readers + it->second.writers;
}

}  // namespace xpv::platform::sim
