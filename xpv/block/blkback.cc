#include "xpv/block/blkback.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

namespace xpv::block {

namespace {
constexpr std::string_view kRootToken = "xpv-blkback";
}

Result<std::unique_ptr<Blkback>> Blkback::Create(platform::Platform& platform,
                                                 platform::PortDispatcher& ports,
                                                 xenstore::Client& store, BackendOptions options) {
  XPV_ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Create());
  std::unique_ptr<Blkback> bb(new Blkback(platform, ports, store, options, std::move(loop)));
  if (bb->options_.backend_type.empty() || bb->options_.backend_type.find('/') != std::string::npos)
    return Err(EINVAL, "backend type must be one path element");
  bb->root_ = xenbus::BackendRoot(platform.self(), bb->options_.backend_type);
  // One frontend: watch only its directory (it may not exist yet; a watch fires when it does).
  bb->watch_path_ = bb->options_.frontend
                        ? fmt::format("{}/{}", bb->root_, bb->options_.frontend->value)
                        : bb->root_;
  XPV_TRY(bb->loop_->Add(ports.fd(), [p = &ports] { p->Dispatch(); }));
  XPV_TRY(bb->loop_->Add(store.fd(), [b = bb.get()] { b->DrainStoreEvents(); }));
  // The watch fires once at once: that first event scans for devices added before we started.
  XPV_TRY(store.Watch(bb->watch_path_, kRootToken));
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
    if (ev.path == watch_path_) return Scan();
    if (auto id = ParseDevice(ev.path)) Touch(*id);
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

std::optional<xenbus::DeviceId> Blkback::ParseDevice(std::string_view path) const {
  auto id = xenbus::DeviceFromBackendPath(platform_.self(), options_.backend_type, path);
  if (!id || (options_.frontend && id->frontend != *options_.frontend)) return std::nullopt;
  // Block frontends are `vbd`s whatever the backend's directory is called.
  id->frontend_type = "vbd";
  return id;
}

void Blkback::Scan() {
  std::vector<std::string> frontends;
  if (options_.frontend) {
    frontends.push_back(std::to_string(options_.frontend->value));
  } else if (auto all = store_.Directory(root_)) {
    frontends = std::move(*all);
  }
  for (const std::string& fe : frontends) {
    auto devids = store_.Directory(root_ + "/" + fe);
    if (!devids) continue;
    for (const std::string& devid : *devids) {
      if (auto id = ParseDevice(root_ + "/" + fe + "/" + devid)) Touch(*id);
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
