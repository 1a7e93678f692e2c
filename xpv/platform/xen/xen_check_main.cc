// xpv-xen-check: the Xen platform's conformance check (xen_check.h), one line per check.
// Exit 0 when all pass. Runs in dom0 of a real Xen host (tests/realxen).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>

#include "xpv/platform/xen/xen_check.h"

int main(int argc, char** argv) {
  CLI::App app{"xpv-xen-check: checks xpv's Xen platform against the running hypervisor"};
  int peer = -1;
  long peer_ref = -1;
  app.add_option("--peer", peer, "a running domU whose grant to dom0 to map");
  app.add_option("--ref", peer_ref, "with --peer: a grant ref it gave dom0");
  CLI11_PARSE(app, argc, argv);

  auto p = xpv::platform::xen::ConnectXen();
  if (!p) {
    std::fprintf(stderr, "xpv-xen-check: %s (%s)\n", std::string(p.error().message).c_str(),
                 std::strerror(p.error().code));
    return 2;
  }
  xpv::platform::xen::CheckOptions opt;
  if (peer >= 0) opt.peer = xpv::DomId(static_cast<uint32_t>(peer));
  if (peer_ref >= 0) opt.peer_ref = xpv::GrantRef(static_cast<uint32_t>(peer_ref));
  int failed = 0;
  for (const auto& r : xpv::platform::xen::RunChecks(**p, opt)) {
    std::printf("    %s %s%s%s\n", r.ok ? "ok  " : "FAIL", r.name.c_str(),
                r.detail.empty() ? "" : ": ", r.detail.c_str());
    failed += r.ok ? 0 : 1;
  }
  std::printf("xpv-xen-check: %d failed\n", failed);
  return failed == 0 ? 0 : 1;
}
