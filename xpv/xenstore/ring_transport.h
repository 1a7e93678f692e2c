// The domain transport: a guest's xenstore_domain_interface page and its event channel
// (xs_wire.h; docs/misc/xenstore-ring.txt), served exactly as Xen's daemon serves it: requests
// copied out of `req` once, replies and watch events written into `rsp`, the reconnection
// protocol and the error field.
//
// How the page is mapped and the channel bound is the platform's business: it hands the store a
// RingPort. MemoryRingPort is a page in this process plus two eventfds, for tests; the simulated
// hypervisor and real Xen provide their own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "xpv/abi/xs_wire.h"
#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/server.h"

namespace xpv::xenstore {

// A mapped ring page and its event channel, as seen from the store's side.
class RingPort {
 public:
  virtual ~RingPort() = default;
  // The shared page. Untrusted: the guest writes it at any time.
  virtual xenstore_domain_interface* page() = 0;
  // Readable when the guest has notified the channel.
  virtual int event_fd() = 0;
  // Consumes pending notifications (after event_fd() became readable).
  virtual void ClearEvent() = 0;
  // Notifies the guest.
  virtual void Notify() = 0;
  // Makes event_fd() readable again, as a notification from the guest would: the store found
  // work the guest published without notifying, and comes back to it on its next turn.
  virtual void SelfNotify() = 0;
};

// A page in this process's memory and two eventfds: one per direction. The "guest" side is the
// test that owns the object: it writes requests into page(), calls KickStore(), and waits on
// guest_fd() for the store's notifications.
class MemoryRingPort final : public RingPort {
 public:
  static Result<std::unique_ptr<MemoryRingPort>> Create();
  ~MemoryRingPort() override;

  xenstore_domain_interface* page() override { return page_; }
  int event_fd() override { return to_store_.get(); }
  void ClearEvent() override;
  void Notify() override;
  void SelfNotify() override { KickStore(); }

  // The guest's side.
  void KickStore();
  int guest_fd() const { return to_guest_.get(); }

 private:
  MemoryRingPort() = default;
  xenstore_domain_interface* page_ = nullptr;
  UniqueFd to_store_;
  UniqueFd to_guest_;
};

// Maps a domain's ring for the store: (domid, gfn from XS_INTRODUCE, event channel port).
using RingPortFactory =
    std::function<Result<std::unique_ptr<RingPort>>(DomId domid, uint64_t gfn, uint32_t port)>;

// DomainHooks over a RingPortFactory: INTRODUCE creates a ring connection, RELEASE drops it.
class RingDomains final : public DomainHooks {
 public:
  RingDomains(Server& server, RingPortFactory factory)
      : server_(server), factory_(std::move(factory)) {}
  ~RingDomains() override;

  Status Introduce(DomId domid, uint64_t gfn, uint32_t port) override;
  void Release(DomId domid) override;
  bool Exists(DomId domid) override { return domid.value < kDomIdFirstReserved; }

 private:
  class RingConn;
  Server& server_;
  RingPortFactory factory_;
  std::unordered_map<DomId, Pollable*> conns_;
};

}  // namespace xpv::xenstore
