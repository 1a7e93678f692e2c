// Blkback: xpv-blkback as a library. One process serves every block device whose backend
// directory appears under /local/domain/<self>/backend/<options.backend_type> ("vbd" by default;
// "qdisk" where libxl expects QEMU), optionally only those of one frontend domain
// (options.frontend, as the device model libxl starts per domain): it watches that directory,
// starts a BlockBackend for each device the toolstack adds, and drops it when the toolstack
// removes the directory. One thread, one epoll loop: the store client, the platform's
// event channels and every disk's completions.
//
//   XPV_ASSIGN_OR_RETURN(auto bb, Blkback::Create(platform, store, options));
//   while (!stop) XPV_TRY(bb->RunOnce(500));
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "xpv/base/event_loop.h"
#include "xpv/block/backend.h"
#include "xpv/platform/platform.h"
#include "xpv/platform/port_dispatcher.h"
#include "xpv/xenstore/client.h"

namespace xpv::block {

class Blkback {
 public:
  // `platform`, `ports` (over platform.events()) and `store` must outlive the object.
  static Result<std::unique_ptr<Blkback>> Create(platform::Platform& platform,
                                                 platform::PortDispatcher& ports,
                                                 xenstore::Client& store, BackendOptions options);
  ~Blkback();

  Status RunOnce(int timeout_ms);
  size_t device_count() const { return devices_.size(); }
  // The device at a backend path, or null.
  const BlockBackend* device(const std::string& backend_path) const;

 private:
  Blkback(platform::Platform& platform, platform::PortDispatcher& ports, xenstore::Client& store,
          BackendOptions options, std::unique_ptr<EventLoop> loop)
      : platform_(platform),
        ports_(ports),
        store_(store),
        options_(options),
        loop_(std::move(loop)) {}
  void DrainStoreEvents();
  void OnEvent(const xenstore::WatchEvent& ev);
  void Scan();
  // A device under the watched directory (the rest of a path may follow), or nullopt.
  std::optional<xenbus::DeviceId> ParseDevice(std::string_view path) const;
  void Touch(const xenbus::DeviceId& id);

  platform::Platform& platform_;
  platform::PortDispatcher& ports_;
  xenstore::Client& store_;
  BackendOptions options_;
  std::unique_ptr<EventLoop> loop_;
  std::string root_;                                              // backend/<type>
  std::string watch_path_;                                        // root_, or root_/<frontend>
  std::map<std::string, std::unique_ptr<BlockBackend>> devices_;  // by backend path
};

}  // namespace xpv::block
