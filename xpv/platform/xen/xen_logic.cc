#include "xpv/platform/xen/xen_logic.h"

#include <algorithm>
#include <cerrno>

namespace xpv::platform::xen {

GrantStatus GrantStatusFromErrno(int err) {
  switch (err) {
    case 0:
      return GrantStatus::kOkay;
    case EINVAL:
    case ENOENT:
      return GrantStatus::kBadGntref;
    case ESRCH:
      return GrantStatus::kBadDomain;
    case EPERM:
    case EACCES:
      return GrantStatus::kPermissionDenied;
    case EAGAIN:
      return GrantStatus::kEagain;
    case ENOMEM:
    case ENOSPC:
      return GrantStatus::kNoDeviceSpace;
    case EFAULT:
      return GrantStatus::kBadVirtAddr;
    default:
      return GrantStatus::kGeneralError;
  }
}

void DeathTracker::Reset(std::span<const DomainState> scan) {
  alive_.clear();
  reported_.clear();
  shutdown_.clear();
  new_shutdown_.clear();
  for (const DomainState& d : scan) {
    if (!d.dying) alive_.insert(d.domid.value);
    if (d.shutdown && !d.dying) shutdown_.insert(d.domid.value);  // known before we started
  }
}

std::vector<DomId> DeathTracker::Update(std::span<const DomainState> scan) {
  std::vector<DomId> dead;
  std::unordered_set<uint32_t> alive, listed, shutdown;
  for (const DomainState& d : scan) {
    listed.insert(d.domid.value);
    if (d.shutdown && !d.dying) {
      shutdown.insert(d.domid.value);
      if (!shutdown_.contains(d.domid.value)) new_shutdown_.emplace_back(d.domid.value);
    }
    if (!d.dying) {
      alive.insert(d.domid.value);
      reported_.erase(d.domid.value);  // a reused domid is a new domain
    } else if (reported_.insert(d.domid.value).second) {
      // Dying and not yet reported: whether we saw it alive or it lived and died between scans.
      dead.emplace_back(d.domid.value);
    }
  }
  // Gone without our seeing it dying (its last reference dropped between two scans).
  for (uint32_t id : alive_) {
    if (!listed.contains(id)) dead.emplace_back(id);
  }
  // Zombies that are gone now need no more memory.
  std::erase_if(reported_, [&](uint32_t id) { return !listed.contains(id); });
  alive_ = std::move(alive);
  shutdown_ = std::move(shutdown);
  std::sort(new_shutdown_.begin(), new_shutdown_.end());
  std::sort(dead.begin(), dead.end());
  return dead;
}

}  // namespace xpv::platform::xen
