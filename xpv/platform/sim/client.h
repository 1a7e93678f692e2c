// The Platform of a process that is a domain of xpv-hv, the simulated hypervisor.
//
//   auto platform = xpv::platform::sim::ConnectSim();   // in a process xpv-hv started, or dom0
//
// ConnectSim() uses the connection xpv-hv gave the process ($XPV_HV_FD) when there is one, and
// otherwise connects to xpv-hv's socket as a domain-0 toolstack session. A process that already
// holds a domain's connection (a test thread, a daemon the toolstack launched itself) calls
// ConnectSimDomain(fd); a daemon that should be a privileged domain of its own (xpv-xenstored)
// calls ConnectSimService(). docs/xpv-hv.md describes the three ways in.
//
// What a SimPlatform hands out (mappings, foreign pages) must not outlive it. Its methods may
// be called from several threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/platform/platform.h"
#include "xpv/platform/sim/config.h"

namespace xpv::platform::sim {

// A domain for xpv-hv to create.
struct SimDomainSpec {
  std::string name;
  uint64_t memory_mib = 16;
  MappingMode mode = MappingMode::kCopy;
  Privilege privilege = Privilege::kNone;  // or kService
  DomId store_domid = kDom0;               // who may map its store page and bind its store port
  uint32_t grant_frames = kDefaultGrantFrames;
  uint32_t vcpus = 1;  // 1..kMaxVcpus, as xl.cfg's `vcpus`; shown by List()
  // The program to run as the domain (argv[0] is searched in PATH). Empty: no process; the
  // domain's connection comes back in SimDomain::connection instead.
  std::vector<std::string> argv;
};

struct SimDomain {
  DomId domid;
  uint64_t incarnation = 0;
  Gfn store_gfn;          // its store page: grant ref 1, granted to store_domid
  EvtchnPort store_port;  // unbound, offered to store_domid: what XS_INTRODUCE needs
  int pid = 0;
  UniqueFd
      connection;  // when argv was empty: give it to ConnectSimDomain() in any process or thread
};

class SimDomainControl : public DomainControl {
 public:
  // Creates a domain (domain 0 only).
  virtual Result<SimDomain> CreateDomain(const SimDomainSpec& spec) = 0;
};

// EVTCHNOP_status.
struct SimPortStatus {
  uint32_t status = 0;  // EVTCHNSTAT_*
  DomId remote;
  EvtchnPort remote_port;
};

class SimPlatform : public Platform {
 public:
  virtual MappingMode mode() const = 0;
  virtual Privilege privilege() const = 0;
  // What Xen puts in start_info: the domain's store page and event channel (none for dom0).
  virtual std::optional<Gfn> store_gfn() const = 0;
  virtual std::optional<EvtchnPort> store_port() const = 0;
  virtual Result<SimPortStatus> PortStatus(EvtchnPort port) = 0;
  // Null unless this is domain 0 (or, for the DomainControl part, a service domain).
  virtual SimDomainControl* sim_control() = 0;
};

// $XPV_HV_FD if set (and then unset, so children do not inherit the claim), else a dom0 session
// on DefaultSocketPath().
Result<std::unique_ptr<SimPlatform>> ConnectSim();
// A domain's connection, as CreateDomain returned it or xpv-hv passed it to the process.
Result<std::unique_ptr<SimPlatform>> ConnectSimDomain(UniqueFd connection);
// A domain-0 toolstack session. Empty path: DefaultSocketPath().
Result<std::unique_ptr<SimPlatform>> ConnectSimDom0(const std::string& socket_path = {});

struct SimServiceSpec {
  std::string name;
  uint64_t memory_mib = 16;
  MappingMode mode = MappingMode::kCopy;
};
// A new privileged service domain whose lifetime is this connection's (e.g. xpv-xenstored).
Result<std::unique_ptr<SimPlatform>> ConnectSimService(const std::string& socket_path,
                                                       const SimServiceSpec& spec);

}  // namespace xpv::platform::sim
