// What a program running as a domain needs to talk to the world: its Platform, a PortDispatcher
// over its event channels, and a store client. Used by xpv-blkback and `xpv blk`.
//
//   sim  xpv-hv: in a process xpv-hv started as a domain ($XPV_HV_FD), the store is reached
//        through the domain's own store ring, as its xenbus would; otherwise the process is a
//        dom0 session and uses the store's socket.
//   xen  real Xen, in dom0: the store's socket (xenstored's, or xpv-xenstored's).
#pragma once

#include <memory>
#include <string>

#include "xpv/base/result.h"
#include "xpv/platform/platform.h"
#include "xpv/platform/port_dispatcher.h"
#include "xpv/xenstore/client.h"

namespace xpv::toolstack {

struct DomainEnv {
  std::unique_ptr<platform::Platform> platform;
  std::unique_ptr<platform::PortDispatcher> ports;
  std::unique_ptr<xenstore::Client> store;
  bool store_over_ring = false;
};

// `platform_name` is "sim" or "xen". `store_socket` empty: Client::DefaultSocketPath().
Result<DomainEnv> ConnectDomainEnv(const std::string& platform_name,
                                   const std::string& store_socket = {});

}  // namespace xpv::toolstack
