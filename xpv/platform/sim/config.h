// What a simulated domain is made of, and the hypervisor's fixed limits. Shared by the hypervisor
// core, the wire protocol and the client library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xpv/base/types.h"

namespace xpv::platform::sim {

// How a backend domain reaches the memory other domains grant it. Chosen per domain at creation.
enum class MappingMode : uint8_t {
  // Enforced isolation: the domain never holds another domain's memory; the hypervisor executes
  // grant copies between memfds it maps itself. Map() is refused.
  kCopy = 0,
  // The hypervisor validates and pins each grant, then hands the granting domain's RAM memfd to
  // the mapper once, which mmaps exactly the granted frames. Nothing but the mapper's good
  // behaviour stops it from mapping more: see docs/xpv-hv.md.
  kMap = 1,
};
const char* MappingModeName(MappingMode mode);
std::optional<MappingMode> ParseMappingMode(std::string_view s);

enum class Privilege : uint8_t {
  kNone = 0,
  // Lists domains, maps foreign frames, receives death notifications: what xenstored needs.
  kService = 1,
  // Everything kService may, plus creating and destroying domains: domain 0, the toolstack.
  kControl = 2,
};

// Where xpv-hv listens: $XPV_HV_SOCKET, else /run/xpv/hv.sock.
std::string DefaultSocketPath();
inline constexpr const char* kEnvHvSocket = "XPV_HV_SOCKET";
// Set in a domain's process by xpv-hv: its connection's fd, and its domid (informational).
inline constexpr const char* kEnvHvFd = "XPV_HV_FD";
inline constexpr const char* kEnvDomId = "XPV_DOMID";

// Limits. Each bounds something an untrusted domain could otherwise grow.
inline constexpr uint32_t kMaxPorts = 1024;          // event channels per domain (port 0 reserved)
inline constexpr uint32_t kMaxBatch = 128;           // grant ops per request
inline constexpr uint32_t kMaxMaptrack = 16384;      // live mappings per session
inline constexpr uint32_t kMaxPinsPerEntry = 255;    // Xen: an 8-bit pin counter per kind
inline constexpr uint32_t kDom0Slots = 16;           // concurrent dom0 sessions
inline constexpr uint32_t kMaxGrantFrames = 64;      // grant-table frames per domain
inline constexpr uint32_t kDefaultGrantFrames = 32;  // 16384 v1 entries
inline constexpr uint64_t kMaxMemoryMib = 64 * 1024;
inline constexpr uint32_t kMaxDomains = 1024;
inline constexpr uint32_t kMaxVcpus = 128;  // Xen's HVM_MAX_VCPUS; xl.cfg's `vcpus` bound
inline constexpr size_t kMaxNameLen = 63;

struct DomainConfig {
  std::string name;
  uint64_t memory_mib = 16;
  MappingMode mode = MappingMode::kCopy;
  Privilege privilege = Privilege::kNone;
  // The store's domain: grant ref 1 (GNTTAB_RESERVED_XENSTORE) is granted to it and the store
  // event channel is offered to it, as Xen's toolstack does with xenstore_domid.
  DomId store_domid = kDom0;
  uint32_t grant_frames = kDefaultGrantFrames;
  // How many vCPUs the domain was configured with, 1..kMaxVcpus: reported by List (`xpv list`)
  // for the toolstack. The domain's process runs as many threads as it likes; event channels
  // are delivered to one vCPU, as docs/xpv-hv.md says.
  uint32_t vcpus = 1;
};

// The shared memfd of a domain: its grant table, then one page of per-port generation counters
// (the hypervisor bumps a port's counter whenever its peer changes, so a sender knows when its
// cached notification fd is stale without asking).
inline constexpr size_t PortGenOffset(uint32_t grant_frames) {
  return size_t{grant_frames} * kPageSize;
}
inline constexpr size_t SharedSize(uint32_t grant_frames) {
  return PortGenOffset(grant_frames) + kMaxPorts * sizeof(uint32_t);
}
static_assert(kMaxPorts * sizeof(uint32_t) == kPageSize);

}  // namespace xpv::platform::sim
