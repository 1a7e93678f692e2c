// VbdFixture: a whole virtual-disk setup in one process, for tests and benchmarks of the block
// path: xpv-hv on a thread (SimHost), xpv-xenstored on a socket (StoreThread), a driver domain
// whose Blkback runs on its own thread with its own store client, and a guest domain whose
// frontends (BlkFront, or a test's raw ring) run on the caller's thread.
//
//   auto fx = VbdFixture::Start({.backend_mode = MappingMode::kCopy});
//   auto id = (*fx)->AddVbd({.size_bytes = 8 << 20});          // image + the toolstack's nodes
//   auto front = (*fx)->ConnectFront(*id, {.queues = 4});
//
// The store clients are privileged socket connections, but the nodes carry xl's permissions
// (backend directory owned by the backend domain and readable by the frontend, and the mirror
// for the frontend directory), as libxl__device_generic_add writes them.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "xpv/base/result.h"
#include "xpv/block/backend.h"
#include "xpv/block/frontend.h"
#include "xpv/block/vbd_nodes.h"
#include "xpv/platform/port_dispatcher.h"
#include "xpv/platform/sim/sim_host.h"
#include "xpv/xenbus/xenbus.h"
#include "xpv/xenstore/client.h"
#include "xpv/xenstore/testing/store_thread.h"

namespace xpv::block::testing {

struct VbdFixtureOptions {
  platform::sim::MappingMode backend_mode = platform::sim::MappingMode::kMap;
  platform::sim::MappingMode frontend_mode = platform::sim::MappingMode::kMap;
  BackendOptions backend;
  uint64_t backend_memory_mib = 128;
  uint64_t frontend_memory_mib = 64;
};

// One vbd as an xl disk line would describe it.
struct VbdSpec {
  uint32_t devid = 51712;  // xvda
  uint64_t size_bytes = 8ull << 20;
  bool read_only = false;  // mode "r"
  bool discard = true;     // discard-enable
  std::string image;       // empty: a new zero-filled file of size_bytes in the fixture's dir
};

class VbdFixture {
 public:
  static Result<std::unique_ptr<VbdFixture>> Start(const VbdFixtureOptions& options = {});
  // Stops the backend thread (its devices shut down), then the store and the hypervisor.
  ~VbdFixture();

  // Makes the image (unless spec.image names one) and writes the toolstack's nodes.
  Result<xenbus::DeviceId> AddVbd(const VbdSpec& spec);
  // The image file AddVbd made for `devid`.
  std::string ImagePath(uint32_t devid) const;
  // A BlkFront of the guest domain, over the guest's shared store client.
  Result<std::unique_ptr<BlkFront>> ConnectFront(const xenbus::DeviceId& id,
                                                 const FrontOptions& options = {});
  // A new socket store client (one per frontend when several run at once).
  Result<std::unique_ptr<xenstore::Client>> NewStoreClient();

  platform::sim::SimHost& host() { return *host_; }
  platform::sim::SimPlatform& frontend() { return *frontend_; }
  platform::PortDispatcher& frontend_ports() { return *frontend_ports_; }
  xenstore::Client& frontend_store() { return *frontend_store_; }
  xenstore::Client& toolstack() { return *toolstack_; }
  DomId backend_id() const { return backend_id_; }
  DomId frontend_id() const { return frontend_id_; }
  const std::string& dir() const { return dir_; }

  // A node's value, or "<absent>" (toolstack's client).
  std::string Node(const std::string& path);
  // Waits until `path` holds `value` (polling, bounded).
  bool WaitForNode(const std::string& path, const std::string& value, int timeout_ms);

 private:
  VbdFixture() = default;
  void RunBackend(std::unique_ptr<platform::sim::SimPlatform> platform, std::string store_path,
                  BackendOptions options, std::promise<Status>* started);

  std::string dir_;
  std::unique_ptr<platform::sim::SimHost> host_;
  std::unique_ptr<xenstore::testing::StoreThread> store_;
  std::unique_ptr<xenstore::Client> toolstack_;
  DomId backend_id_;
  DomId frontend_id_;
  std::unique_ptr<platform::sim::SimPlatform> frontend_;
  std::unique_ptr<platform::PortDispatcher> frontend_ports_;
  std::unique_ptr<xenstore::Client> frontend_store_;
  std::atomic<bool> stop_{false};
  std::thread backend_thread_;
};

}  // namespace xpv::block::testing
