// BlockBackend: one virtual disk served to one frontend (a `vbd` device), xpv-blkback's unit.
//
// It plays the backend's part of the xenbus handshake (xenbus/backend.h) with Linux
// xen-blkback's protocol (public/io/blkif.h):
//   Prepare  opens `params` (an image file or block device; `mode` "r" makes it read-only) and
//            publishes what it offers: feature-flush-cache, feature-discard (+ granularity),
//            feature-max-indirect-segments, feature-persistent (when grants can be mapped),
//            max-ring-page-order, multi-queue-max-queues, sectors, info, sector-size,
//            physical-sector-size.
//   Connect  reads what the frontend chose (multi-queue-num-queues, ring-page-order, ring-ref*,
//            event-channel per queue, protocol, feature-persistent) and starts a BackendQueue
//            per ring.
//   Disconnect  waits for the disk's operations in flight, then drops the queues.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xpv/base/event_loop.h"
#include "xpv/block/backend_queue.h"
#include "xpv/block/disk.h"
#include "xpv/platform/platform.h"
#include "xpv/platform/port_dispatcher.h"
#include "xpv/xenbus/backend.h"
#include "xpv/xenstore/client.h"

namespace xpv::block {

struct BackendOptions {
  uint32_t max_queues = 4;               // multi-queue-max-queues
  uint32_t max_ring_page_order = 4;      // max-ring-page-order: 16 pages
  uint32_t max_indirect_segments = 256;  // feature-max-indirect-segments; 0: none
  bool persistent = true;                // offer feature-persistent (map mode only)
  // Copy every page with grant copy and map nothing, even where the platform allows mapping:
  // the mode of a backend that must not hold guest pages (xpv-hv decides this per domain).
  bool grant_copy = false;
  uint32_t max_persistent_grants = 1056;  // per queue
  uint32_t max_bounce_pages = 4096;       // per queue, copy mode
  unsigned disk_queue_depth = 256;
  Caching caching = Caching::kBuffered;
  // The directory the toolstack puts devices in: backend/<backend_type>. "vbd" is Linux
  // blkback's; "qdisk" is QEMU's (libxl's `backendtype=qdisk`, whose `params` is
  // "<format>:<target>"). Frontends are under device/vbd either way.
  std::string backend_type = "vbd";
  // Serve only this domain's devices, as the device model libxl starts per domain does.
  std::optional<DomId> frontend;
};

struct BackendEnv {
  platform::Platform& platform;
  platform::PortDispatcher& ports;
  xenstore::Client& store;
  EventLoop& loop;
};

class BlockBackend final : public xenbus::BackendHooks {
 public:
  // Everything in `env` must outlive the backend. Call device().Start() next.
  BlockBackend(BackendEnv env, xenbus::DeviceId id, BackendOptions options);
  ~BlockBackend() override;

  xenbus::BackendDevice& device() { return device_; }
  // A queue broke since the last call (the frontend lied): the owner should Fail the device.
  std::optional<Error> TakeBreakage();

  Status Prepare() override;
  Status Connect() override;
  void Disconnect() override;

  size_t queue_count() const { return queues_.size(); }
  const BackendQueue& queue(size_t i) const { return *queues_[i]; }
  bool map_grants() const;

 private:
  void OnDiskEvent();
  Status PublishFeatures();
  Result<QueueConfig> ReadQueue(uint32_t index, uint32_t queues, uint32_t ring_pages,
                                abi::blkif::Protocol protocol, bool persistent);

  BackendEnv env_;
  BackendOptions options_;
  xenbus::BackendDevice device_;
  std::unique_ptr<Disk> disk_;
  bool discard_ = false;
  std::vector<std::unique_ptr<BackendQueue>> queues_;
  std::vector<DiskCompletion> completions_;
  std::optional<Error> broken_;
};

}  // namespace xpv::block
