#include "xpv/block/blkback.h"

#include <spdlog/spdlog.h>

namespace xpv::block {

namespace {
constexpr std::string_view kRootToken = "xpv-blkback";
}

Result<std::unique_ptr<Blkback>> Blkback::Create(platform::Platform& platform,
                                                 platform::PortDispatcher& ports,
                                                 xenstore::Client& store, BackendOptions options) {
  XPV_ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Create());
  std::unique_ptr<Blkback> bb(new Blkback(platform, ports, store, options, std::move(loop)));
  bb->root_ = xenbus::BackendRoot(platform.self(), "vbd");
  XPV_TRY(bb->loop_->Add(ports.fd(), [p = &ports] { p->Dispatch(); }));
  XPV_TRY(bb->loop_->Add(store.fd(), [b = bb.get()] { b->DrainStoreEvents(); }));
  // The watch fires once at once: that first event scans for devices added before we started.
  XPV_TRY(store.Watch(bb->root_, kRootToken));
  return bb;
}

Blkback::~Blkback() {
  for (auto& [path, dev] : devices_) dev->device().Shutdown();
  devices_.clear();
}

const BlockBackend* Blkback::device(const std::string& backend_path) const {
  auto it = devices_.find(backend_path);
  return it == devices_.end() ? nullptr : it->second.get();
}

Status Blkback::RunOnce(int timeout_ms) {
  XPV_TRY(loop_->RunOnce(timeout_ms));
  // Events that arrived while a callback waited for a reply are queued in the client, and its
  // descriptor will not fire for them.
  DrainStoreEvents();
  for (auto& [path, dev] : devices_) {
    if (auto e = dev->TakeBreakage()) dev->device().Fail("ring", *e);
  }
  return Ok();
}

void Blkback::DrainStoreEvents() {
  // Bounded: a flood of events is taken in slices, the rest on the next iteration.
  for (int i = 0; i < 256; ++i) {
    auto ev = store_.NextEvent(0);
    if (!ev) {
      if (ev.error().code != ETIMEDOUT) spdlog::warn("blkback: store: {}", ev.error().message);
      return;
    }
    OnEvent(*ev);
  }
}

void Blkback::OnEvent(const xenstore::WatchEvent& ev) {
  if (ev.token == kRootToken) {
    if (ev.path == root_) return Scan();
    if (auto id = xenbus::DeviceFromBackendPath(platform_.self(), "vbd", ev.path)) Touch(*id);
    return;
  }
  // A device's own watch (its frontend's state): the token names the backend path.
  for (auto& [path, dev] : devices_) {
    if (dev->device().token() == ev.token) {
      Touch(dev->device().id());
      return;
    }
  }
}

void Blkback::Scan() {
  auto frontends = store_.Directory(root_);
  if (!frontends) return;
  for (const std::string& fe : *frontends) {
    auto devids = store_.Directory(root_ + "/" + fe);
    if (!devids) continue;
    for (const std::string& devid : *devids) {
      if (auto id = xenbus::DeviceFromBackendPath(platform_.self(), "vbd",
                                                  root_ + "/" + fe + "/" + devid))
        Touch(*id);
    }
  }
}

void Blkback::Touch(const xenbus::DeviceId& id) {
  const std::string path = id.BackendPath();
  auto it = devices_.find(path);
  if (it == devices_.end()) {
    // New, once the toolstack wrote its state node (it writes the directory first).
    if (!store_.Read(path + "/state")) return;
    auto dev =
        std::make_unique<BlockBackend>(BackendEnv{platform_, ports_, store_, *loop_}, id, options_);
    spdlog::info("blkback: new device {}", path);
    // A device that fails to start stays, closed, until the toolstack removes it.
    (void)dev->device().Start();
    devices_.emplace(path, std::move(dev));
    return;
  }
  if (!it->second->device().Update()) {
    spdlog::info("blkback: device {} removed", path);
    devices_.erase(it);
  }
}

}  // namespace xpv::block
