// `xpv`, the toolstack command: everything build/bin/xpv does, as a library (main.cc is thin).
//
//   xpv hv start|stop                 xpv-hv and xpv-xenstored --platform sim, in the background
//   xpv create FILE.cfg               a domain from an xl.cfg file, introduced to the store; a
//                                     reaper cleans up after it when it dies (reaper.h)
//   xpv list                          the domains
//   xpv destroy NAME|ID
//   xpv xenstore ls|read|write|rm|watch ...
//
// Sockets, pid files and logs live in the run directory: --run-dir, else $XPV_RUN_DIR, else
// /run/xpv. docs/xpv-toolstack.md describes the commands.
#pragma once

#include <string>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/types.h"

namespace xpv::toolstack {

// The run directory's layout.
struct RunDir {
  std::string dir;
  std::string hv_socket() const { return dir + "/hv.sock"; }
  std::string store_socket() const { return dir + "/xenstored.sock"; }
  std::string hv_pid() const { return dir + "/hv.pid"; }
  std::string store_pid() const { return dir + "/xenstored.pid"; }
  std::string hv_log() const { return dir + "/hv.log"; }
  std::string store_log() const { return dir + "/xenstored.log"; }
};

// $XPV_RUN_DIR, else /run/xpv.
std::string DefaultRunDir();

// The name xpv-xenstored's service domain has on xpv-hv: `xpv create` makes it each domain's
// store domain.
inline constexpr const char* kStoreDomainName = "xenstored";

// The commands, for `xpv demo` and other callers in this process. They print what went wrong
// to stderr.
int HvStart(const RunDir& run);
int HvStop(const RunDir& run);
struct CreatedDomain {
  DomId domid;
  int pid = 0;
  std::string name;
  std::string vm;                     // its /vm/<uuid>
  std::vector<std::string> backends;  // its devices' backend directories
};
Result<CreatedDomain> CreateDomainFromFile(const RunDir& run, const std::string& file);
int Destroy(const RunDir& run, const std::string& which);

// Parses argv and runs the command; returns the process exit code. Messages go to stdout/stderr.
int Main(int argc, char** argv);

}  // namespace xpv::toolstack
