#include "xpv/toolstack/reaper.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "xpv/toolstack/process.h"
#include "xpv/toolstack/xl_config.h"
#include "xpv/xenbus/xenbus.h"

namespace xpv::toolstack {

namespace {

using xenstore::Client;
using xenstore::MsgType;

std::string Z(std::string_view s) {
  return std::string(s) + '\0';
}

// Whether `path` is the canonical backend directory of one of `frontend`'s devices:
// /local/domain/<backend>/backend/<type>/<frontend>/<devid>. The reaper removes nothing else.
bool IsBackendOf(std::string_view path, DomId frontend) {
  std::vector<std::string_view> parts;
  for (size_t at = 0; at <= path.size();) {
    const size_t slash = std::min(path.find('/', at), path.size());
    parts.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  if (parts.size() != 8 || !parts[0].empty() || parts[1] != "local" || parts[2] != "domain" ||
      parts[4] != "backend" || parts[5].empty())
    return false;
  const auto fe = xenbus::ParseUint(parts[6], kDomIdFirstReserved - 1);
  return xenbus::ParseUint(parts[3], kDomIdFirstReserved - 1) && fe && *fe == frontend.value &&
         xenbus::ParseUint(parts[7], UINT32_MAX);
}

// The store has let go of the domain (its death, or `xpv destroy`'s release; the process may
// still be exiting then), or its process is gone.
bool Dead(Client& xs, const ReapTarget& t) {
  auto introduced = xs.Call(MsgType::kIsDomainIntroduced, Z(std::to_string(t.domid.value)));
  return (introduced && *introduced == Z("F")) || !Alive(t.pid);
}

void CleanUp(Client& xs, const ReapTarget& t) {
  const std::string id = std::to_string(t.domid.value);
  auto vm = xs.Read("/local/domain/" + id + "/vm");
  if (!vm || *vm != t.vm) {
    std::printf("domain %s: already cleaned up (its home no longer names %s)\n", id.c_str(),
                t.vm.c_str());
    return;
  }
  for (const std::string& be : t.backends) {
    if (IsBackendOf(be, t.domid)) (void)xs.Rm(be);
  }
  (void)xs.Call(MsgType::kRelease, Z(id));  // ENOENT when the store saw the death first
  RemoveHome(xs, t.domid);
  std::printf("domain %s: removed its home, %s and %zu backend directories\n", id.c_str(),
              t.vm.c_str(), t.backends.size());
}

}  // namespace

void RemoveHome(Client& xs, DomId domid) {
  const std::string home = "/local/domain/" + std::to_string(domid.value);
  if (auto vm = xs.Read(home + "/vm"); vm && vm->starts_with("/vm/") && IsUuid(vm->substr(4))) {
    (void)xs.Rm(*vm);
  }
  (void)xs.Rm(home);
}

std::vector<std::string> ReapArgs(const RunDir& run, const ReapTarget& t) {
  std::vector<std::string> argv = {BinDir() + "/xpv",
                                   "--run-dir",
                                   run.dir,
                                   "reap",
                                   "--domid",
                                   std::to_string(t.domid.value),
                                   "--pid",
                                   std::to_string(t.pid),
                                   "--vm",
                                   t.vm};
  for (const std::string& be : t.backends) {
    argv.push_back("--backend");
    argv.push_back(be);
  }
  return argv;
}

int RunReaper(const RunDir& run, const ReapTarget& t) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto xs = Client::Connect(run.store_socket());
  if (!xs) {
    fmt::print(stderr, "xpv reap: xenstored at {}: {} ({})\n", run.store_socket(),
               xs.error().message, std::strerror(xs.error().code));
    return 1;
  }
  // The watch fires once on registration: a domain that died before it is seen at once.
  if (auto st = xs->Watch("@releaseDomain", "reap"); !st) {
    fmt::print(stderr, "xpv reap: watch @releaseDomain: {} ({})\n", st.error().message,
               std::strerror(st.error().code));
    return 1;
  }
  std::printf("waiting for domain %u (pid %d, %s) to die\n", t.domid.value, t.pid, t.vm.c_str());
  while (true) {
    auto ev = xs->NextEvent(-1);
    if (!ev) {
      std::printf("the store went away: nothing to clean up in it\n");
      return 0;
    }
    if (!Dead(*xs, t)) continue;  // another domain's death
    std::printf("domain %u died\n", t.domid.value);
    CleanUp(*xs, t);
    return 0;
  }
}

}  // namespace xpv::toolstack
