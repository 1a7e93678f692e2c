// xpv-blkback: the blkif backend. Serves every vbd the toolstack puts under this domain's
// backend/vbd directory, from raw image files or block devices, through io_uring.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>

#include "xpv/base/log.h"
#include "xpv/block/blkback.h"
#include "xpv/block/sandbox.h"
#include "xpv/toolstack/domain_env.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
int Fail(const char* what, const xpv::Error& e) {
  std::fprintf(stderr, "xpv-blkback: %s: %s (%s)\n", what, std::string(e.message).c_str(),
               std::strerror(e.code));
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  xpv::block::BackendOptions opt;
  CLI::App app{"xpv-blkback: the blkif backend of xpv (one process, every vbd of this domain)"};
  std::string platform = "sim", store_socket, user, caching = "buffered", log_level = "info";
  bool seccomp = false, no_persistent = false;
  app.add_option("--platform", platform, "sim (xpv-hv) or xen")
      ->check(CLI::IsMember({"sim", "xen"}))
      ->capture_default_str();
  app.add_option("--store-socket", store_socket,
                 "the store's socket when not a domain of xpv-hv (default: $XENSTORED_PATH...)");
  app.add_option("--max-queues", opt.max_queues, "multi-queue-max-queues")->capture_default_str();
  app.add_option("--max-ring-page-order", opt.max_ring_page_order, "max-ring-page-order")
      ->check(CLI::Range(0, 8))
      ->capture_default_str();
  app.add_option("--max-indirect-segments", opt.max_indirect_segments,
                 "feature-max-indirect-segments (0: no indirect descriptors)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_flag("--no-persistent", no_persistent, "do not offer feature-persistent");
  app.add_option("--caching", caching, "buffered or direct (O_DIRECT)")
      ->check(CLI::IsMember({"buffered", "direct"}))
      ->capture_default_str();
  app.add_option("--user", user, "after start-up, drop to this user");
  app.add_flag("--seccomp", seccomp, "after start-up, confine system calls with seccomp");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  opt.persistent = !no_persistent;
  opt.caching = caching == "direct" ? xpv::block::Caching::kDirect : xpv::block::Caching::kBuffered;
  xpv::InitLogging("xpv-blkback", xpv::LogSink::kStderr, log_level);

  auto env = xpv::toolstack::ConnectDomainEnv(platform, store_socket);
  if (!env) return Fail("connecting", env.error());
  auto bb = xpv::block::Blkback::Create(*env->platform, *env->ports, *env->store, opt);
  if (!bb) return Fail("starting", bb.error());
  if (!user.empty()) {
    if (auto st = xpv::block::DropToUser(user); !st) return Fail("--user", st.error());
  }
  if (seccomp) {
    if (auto st = xpv::block::InstallSeccompFilter(); !st) return Fail("--seccomp", st.error());
  }
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  spdlog::info("serving vbds of domain {}{}{}", env->platform->self().value,
               user.empty() ? "" : " as " + user, seccomp ? " under seccomp" : "");
  while (!g_stop) {
    if (auto st = (*bb)->RunOnce(500); !st) return Fail("loop", st.error());
  }
  return 0;
}
