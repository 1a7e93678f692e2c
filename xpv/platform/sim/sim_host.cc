#include "xpv/platform/sim/sim_host.h"

#include <unistd.h>

#include <cstdlib>

#include "xpv/platform/sim/daemon.h"

namespace xpv::platform::sim {

Result<std::unique_ptr<SimHost>> SimHost::Start(const HypervisorOptions& options) {
  std::unique_ptr<SimHost> host(new SimHost());
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/xpv-hv-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) return Err(errno, "mkdtemp");
  host->dir_ = templ;
  host->socket_path_ = templ + "/hv.sock";
  HvOptions o;
  o.socket_path = host->socket_path_;
  o.hypervisor = options;
  XPV_ASSIGN_OR_RETURN(host->server_, HvServer::Create(o));
  host->thread_ = std::thread([s = host->server_.get()] { s->Run(); });
  XPV_ASSIGN_OR_RETURN(host->dom0_, ConnectSimDom0(host->socket_path_));
  return host;
}

SimHost::~SimHost() {
  dom0_.reset();
  if (server_) server_->Stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

Result<std::unique_ptr<SimPlatform>> SimHost::Dom0() {
  return ConnectSimDom0(socket_path_);
}

Result<std::unique_ptr<SimPlatform>> SimHost::NewDomain(const SimDomainSpec& spec,
                                                        SimDomain* created) {
  XPV_ASSIGN_OR_RETURN(SimDomain d, control().CreateDomain(spec));
  std::unique_ptr<SimPlatform> p;
  if (spec.argv.empty()) {
    XPV_ASSIGN_OR_RETURN(p, ConnectSimDomain(std::move(d.connection)));
  }
  if (created != nullptr) *created = std::move(d);
  return p;
}

}  // namespace xpv::platform::sim
