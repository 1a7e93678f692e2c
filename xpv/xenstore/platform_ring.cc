#include "xpv/xenstore/platform_ring.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "xpv/base/unique_fd.h"

namespace xpv::xenstore {

// State the factory's ports share with the dispatcher: a port outlives neither the platform
// nor, through this shared_ptr, the table it unregisters from.
struct PlatformRings::Shared {
  Shared(platform::DomainControl& c, platform::EventChannels& e, platform::GrantMapper* m)
      : control(c), events(e), mapper(m) {}
  platform::DomainControl& control;
  platform::EventChannels& events;
  platform::GrantMapper* mapper;  // null: map by gfn only
  std::optional<DomId> local_domid;
  platform::ForeignPage* local_page = nullptr;
  std::mutex mu;
  std::unordered_map<uint32_t, int> kick_fds;  // local port -> that ring's eventfd
};

namespace {

// A page mapped through a grant, seen as a ForeignPage.
class GrantedPage final : public platform::ForeignPage {
 public:
  explicit GrantedPage(std::unique_ptr<platform::GrantMapping> m) : mapping_(std::move(m)) {}
  uint8_t* data() override { return mapping_->page(0); }

 private:
  std::unique_ptr<platform::GrantMapping> mapping_;
};

// The local ring page, owned by whoever called SetLocal.
class BorrowedPage final : public platform::ForeignPage {
 public:
  explicit BorrowedPage(platform::ForeignPage* page) : page_(page) {}
  uint8_t* data() override { return page_->data(); }

 private:
  platform::ForeignPage* page_;
};

Result<std::unique_ptr<platform::ForeignPage>> MapStorePage(PlatformRings::Shared& shared,
                                                            DomId domid, uint64_t gfn) {
  if (shared.local_domid == domid && shared.local_page)
    return std::unique_ptr<platform::ForeignPage>(new BorrowedPage(shared.local_page));
  if (shared.mapper) {
    // Xen 4.17's map_interface(): grant ref 1, which the toolstack set up for the store domain
    // (xc_dom_gnttab_init); unlike Xen, fall back to the gfn when the grant cannot be mapped.
    const platform::MapRequest req{domid, kGrantRefXenstore, platform::Access::kReadWrite};
    auto m = shared.mapper->Map(std::span(&req, 1));
    if (m && (*m)->size() == 1 && (*m)->status(0) == platform::GrantStatus::kOkay)
      return std::unique_ptr<platform::ForeignPage>(new GrantedPage(std::move(*m)));
  }
  return shared.control.MapForeign(domid, Gfn(gfn));
}

class PlatformRingPort final : public RingPort {
 public:
  PlatformRingPort(std::shared_ptr<PlatformRings::Shared> shared,
                   std::unique_ptr<platform::ForeignPage> page, EvtchnPort local, UniqueFd kick)
      : shared_(std::move(shared)), page_(std::move(page)), local_(local), kick_(std::move(kick)) {
    std::lock_guard lock(shared_->mu);
    shared_->kick_fds[local_.value] = kick_.get();
  }
  ~PlatformRingPort() override {
    {
      std::lock_guard lock(shared_->mu);
      shared_->kick_fds.erase(local_.value);
    }
    (void)shared_->events.Close(local_);
  }

  xenstore_domain_interface* page() override {
    // SAFETY: the foreign page is one whole page, the size of xenstore_domain_interface, mapped
    // for this object's lifetime; the ring code reads it through copies only.
    return reinterpret_cast<xenstore_domain_interface*>(page_->data());
  }
  int event_fd() override { return kick_.get(); }
  void ClearEvent() override {
    uint64_t n = 0;
    while (::read(kick_.get(), &n, sizeof n) == static_cast<ssize_t>(sizeof n)) {
    }
  }
  void Notify() override { (void)shared_->events.Notify(local_); }
  void SelfNotify() override {
    const uint64_t one = 1;
    (void)!::write(kick_.get(), &one, sizeof one);
  }

 private:
  std::shared_ptr<PlatformRings::Shared> shared_;
  std::unique_ptr<platform::ForeignPage> page_;
  EvtchnPort local_;
  UniqueFd kick_;
};

}  // namespace

PlatformRings::PlatformRings(platform::DomainControl& control, platform::EventChannels& events,
                             platform::GrantMapper* mapper)
    : shared_(std::make_shared<Shared>(control, events, mapper)) {}

void PlatformRings::SetLocal(DomId self, platform::ForeignPage* page) {
  shared_->local_domid = self;
  shared_->local_page = page;
}

PlatformRings::~PlatformRings() = default;

int PlatformRings::event_fd() const {
  return shared_->events.fd();
}

RingPortFactory PlatformRings::Factory() {
  return [shared = shared_](DomId domid, uint64_t gfn,
                            uint32_t port) -> Result<std::unique_ptr<RingPort>> {
    XPV_ASSIGN_OR_RETURN(std::unique_ptr<platform::ForeignPage> page,
                         MapStorePage(*shared, domid, gfn));
    UniqueFd kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!kick.valid()) return Err(errno, "eventfd");
    XPV_ASSIGN_OR_RETURN(EvtchnPort local, shared->events.BindInterdomain(domid, EvtchnPort(port)));
    // Xen's dom0_init(): the local kernel waits for this first notification before it probes.
    if (shared->local_domid == domid && shared->local_page) (void)shared->events.Notify(local);
    return std::unique_ptr<RingPort>(
        new PlatformRingPort(shared, std::move(page), local, std::move(kick)));
  };
}

void PlatformRings::Dispatch() {
  // Drain first, unmask after: a port NextPending reported stays masked until Unmask, so the
  // drain ends after at most one round of the bound ports however fast guests notify, and it
  // leaves the descriptor quiet (the loop need not report a descriptor that stayed ready).
  std::vector<EvtchnPort> pending;
  while (std::optional<EvtchnPort> port = shared_->events.NextPending()) pending.push_back(*port);
  for (EvtchnPort port : pending) {
    int fd = -1;
    {
      std::lock_guard lock(shared_->mu);
      auto it = shared_->kick_fds.find(port.value);
      if (it != shared_->kick_fds.end()) fd = it->second;
    }
    if (fd >= 0) {
      const uint64_t one = 1;
      (void)!::write(fd, &one, sizeof one);
    }
    // A notification that came meanwhile is reported again now (the descriptor turns readable).
    (void)shared_->events.Unmask(port);
  }
}

}  // namespace xpv::xenstore
