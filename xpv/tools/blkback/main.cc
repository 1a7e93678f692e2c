// xpv-blkback: the blkif backend. Serves every vbd the toolstack puts under this domain's
// backend/vbd directory (or backend/qdisk, or only one frontend domain's), from raw image files
// or block devices, through io_uring. On real Xen, xpv-blkback-dm runs it as the device model
// libxl starts for a domain with `backendtype=qdisk` disks (docs/block.md, "On real Xen").
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "xpv/base/log.h"
#include "xpv/block/blkback.h"
#include "xpv/block/sandbox.h"
#include "xpv/tools/blkback/qmp_stub.h"
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
  bool seccomp = false, no_persistent = false, device_model = false;
  std::optional<uint32_t> frontend_domid;
  std::string qmp_socket;
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
  app.add_flag("--grant-copy", opt.grant_copy,
               "copy every page with grant copy and map none (copy mode; no persistent grants)");
  app.add_option("--caching", caching, "buffered or direct (O_DIRECT)")
      ->check(CLI::IsMember({"buffered", "direct"}))
      ->capture_default_str();
  app.add_option("--backend-type", opt.backend_type,
                 "the backend directory to serve: vbd (Linux blkback's) or qdisk (QEMU's)")
      ->check(CLI::IsMember({"vbd", "qdisk"}))
      ->capture_default_str();
  app.add_option("--frontend-domid", frontend_domid, "serve only this domain's devices")
      ->check(CLI::Range(1u, 0x7fefu));
  app.add_flag("--device-model", device_model,
               "stand in for the device model libxl started for --frontend-domid: write "
               "device-model/<domid>/state = running once serving")
      ->needs("--frontend-domid");
  app.add_option("--qmp-socket", qmp_socket,
                 "answer libxl's QMP queries on this socket (QEMU's -chardev ...,path=)");
  app.add_option("--user", user, "after start-up, drop to this user");
  app.add_flag("--seccomp", seccomp, "after start-up, confine system calls with seccomp");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  opt.persistent = !no_persistent;
  if (frontend_domid) opt.frontend = xpv::DomId(*frontend_domid);
  opt.caching = caching == "direct" ? xpv::block::Caching::kDirect : xpv::block::Caching::kBuffered;
  xpv::InitLogging("xpv-blkback", xpv::LogSink::kStderr, log_level);

  auto env = xpv::toolstack::ConnectDomainEnv(platform, store_socket);
  if (!env) return Fail("connecting", env.error());
  auto bb = xpv::block::Blkback::Create(*env->platform, *env->ports, *env->store, opt);
  if (!bb) return Fail("starting", bb.error());
  std::unique_ptr<xpv::tools::QmpStub> qmp;
  if (!qmp_socket.empty()) {
    auto q = xpv::tools::QmpStub::Listen(qmp_socket);
    if (!q) return Fail("--qmp-socket", q.error());
    qmp = std::move(*q);
  }
  if (device_model) {
    // libxl_dm.c waits for this node (spawn->xspath) before it asks anything over QMP.
    const std::string state = fmt::format("/local/domain/{}/device-model/{}/state",
                                          env->platform->self().value, *frontend_domid);
    if (auto st = env->store->Write(state, "running"); !st) return Fail(state.c_str(), st.error());
  }
  if (!user.empty()) {
    if (auto st = xpv::block::DropToUser(user); !st) return Fail("--user", st.error());
  }
  if (seccomp) {
    if (auto st = xpv::block::InstallSeccompFilter(); !st) return Fail("--seccomp", st.error());
  }
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  // libxl ends a device model with SIGHUP (libxl__kill_xs_path).
  std::signal(SIGHUP, [](int) { g_stop = 1; });
  spdlog::info("serving backend/{} of domain {}{}{}{}", opt.backend_type,
               env->platform->self().value,
               frontend_domid ? fmt::format(" for domain {}", *frontend_domid) : "",
               user.empty() ? "" : " as " + user, seccomp ? " under seccomp" : "");
  while (!g_stop) {
    if (auto st = (*bb)->RunOnce(500); !st) return Fail("loop", st.error());
  }
  return 0;
}
