// xpv-hv: the simulated hypervisor. Domains are processes, guest RAM is shared memory, and this
// daemon enforces Xen's grant-table and event-channel rules between them (docs/xpv-hv.md).
#include <CLI/CLI.hpp>

#include "xpv/platform/sim/daemon.h"

int main(int argc, char** argv) {
  using xpv::platform::sim::MappingMode;
  xpv::platform::sim::HvOptions opt;
  CLI::App app{"xpv-hv: the simulated hypervisor of xpv"};
  app.add_option("-s,--socket", opt.socket_path,
                 "Unix socket to listen on (default: $XPV_HV_SOCKET, else /run/xpv/hv.sock)");
  app.add_option("--dom0-memory", opt.hypervisor.dom0_memory_mib, "domain 0's RAM in MiB")
      ->capture_default_str();
  std::string dom0_mode = "map";
  app.add_option("--dom0-mode", dom0_mode, "domain 0's grant mapping mode: map or copy")
      ->capture_default_str();
  app.add_option("--max-connections", opt.max_connections, "connections on the socket at once")
      ->capture_default_str();
  app.add_option("-F,--pid-file", opt.pid_file, "write the daemon's pid to FILE");
  bool syslog = false;
  app.add_flag("--syslog", syslog, "log to syslog instead of stderr");
  app.add_option("--log-level", opt.log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto mode = xpv::platform::sim::ParseMappingMode(dom0_mode);
  if (!mode) {
    std::fprintf(stderr, "xpv-hv: --dom0-mode: expected map or copy\n");
    return 2;
  }
  opt.hypervisor.dom0_mode = *mode;
  opt.log_sink = syslog ? xpv::LogSink::kSyslog : xpv::LogSink::kStderr;
  return xpv::platform::sim::RunDaemon(opt);
}
