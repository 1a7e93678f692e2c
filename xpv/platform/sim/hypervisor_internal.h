// The hypervisor core's private state. Only hypervisor*.cc include this.
#pragma once

#include <array>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "xpv/platform/sim/hypervisor.h"

namespace xpv::platform::sim {

// grant_table.c's struct active_grant_entry: the hypervisor's private record of a pinned grant.
// The frame is captured when the entry is first pinned; a guest rewriting its entry while it is
// mapped changes nothing for the existing mappings, as in Xen.
struct Hypervisor::ActiveEntry {
  uint32_t readers = 0;  // read-only pins (mappings and copies in progress)
  uint32_t writers = 0;  // read-write pins
  DomId mapper;          // the one domain that holds the pins
  uint64_t gfn = 0;
};

// event_channel.c's struct evtchn, reduced to the interdomain kind.
struct Hypervisor::Port {
  enum class State : uint8_t { kFree, kUnbound, kInterdomain };
  State state = State::kFree;
  DomId remote;              // unbound: who may bind; interdomain: the peer
  uint32_t remote_port = 0;  // interdomain
  SessionId owner = 0;       // the session that holds the receive end (0: not attached yet)
  // The send end of this port's receive socket. The hypervisor keeps it and hands copies to the
  // peer: a notification is one datagram written to it, with no hypervisor round trip.
  UniqueFd send;
};

struct Hypervisor::NewPort {
  uint32_t port = 0;
  UniqueFd recv;
};

struct Hypervisor::Domain {
  DomId domid;
  uint64_t incarnation = 0;
  DomainConfig config;
  bool dying = false;
  bool tearing_down = false;
  bool attached_once = false;
  int pid = 0;

  SharedMemory ram;
  uint64_t pages = 0;
  SharedMemory shared;  // grant table, then port generations (config.h)
  grant_entry_v1_t* gnttab = nullptr;
  uint32_t nr_grants = 0;
  uint32_t* port_gen = nullptr;  // in shared memory: written here, never read back
  std::vector<uint32_t> gens;    // the hypervisor's own copy of each port's generation

  std::unordered_map<uint32_t, ActiveEntry> active;  // ref -> pins
  uint64_t pinned = 0;                               // sum of all pins: zero before freeing

  std::vector<Port> ports;  // index = port; grows to kMaxPorts
  Gfn store_gfn;
  EvtchnPort store_port;
  UniqueFd store_recv;  // until the domain's session attaches

  std::vector<SessionId> sessions;
  std::array<SessionId, kDom0Slots> slots{};  // dom0: which session holds each slice
};

// grant_table.c's maptrack entry: one mapping held by a session.
struct Hypervisor::MapTrack {
  bool live = false;
  bool readonly = false;
  DomId granter;
  uint64_t incarnation = 0;
  uint32_t ref = 0;
};

struct Hypervisor::Session {
  SessionId id = 0;
  DomId domid;
  uint64_t incarnation = 0;
  Privilege privilege = Privilege::kNone;
  MappingMode mode = MappingMode::kCopy;
  int slot = -1;  // dom0 only
  uint32_t ref_first = 0, ref_end = 0;
  uint64_t gfn_first = 0, gfn_end = 0;

  std::vector<MapTrack> maptrack;  // handle = index
  std::vector<uint32_t> free_handles;
  uint32_t live_maps = 0;

  std::unordered_set<uint64_t> ram_sent;  // incarnations whose RAM fd this session holds
  std::vector<uint64_t> ram_drops;        // ... and that have since been freed

  UniqueFd death_send;      // privileged: doorbell for TakeDead
  std::set<uint32_t> dead;  // deduplicated, so bounded by the domid space
};

}  // namespace xpv::platform::sim
