#include "xpv/toolstack/domain_env.h"

#include "xpv/platform/sim/client.h"
#include "xpv/platform/xen/xen_platform.h"

namespace xpv::toolstack {

Result<DomainEnv> ConnectDomainEnv(const std::string& platform_name,
                                   const std::string& store_socket) {
  DomainEnv env;
  std::optional<Gfn> store_gfn;
  std::optional<EvtchnPort> store_port;
  if (platform_name == "sim") {
    XPV_ASSIGN_OR_RETURN(std::unique_ptr<platform::sim::SimPlatform> sim,
                         platform::sim::ConnectSim());
    store_gfn = sim->store_gfn();
    store_port = sim->store_port();
    env.platform = std::move(sim);
  } else if (platform_name == "xen") {
    XPV_ASSIGN_OR_RETURN(env.platform, platform::xen::ConnectXen());
  } else {
    return Err(EINVAL, "unknown platform (sim or xen)");
  }
  env.ports = std::make_unique<platform::PortDispatcher>(env.platform->events());
  if (store_gfn && store_port) {
    // SAFETY: the store page is one whole page of this domain's own RAM.
    auto* page = reinterpret_cast<xenstore_domain_interface*>(
        env.platform->memory().PageAddress(*store_gfn));
    XPV_ASSIGN_OR_RETURN(xenstore::Client c,
                         xenstore::Client::ConnectRing(page, *env.ports, *store_port));
    env.store = std::make_unique<xenstore::Client>(std::move(c));
    env.store_over_ring = true;
  } else {
    XPV_ASSIGN_OR_RETURN(
        xenstore::Client c,
        xenstore::Client::Connect(store_socket.empty() ? xenstore::Client::DefaultSocketPath()
                                                       : store_socket));
    env.store = std::make_unique<xenstore::Client>(std::move(c));
  }
  return env;
}

}  // namespace xpv::toolstack
