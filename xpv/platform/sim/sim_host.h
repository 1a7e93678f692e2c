// SimHost: an xpv-hv running on a thread of this process, for tests and benchmarks of anything
// that uses the Platform. Its socket lives in a fresh temporary directory; domains are created by
// the host's own dom0 session and connected in this process, one Platform each, so each "domain"
// can be a thread. (For domains that are processes, give SimDomainSpec an argv.)
//
//   auto host = SimHost::Start();
//   auto front = (*host)->NewDomain({.name = "front"});
//   auto back = (*host)->NewDomain({.name = "back", .mode = MappingMode::kMap});
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "xpv/base/result.h"
#include "xpv/platform/sim/client.h"
#include "xpv/platform/sim/hypervisor.h"

namespace xpv::platform::sim {

class HvServer;

class SimHost {
 public:
  static Result<std::unique_ptr<SimHost>> Start(const HypervisorOptions& options = {});
  // Stops the hypervisor (domains it spawned are killed); Platforms still open see their
  // connection fail from then on.
  ~SimHost();

  const std::string& socket_path() const { return socket_path_; }
  // A new dom0 toolstack session.
  Result<std::unique_ptr<SimPlatform>> Dom0();
  // Creates a domain and connects to it here. `created`, if given, receives what CreateDomain
  // returned (its store page and port, for XS_INTRODUCE).
  Result<std::unique_ptr<SimPlatform>> NewDomain(const SimDomainSpec& spec,
                                                 SimDomain* created = nullptr);
  // The host's own dom0 session, which creates the domains.
  SimPlatform& dom0() { return *dom0_; }
  SimDomainControl& control() { return *dom0_->sim_control(); }

 private:
  SimHost() = default;
  std::string dir_;
  std::string socket_path_;
  std::unique_ptr<HvServer> server_;
  std::thread thread_;
  std::unique_ptr<SimPlatform> dom0_;
};

}  // namespace xpv::platform::sim
