#include "xpv/xenstore/daemon.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>

#include "xpv/platform/platform.h"
#include "xpv/xenstore/client.h"
#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/journal.h"
#include "xpv/xenstore/platform_ring.h"
#include "xpv/xenstore/ring_transport.h"
#include "xpv/xenstore/server.h"

namespace xpv::xenstore {

namespace {

Server* g_server = nullptr;

void OnStopSignal(int) {
  if (g_server) g_server->Stop();
}

void RaiseFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// Calls `fn` when the descriptor the loop watches becomes readable (the platform's event
// channels, its death notifications). Not owned by the server.
class FdWatch final : public Pollable {
 public:
  explicit FdWatch(std::function<void()> fn) : fn_(std::move(fn)) {}
  void OnReady(uint32_t) override { fn_(); }

 private:
  std::function<void()> fn_;
};

}  // namespace

std::string DefaultSocketPath() {
  return Client::DefaultSocketPath();
}

int RunDaemon(const DaemonOptions& options) {
  InitLogging("xpv-xenstored", options.log_sink, options.log_level);
  RaiseFileLimit();
  ::signal(SIGPIPE, SIG_IGN);

  EngineOptions eo;
  eo.quotas = options.quotas;
  Engine engine(eo);

  std::unique_ptr<Journal> journal;
  if (!options.state_dir.empty()) {
    auto j = Journal::Open(options.state_dir, engine,
                           options.fsync ? Durability::kPowerLoss : Durability::kProcessCrash);
    if (!j) {
      spdlog::error("state dir {}: {} ({})", options.state_dir, j.error().message,
                    std::strerror(j.error().code));
      return 1;
    }
    journal = std::move(*j);
  }

  ServerOptions so;
  so.socket_path = options.socket_path.empty() ? DefaultSocketPath() : options.socket_path;
  auto server = Server::Create(engine, journal.get(), so);
  if (!server) {
    spdlog::error("socket {}: {} ({})", so.socket_path, server.error().message,
                  std::strerror(server.error().code));
    return 1;
  }
  // Domain rings over the platform, and deaths turned into @releaseDomain.
  std::unique_ptr<PlatformRings> rings;
  std::unique_ptr<RingDomains> ring_domains;
  std::unique_ptr<FdWatch> event_watch, death_watch;
  platform::DomainControl* control = options.platform ? options.platform->control() : nullptr;
  if (options.platform) {
    if (!control) {
      spdlog::error("platform: this domain is not privileged: cannot map domains' rings");
      return 1;
    }
    rings = std::make_unique<PlatformRings>(
        *control, options.platform->events(),
        options.map_store_grant ? &options.platform->mapper() : nullptr);
    ring_domains = std::make_unique<RingDomains>(**server, rings->Factory());
    engine.set_domain_hooks(ring_domains.get());
    event_watch = std::make_unique<FdWatch>([&] { rings->Dispatch(); });
    death_watch = std::make_unique<FdWatch>([&] {
      for (DomId d : control->TakeDead()) {
        spdlog::info("domain {} died", d.value);
        engine.DomainGone(d);
      }
      for (DomId d : control->TakeShutdown()) {
        spdlog::info("domain {} shut down", d.value);
        engine.DomainShutdown(d);
      }
    });
    Status st = (*server)->Add(rings->event_fd(), POLLIN, event_watch.get());
    if (st) st = (*server)->Add(control->death_fd(), POLLIN, death_watch.get());
    if (!st) {
      spdlog::error("platform: {} ({})", st.error().message, std::strerror(st.error().code));
      return 1;
    }
    if (options.local_ring_page) {
      const DomId self = options.platform->self();
      rings->SetLocal(self, options.local_ring_page);
      if (Status local = ring_domains->Introduce(self, 0, options.local_ring_port); !local) {
        spdlog::error("local ring (domain {}, port {}): {} ({})", self.value,
                      options.local_ring_port, local.error().message,
                      std::strerror(local.error().code));
        return 1;
      }
      spdlog::info("serving the local ring of domain {} on port {}", self.value,
                   options.local_ring_port);
    }
    spdlog::info("serving domains' rings as domain {}", options.platform->self().value);
  }
  if (!options.pid_file.empty()) {
    std::ofstream(options.pid_file) << ::getpid() << "\n";
  }

  g_server = server->get();
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  spdlog::info("listening on {}{}", so.socket_path,
               options.state_dir.empty() ? "" : ", state in " + options.state_dir);
  const int rc = (*server)->Run();
  g_server = nullptr;
  if (options.platform) {
    (*server)->Remove(rings->event_fd());
    (*server)->Remove(control->death_fd());
    engine.set_domain_hooks(nullptr);
    ring_domains.reset();
  }
  server->reset();
  journal.reset();  // flushes
  if (!options.pid_file.empty()) ::unlink(options.pid_file.c_str());
  ::unlink(so.socket_path.c_str());
  spdlog::info("stopped");
  return rc;
}

}  // namespace xpv::xenstore
