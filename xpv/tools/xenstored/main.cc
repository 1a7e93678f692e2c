// xpv-xenstored: a xenstore daemon wire-compatible with Xen's (xs_wire.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <memory>

#include "xpv/platform/sim/client.h"
#include "xpv/platform/xen/xen_platform.h"
#include "xpv/xenstore/daemon.h"

int main(int argc, char** argv) {
  using xpv::xenstore::QuotaKind;
  xpv::xenstore::DaemonOptions opt;
  CLI::App app{"xpv-xenstored: the xenstore daemon of xpv, wire-compatible with Xen's"};
  app.add_option("-s,--socket", opt.socket_path,
                 "Unix socket to listen on (default: $XENSTORED_PATH, else "
                 "$XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket)");
  app.add_option("--state-dir", opt.state_dir,
                 "keep the store in DIR: it survives restarts, and kill -9 loses no "
                 "acknowledged write");
  app.add_flag("--fsync", opt.fsync, "with --state-dir: fdatasync before acknowledging writes");
  app.add_option("-F,--pid-file", opt.pid_file, "write the daemon's pid to FILE");
  bool syslog = false;
  app.add_flag("--syslog", syslog, "log to syslog instead of stderr");
  app.add_option("--log-level", opt.log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  bool no_fork = false;
  app.add_flag("-N,--no-fork", no_fork, "accepted for compatibility: xpv-xenstored never forks");

  // Xen 4.17 xenstored's quota flags.
  auto quota = [&](const char* flags, QuotaKind kind, const char* what) {
    app.add_option_function<uint32_t>(
           flags, [&opt, kind](uint32_t v) { opt.quotas.set(kind, v); }, what)
        ->type_name("N");
  };
  quota("-E,--entry-nb", QuotaKind::kNodes, "nodes a domain may own (1000)");
  quota("-S,--entry-size", QuotaKind::kNodeSize, "bytes in a node's value (2048)");
  quota("-W,--watch-nb", QuotaKind::kWatches, "watches per domain (128)");
  quota("-t,--transaction", QuotaKind::kTransactions, "open transactions per domain (10)");
  quota("-A,--perm-nb", QuotaKind::kPermissions, "permission entries per node (5)");
  quota("-M,--path-max", QuotaKind::kPathMax, "path length without /local/domain/N/ (2048)");
  std::vector<std::string> named;
  app.add_option("-Q,--quota", named, "NAME=VALUE, with Xen's quota names (see CONTROL quota)");

  std::string platform = "none";
  app.add_option("--platform", platform,
                 "serve domains' rings on a hypervisor: none (dom0 socket only), sim (xpv-hv) "
                 "or xen (real Xen, in place of Xen's xenstored in dom0)")
      ->check(CLI::IsMember({"none", "sim", "xen"}))
      ->capture_default_str();
  std::string hv_socket;
  app.add_option(
      "--hv-socket", hv_socket,
      "with --platform sim: xpv-hv's socket (default: $XPV_HV_SOCKET, else xpv-hv's default)");

  CLI11_PARSE(app, argc, argv);
  for (const auto& nv : named) {
    auto eq = nv.find('=');
    auto kind =
        eq == std::string::npos ? std::nullopt : xpv::xenstore::Quotas::Find(nv.substr(0, eq));
    if (!kind) {
      std::fprintf(stderr, "xpv-xenstored: --quota %s: expected NAME=VALUE\n", nv.c_str());
      return 2;
    }
    opt.quotas.set(*kind, static_cast<uint32_t>(std::stoul(nv.substr(eq + 1))));
  }
  opt.log_sink = syslog ? xpv::LogSink::kSyslog : xpv::LogSink::kStderr;
  std::unique_ptr<xpv::platform::sim::SimPlatform> sim;
  std::unique_ptr<xpv::platform::xen::XenPlatform> xen;
  xpv::platform::xen::LocalStoreRing local;
  if (platform == "xen") {
    auto p = xpv::platform::xen::ConnectXen({.watch_deaths = true});
    if (!p) {
      std::fprintf(stderr, "xpv-xenstored: xen: %s (%s)\n", std::string(p.error().message).c_str(),
                   std::strerror(p.error().code));
      return 1;
    }
    xen = std::move(*p);
    // Xen's dom0_init(): the local kernel's ring (XS_LOCAL), served before anything else.
    auto l = xen->OpenLocalStoreRing();
    if (!l) {
      std::fprintf(stderr, "xpv-xenstored: xen: %s (%s)\n", std::string(l.error().message).c_str(),
                   std::strerror(l.error().code));
      return 1;
    }
    local = std::move(*l);
    opt.platform = xen.get();
    opt.map_store_grant = true;
    opt.local_ring_page = local.page.get();
    opt.local_ring_port = local.port.value;
  }
  if (platform == "sim") {
    // Xen's xenstore stub domain is a domain: so is this daemon on xpv-hv, a privileged service.
    auto p = xpv::platform::sim::ConnectSimService(hv_socket, {.name = "xenstored"});
    if (!p) {
      std::fprintf(stderr, "xpv-xenstored: xpv-hv: %s (%s)\n",
                   std::string(p.error().message).c_str(), std::strerror(p.error().code));
      return 1;
    }
    sim = std::move(*p);
    opt.platform = sim.get();
  }
  return xpv::xenstore::RunDaemon(opt);
}
