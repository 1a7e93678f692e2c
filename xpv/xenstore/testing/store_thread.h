// An xpv-xenstored serving a Unix socket on a thread of this process, for tests of the layers
// above the store (xenbus, devices). Clients connect to path() as dom0 tools do.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "xpv/base/result.h"
#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/server.h"

namespace xpv::xenstore::testing {

class StoreThread {
 public:
  static Result<std::unique_ptr<StoreThread>> Start() {
    std::unique_ptr<StoreThread> t(new StoreThread());
    char tmpl[] = "/tmp/xpv-store-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return Err(errno, "mkdtemp");
    t->dir_ = tmpl;
    XPV_ASSIGN_OR_RETURN(
        t->server_, Server::Create(t->engine_, nullptr, ServerOptions{.socket_path = t->path()}));
    t->thread_ = std::thread([s = t->server_.get()] { s->Run(); });
    return t;
  }
  ~StoreThread() {
    server_->Stop();
    thread_.join();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string path() const { return dir_ + "/socket"; }

 private:
  StoreThread() = default;
  Engine engine_;
  std::string dir_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

}  // namespace xpv::xenstore::testing
