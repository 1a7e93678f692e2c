#include "xpv/platform/port_dispatcher.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

namespace xpv::platform {

Result<int> PortDispatcher::Register(EvtchnPort port) {
  UniqueFd kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!kick.valid()) return Err(errno, "eventfd");
  std::lock_guard lock(mu_);
  auto [it, inserted] = kicks_.try_emplace(port.value, std::move(kick));
  if (!inserted) return Err(EEXIST, "port already registered");
  return it->second.get();
}

void PortDispatcher::Unregister(EvtchnPort port) {
  std::lock_guard lock(mu_);
  kicks_.erase(port.value);
}

void PortDispatcher::Dispatch() {
  // Drain first, unmask after: a port NextPending reported stays masked until Unmask, so the
  // drain ends after at most one round of the bound ports however fast peers notify.
  std::vector<EvtchnPort> pending;
  while (std::optional<EvtchnPort> port = events_.NextPending()) pending.push_back(*port);
  {
    std::lock_guard lock(mu_);
    for (EvtchnPort port : pending) {
      auto it = kicks_.find(port.value);
      if (it == kicks_.end()) continue;
      const uint64_t one = 1;
      (void)!::write(it->second.get(), &one, sizeof one);
    }
  }
  // A notification that came meanwhile is reported again now (the descriptor turns readable).
  for (EvtchnPort port : pending) (void)events_.Unmask(port);
}

void PortDispatcher::Clear(int kick_fd) {
  uint64_t n = 0;
  while (::read(kick_fd, &n, sizeof n) == static_cast<ssize_t>(sizeof n)) {
  }
}

}  // namespace xpv::platform
