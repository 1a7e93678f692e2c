// The simulated hypervisor's core: domains, their RAM, grant tables v1 and event channels, with
// Xen's rules (public/grant_table.h, public/event_channel.h, common/grant_table.c,
// common/event_channel.c). No sockets and no processes here: the daemon (daemon.h) turns wire
// requests into these calls, and tests call them directly.
//
// Who is calling is a session: one connection's view of a domain. A domain has exactly one
// session, except domain 0, which has one per toolstack connection (as each process in dom0 has
// its own /dev/xen/evtchn): each dom0 session owns the ports it allocated, a slice of dom0's grant
// references and a slice of dom0's RAM.
//
// Every input is untrusted; every failure is a value: GNTST_* per grant op, an errno per
// event-channel or control op, as Xen's hypercalls return. Single-threaded: one caller at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "xpv/abi/event_channel.h"
#include "xpv/abi/grant_table.h"
#include "xpv/base/result.h"
#include "xpv/base/types.h"
#include "xpv/base/unique_fd.h"
#include "xpv/platform/sim/config.h"
#include "xpv/platform/sim/shm.h"

namespace xpv::platform::sim {

using SessionId = uint64_t;

struct HypervisorOptions {
  uint64_t dom0_memory_mib = 64;
  MappingMode dom0_mode = MappingMode::kMap;
  uint32_t dom0_grant_frames = kDefaultGrantFrames;
};

struct DomainCreated {
  DomId domid;
  uint64_t incarnation = 0;  // unique for the hypervisor's lifetime; a reused domid gets a new one
  Gfn store_gfn;
  EvtchnPort store_port;
};

// What a session needs to set itself up. The fds are borrowed from the hypervisor (the daemon
// sends them; in-process users dup them if they keep them), except death_recv.
struct SessionInfo {
  SessionId id = 0;
  DomId domid;
  uint64_t incarnation = 0;
  Privilege privilege = Privilege::kNone;
  MappingMode mode = MappingMode::kCopy;
  int ram_fd = -1;
  uint64_t ram_pages = 0;
  int shared_fd = -1;
  uint32_t grant_frames = 0;
  // The grant references and RAM frames this session may allocate from.
  uint32_t ref_first = 0, ref_end = 0;
  uint64_t gfn_first = 0, gfn_end = 0;
  std::optional<Gfn> store_gfn;
  std::optional<EvtchnPort> store_port;
  UniqueFd store_recv;  // the store port's receive end (domains other than 0)
  UniqueFd death_recv;  // privileged sessions: readable when some domain died (VIRQ_DOM_EXC)
};

struct MapOp {
  DomId domid;  // the granting domain
  GrantRef ref;
  bool readonly = false;
};

struct MapResult {
  int16_t status = GNTST_general_error;
  uint32_t handle = 0;
  uint64_t gfn = 0;          // the granted frame in the granter's RAM
  uint64_t incarnation = 0;  // which RAM that frame is in
  uint64_t ram_pages = 0;
  int ram_fd = -1;  // borrowed; set only the first time this session needs that RAM
};

// A port with its receive socket: readable while the port is pending.
struct BoundPort {
  EvtchnPort port;
  uint32_t gen = 0;    // the port's peer generation when this was returned
  UniqueFd recv;       // the receive end; the owner polls it
  int peer_send = -1;  // borrowed: the send end of the peer's port (bind only)
};

struct SendResult {
  uint32_t gen = 0;
  int peer_send = -1;  // borrowed; -1 while the port is unbound
};

struct PortStatus {
  uint32_t status = EVTCHNSTAT_closed;  // EVTCHNSTAT_*
  DomId remote;                         // unbound: who may bind; interdomain: the peer
  EvtchnPort remote_port;
};

struct DomainRecord {
  DomId domid;
  uint64_t incarnation = 0;
  std::string name;
  uint64_t memory_kib = 0;
  uint32_t vcpus = 1;
  bool dying = false;
  int pid = 0;
  MappingMode mode = MappingMode::kCopy;
  Privilege privilege = Privilege::kNone;
};

class Hypervisor {
 public:
  static Result<std::unique_ptr<Hypervisor>> Create(const HypervisorOptions& options = {});
  ~Hypervisor();
  Hypervisor(const Hypervisor&) = delete;
  Hypervisor& operator=(const Hypervisor&) = delete;

  // Called when the hypervisor ends a session on its own (its domain was destroyed), so the owner
  // of the connection can close it.
  void set_session_closed_hook(std::function<void(SessionId)> hook) {
    on_closed_ = std::move(hook);
  }

  // --- Domains -------------------------------------------------------------------------------
  // A new domain: RAM, grant table with the store page granted (ref 1), the store's unbound port.
  Result<DomainCreated> CreateDomain(const DomainConfig& config);
  // Tears a domain down as a crashed Xen guest: sessions ended, channels closed (peers' ends back
  // to unbound), mappings it holds released, death reported; its RAM and grant table linger
  // (dying) until every mapping of its grants is unmapped. ESRCH, or EPERM for domain 0.
  Status DestroyDomain(DomId domid);
  void SetPid(DomId domid, int pid);
  std::optional<DomainRecord> Find(DomId domid) const;
  // Up to `max` domains with domid >= `start`, in domid order.
  std::vector<DomainRecord> List(DomId start, size_t max) const;
  size_t domain_count() const { return domains_.size(); }

  // --- Sessions ------------------------------------------------------------------------------
  // Attaches a session to a domain: the domain's only one, or one of domain 0's. EBUSY when the
  // domain already has its session or dom0 has no free slot; ESRCH if the domain is gone.
  Result<SessionInfo> Attach(DomId domid, uint64_t incarnation);
  // The session's connection ended. For a domain other than 0, the domain dies.
  void Detach(SessionId session);
  bool SessionAlive(SessionId session) const { return sessions_.contains(session); }

  // --- Grant tables (GNTTABOP_map_grant_ref, _unmap_grant_ref, _copy) -------------------------
  void Map(SessionId session, std::span<const MapOp> ops, std::span<MapResult> results);
  void Unmap(SessionId session, std::span<const uint32_t> handles, std::span<int16_t> status);
  // Sets each op's status. Frames of the caller's own RAM are named with DOMID_SELF (or its own
  // domid, as Xen 4.15+ accepts).
  void Copy(SessionId session, std::span<gnttab_copy_t> ops);
  // Incarnations whose RAM this session was handed and that no longer exist: the client closes
  // its fd. Each is reported once.
  std::vector<uint64_t> TakeRamDrops(SessionId session, size_t max);
  // The caller could not pass a MapResult::ram_fd on to the session (out of descriptors): the
  // session does not hold that RAM, so the next mapping of that domain hands the fd out again.
  void RamNotSent(SessionId session, uint64_t incarnation);

  // --- Event channels (EVTCHNOP_*) -------------------------------------------------------------
  Result<BoundPort> AllocUnbound(SessionId session, DomId remote);
  Result<BoundPort> BindInterdomain(SessionId session, DomId remote, EvtchnPort remote_port);
  // Sends through the hypervisor (the slow path) and returns the peer's send fd, so the caller
  // can send directly until the port's generation changes.
  Result<SendResult> Send(SessionId session, EvtchnPort port);
  Status Close(SessionId session, EvtchnPort port);
  Result<PortStatus> EvtchnStatus(SessionId session, EvtchnPort port);

  // --- Privileged ------------------------------------------------------------------------------
  xpv::Status CheckPrivilege(SessionId session, Privilege needed) const;
  // The RAM of `domid` for xenforeignmemory_map-style access (the store's ring page).
  struct ForeignRam {
    int fd = -1;  // borrowed
    uint64_t pages = 0;
  };
  Result<ForeignRam> MapForeign(SessionId session, DomId domid, Gfn gfn);
  // Domains that died since the last call (VIRQ_DOM_EXC): at most `max`; *more says if some are
  // left.
  Result<std::vector<DomId>> TakeDead(SessionId session, size_t max, bool* more);

  // For tests: the hypervisor's own view of a domain's grant table and pins.
  grant_entry_v1_t* GrantTableForTest(DomId domid);
  uint8_t* RamForTest(DomId domid);
  uint32_t PinsForTest(DomId domid, GrantRef ref) const;

 private:
  // Defined in hypervisor_internal.h.
  struct Domain;
  struct Session;
  struct Port;
  struct ActiveEntry;
  struct MapTrack;
  struct NewPort;

  explicit Hypervisor(const HypervisorOptions& options);
  Result<DomId> PickDomId();
  Result<std::unique_ptr<Domain>> MakeDomain(DomId domid, const DomainConfig& config);
  Domain* FindDomain(DomId domid);
  const Domain* FindDomain(DomId domid) const;
  Domain* LiveDomain(uint32_t raw_domid);
  Session* FindSession(SessionId id);
  void EndSession(Session& s, bool notify_hook);
  void KillDomain(Domain& d, bool notify_hook);
  void MaybeFree(Domain& d);
  void ReportDeath(DomId dead);

  // Grants.
  int16_t Acquire(Domain& granter, uint32_t ref, DomId mapper, bool readonly, bool mapping,
                  uint64_t* gfn);
  void Release(Domain& granter, uint32_t ref, bool readonly);
  // Whether `ref` of dom0's table lies in a session slice that no session holds now.
  static bool Dom0RefOrphaned(const Domain& dom0, uint32_t ref);
  void MapOne(Session& s, const MapOp& op, MapResult& out);
  int16_t UnmapOne(Session& s, uint32_t handle);
  void CopyOne(Session& s, gnttab_copy_t& op);

  // Event channels.
  Result<NewPort> AllocPort(Domain& d, SessionId owner);
  Port* OwnedPort(Session& s, Domain& d, EvtchnPort port);
  void ClosePort(Domain& d, uint32_t port);
  void BumpGen(Domain& d, uint32_t port);
  static void MarkPending(const Port& p);

  HypervisorOptions options_;
  std::map<uint32_t, std::unique_ptr<Domain>> domains_;
  std::unordered_map<SessionId, std::unique_ptr<Session>> sessions_;
  std::function<void(SessionId)> on_closed_;
  uint32_t next_domid_ = 1;
  uint64_t next_incarnation_ = 1;
  SessionId next_session_ = 1;
};

}  // namespace xpv::platform::sim
