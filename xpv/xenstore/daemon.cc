#include "xpv/xenstore/daemon.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "xpv/xenstore/client.h"
#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/journal.h"
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

}  // namespace

std::string DefaultSocketPath() { return Client::DefaultSocketPath(); }

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
  if (!options.pid_file.empty()) {
    std::ofstream(options.pid_file) << ::getpid() << "\n";
  }

  g_server = server->get();
  struct sigaction sa{};
  sa.sa_handler = OnStopSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  spdlog::info("listening on {}{}", so.socket_path,
               options.state_dir.empty() ? "" : ", state in " + options.state_dir);
  const int rc = (*server)->Run();
  g_server = nullptr;
  server->reset();
  journal.reset();  // flushes
  if (!options.pid_file.empty()) ::unlink(options.pid_file.c_str());
  ::unlink(so.socket_path.c_str());
  spdlog::info("stopped");
  return rc;
}

}  // namespace xpv::xenstore
