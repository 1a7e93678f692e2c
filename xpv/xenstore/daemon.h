// xpv-xenstored as a library: everything main.cc does after parsing flags.
#pragma once

#include <string>

#include "xpv/base/log.h"
#include "xpv/xenstore/quota.h"

namespace xpv::platform {
class Platform;
class ForeignPage;
}  // namespace xpv::platform

namespace xpv::xenstore {

struct DaemonOptions {
  std::string socket_path;  // empty: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket, /var/run/...
  std::string state_dir;    // empty: the store lives in memory only
  bool fsync = false;       // with state_dir: fdatasync each batch (power-loss durability)
  std::string pid_file;
  LogSink log_sink = LogSink::kStderr;
  std::string log_level = "info";
  Quotas quotas;
  // Domains' rings: with a privileged platform (xpv-hv's ConnectSimService, or real Xen), the
  // daemon maps the store page of each domain XS_INTRODUCE names and binds its channel, and turns
  // the platform's domain deaths into @releaseDomain. Null: dom0 socket clients only. Not owned;
  // must outlive RunDaemon.
  platform::Platform* platform = nullptr;
  // With a platform: map a domain's store page through its grant GNTTAB_RESERVED_XENSTORE first,
  // as Xen 4.17's daemon does, and through the gfn XS_INTRODUCE names only if that fails.
  bool map_store_grant = false;
  // With a platform: the ring of the domain the daemon runs in (Xen's dom0 with a local store:
  // /proc/xen/xsd_kva and xsd_port). The daemon serves it from the start as that domain's
  // privileged connection and notifies the port, as Xen's dom0_init() does. Not owned; must
  // outlive RunDaemon. Null: no local ring.
  platform::ForeignPage* local_ring_page = nullptr;
  uint32_t local_ring_port = 0;
};

// The socket path Xen's clients look for when none is given.
std::string DefaultSocketPath();

// Runs the daemon until SIGTERM or SIGINT; returns the process exit code.
int RunDaemon(const DaemonOptions& options);

}  // namespace xpv::xenstore
