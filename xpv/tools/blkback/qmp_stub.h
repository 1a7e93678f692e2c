// QmpStub: the least of QEMU's QMP monitor that libxl needs from a device model it started.
//
// With `backendtype=qdisk`, libxl starts a device model for a PV domain (libxl_dm.c,
// libxl__spawn_local_dm). Once `/local/domain/0/device-model/<domid>/state` reads "running" it
// opens the `-chardev socket,id=libxl-cmd,path=...` socket, sends `qmp_capabilities`, then
// `query-chardev` and `query-vnc` (device_model_postconfig_*), and fails the domain's creation if
// they go unanswered. xpv-blkback, standing in for that QEMU, answers: no character devices, no
// VNC, status "running", and an empty success for anything else.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"

namespace xpv::tools {

// The reply line (with "\r\n") to one QMP command line, or nullopt for a line that is not a
// command. Pure: the whole protocol of the stub.
std::optional<std::string> QmpReply(std::string_view line);
// The greeting a QMP server sends first.
std::string QmpGreeting();

class QmpStub {
 public:
  // Listens on `path` (replacing a stale socket there) and serves connections on a thread of
  // its own until destroyed.
  static Result<std::unique_ptr<QmpStub>> Listen(const std::string& path);
  ~QmpStub();

 private:
  QmpStub(std::string path, UniqueFd listen, UniqueFd stop_r, UniqueFd stop_w)
      : path_(std::move(path)),
        listen_(std::move(listen)),
        stop_r_(std::move(stop_r)),
        stop_w_(std::move(stop_w)) {}
  void Serve();

  std::string path_;
  UniqueFd listen_, stop_r_, stop_w_;
  std::thread thread_;
};

}  // namespace xpv::tools
