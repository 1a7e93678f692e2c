// What devices see of the hypervisor: grants, event channels, foreign mappings, domain control.
//
// Two implementations sit behind these interfaces, chosen at start-up, never by #ifdef in device
// code: platform/sim (xpv-hv, the simulated hypervisor: domains are processes, guest RAM is a
// memfd) and platform/xen (real Xen through /dev/xen/*). Semantics are Xen's: grant_table.h and
// event_channel.h in libxen-dev; per-operation results are GNTST_* codes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/types.h"

namespace xpv::platform {

enum class Access : uint8_t { kReadOnly, kReadWrite };

// grant_table.h GNTST_*: the status of one grant operation.
enum class GrantStatus : int16_t {
  kOkay = 0,
  kGeneralError = -1,
  kBadDomain = -2,
  kBadGntref = -3,
  kBadHandle = -4,
  kBadVirtAddr = -5,
  kBadDevAddr = -6,
  kNoDeviceSpace = -7,
  kPermissionDenied = -8,
  kBadPage = -9,
  kBadCopyArg = -10,
  kAddressTooBig = -11,
  kEagain = -12,
  kNoSpace = -13,
};
const char* GrantStatusName(GrantStatus s);

// ---------------------------------------------------------------------------------------------
// Guest memory: this domain's own RAM, in pages.

class GuestMemory {
 public:
  virtual ~GuestMemory() = default;
  // Allocates `count` contiguous pages of this domain's RAM.
  virtual Result<Gfn> AllocPages(size_t count) = 0;
  virtual void FreePages(Gfn first, size_t count) = 0;
  // The bytes of one of this domain's own pages. Valid while the domain lives.
  virtual uint8_t* PageAddress(Gfn gfn) = 0;
  virtual size_t page_count() const = 0;
};

// ---------------------------------------------------------------------------------------------
// Grant access: the frontend side.

class GrantTable {
 public:
  virtual ~GrantTable() = default;
  // Grants `peer` access to this domain's frame `gfn`.
  virtual Result<GrantRef> GrantAccess(DomId peer, Gfn gfn, Access access) = 0;
  // Revokes a grant. EBUSY while the peer still has it mapped (GTF_reading/GTF_writing set):
  // the caller must retry later, and must not reuse the page meanwhile.
  virtual Status EndAccess(GrantRef ref) = 0;
};

// ---------------------------------------------------------------------------------------------
// Grant mapping and copy: the backend side.

struct MapRequest {
  DomId domid;  // the granting domain
  GrantRef ref;
  Access access = Access::kReadWrite;
};

// A batch of mapped grants. Unmaps (one batch) on destruction. Move-only.
class GrantMapping {
 public:
  GrantMapping() = default;
  virtual ~GrantMapping() = default;
  GrantMapping(const GrantMapping&) = delete;
  GrantMapping& operator=(const GrantMapping&) = delete;

  size_t size() const { return status_.size(); }
  GrantStatus status(size_t i) const { return status_[i]; }
  // The page of entry i; null unless status(i) is kOkay.
  uint8_t* page(size_t i) const { return pages_[i]; }

 protected:
  std::vector<GrantStatus> status_;
  std::vector<uint8_t*> pages_;
};

// One side of a grant copy (gnttab_copy): a grant of another domain, or a frame of our own.
struct CopyPtr {
  enum class Kind : uint8_t { kGrant, kLocal } kind = Kind::kLocal;
  DomId domid;   // kGrant: the granting domain
  GrantRef ref;  // kGrant
  Gfn gfn;       // kLocal: one of our own frames
  uint16_t offset = 0;
};

struct CopyOp {
  CopyPtr source;
  CopyPtr dest;
  uint16_t len = 0;
  GrantStatus status = GrantStatus::kOkay;  // out
};

class GrantMapper {
 public:
  virtual ~GrantMapper() = default;
  // Maps a batch; per-entry status. The Result fails only if the batch could not be attempted:
  // EOPNOTSUPP where the platform forbids this domain mappings (xpv-hv's copy mode): use Copy.
  virtual Result<std::unique_ptr<GrantMapping>> Map(std::span<const MapRequest> requests) = 0;
  // Executes a batch of copies; each op's `status` is set. A copy may not cross a page boundary
  // (GNTST_bad_copy_arg), as in Xen.
  virtual Status Copy(std::span<CopyOp> ops) = 0;
};

// ---------------------------------------------------------------------------------------------
// Event channels.

class EventChannels {
 public:
  virtual ~EventChannels() = default;
  // EVTCHNOP_alloc_unbound: a new port that `remote` may bind to.
  virtual Result<EvtchnPort> AllocUnbound(DomId remote) = 0;
  // EVTCHNOP_bind_interdomain: connects a new local port to `remote`'s unbound port. The new
  // local port starts pending, as in Xen.
  virtual Result<EvtchnPort> BindInterdomain(DomId remote, EvtchnPort remote_port) = 0;
  // EVTCHNOP_send. Needs no hypervisor round trip on the fast path.
  virtual Status Notify(EvtchnPort port) = 0;
  // EVTCHNOP_close: the remote end returns to unbound.
  virtual Status Close(EvtchnPort port) = 0;
  // Clears the port's mask; a notification that arrived while masked is delivered now.
  virtual Status Unmask(EvtchnPort port) = 0;
  // Readable when some port is pending: for epoll.
  virtual int fd() const = 0;
  // The next pending port, which is masked until Unmask (as Linux's /dev/xen/evtchn does), or
  // nullopt when none is pending.
  virtual std::optional<EvtchnPort> NextPending() = 0;
};

// ---------------------------------------------------------------------------------------------
// Privileged: foreign mappings and domain control (the toolstack, the store).

class ForeignPage {
 public:
  virtual ~ForeignPage() = default;
  virtual uint8_t* data() = 0;
};

struct DomainInfo {
  DomId domid;
  std::string name;
  uint64_t memory_kib = 0;
  uint32_t vcpus = 1;
  bool dying = false;
  bool shutdown = false;  // stopped (shut down or crashed), not yet destroyed
  int pid = 0;            // sim: the domain's process
};

class DomainControl {
 public:
  virtual ~DomainControl() = default;
  virtual Result<std::vector<DomainInfo>> List() = 0;
  virtual Status Destroy(DomId domid) = 0;
  // Maps one frame of `domid`'s RAM (xenforeignmemory_map): for the store's ring page.
  virtual Result<std::unique_ptr<ForeignPage>> MapForeign(DomId domid, Gfn gfn) = 0;
  // Readable when a domain died (VIRQ_DOM_EXC).
  virtual int death_fd() const = 0;
  // Domains that died since the last call.
  virtual std::vector<DomId> TakeDead() = 0;
  // Domains that shut down (stopped or crashed, not destroyed) since the last call, each once
  // until it runs again; the scan that TakeDead makes finds them. None on platforms whose
  // domains cannot be shut down without dying (xpv-hv).
  virtual std::vector<DomId> TakeShutdown() { return {}; }
};

// All of a domain's view of the platform, as one object.
class Platform {
 public:
  virtual ~Platform() = default;
  virtual DomId self() const = 0;
  virtual GuestMemory& memory() = 0;
  virtual GrantTable& grants() = 0;
  virtual GrantMapper& mapper() = 0;
  virtual EventChannels& events() = 0;
  // Null unless this domain is privileged.
  virtual DomainControl* control() = 0;
};

}  // namespace xpv::platform
