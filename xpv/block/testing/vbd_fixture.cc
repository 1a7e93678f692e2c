#include "xpv/block/testing/vbd_fixture.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>

#include <fmt/format.h>

#include "xpv/base/unique_fd.h"
#include "xpv/block/blkback.h"
#include "xpv/xenstore/wire.h"

namespace xpv::block::testing {

Result<std::unique_ptr<VbdFixture>> VbdFixture::Start(const VbdFixtureOptions& options) {
  std::unique_ptr<VbdFixture> fx(new VbdFixture());
  char tmpl[] = "/tmp/xpv-vbd-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Err(errno, "mkdtemp");
  fx->dir_ = tmpl;
  XPV_ASSIGN_OR_RETURN(fx->host_, platform::sim::SimHost::Start());
  XPV_ASSIGN_OR_RETURN(fx->store_, xenstore::testing::StoreThread::Start());
  XPV_ASSIGN_OR_RETURN(fx->toolstack_, fx->NewStoreClient());

  platform::sim::SimDomainSpec be_spec;
  be_spec.name = "blkback";
  be_spec.memory_mib = options.backend_memory_mib;
  be_spec.mode = options.backend_mode;
  XPV_ASSIGN_OR_RETURN(std::unique_ptr<platform::sim::SimPlatform> backend,
                       fx->host_->NewDomain(be_spec));
  fx->backend_id_ = backend->self();

  platform::sim::SimDomainSpec fe_spec;
  fe_spec.name = "guest";
  fe_spec.memory_mib = options.frontend_memory_mib;
  fe_spec.mode = options.frontend_mode;
  XPV_ASSIGN_OR_RETURN(fx->frontend_, fx->host_->NewDomain(fe_spec));
  fx->frontend_id_ = fx->frontend_->self();
  fx->frontend_ports_ = std::make_unique<platform::PortDispatcher>(fx->frontend_->events());
  XPV_ASSIGN_OR_RETURN(fx->frontend_store_, fx->NewStoreClient());

  std::promise<Status> started;
  auto started_future = started.get_future();
  fx->backend_thread_ = std::thread(&VbdFixture::RunBackend, fx.get(), std::move(backend),
                                    fx->store_->path(), options.backend, &started);
  XPV_TRY(started_future.get());
  return fx;
}

void VbdFixture::RunBackend(std::unique_ptr<platform::sim::SimPlatform> platform,
                            std::string store_path, BackendOptions options,
                            std::promise<Status>* started) {
  platform::PortDispatcher ports(platform->events());
  auto store = xenstore::Client::Connect(store_path);
  if (!store) return started->set_value(store.error());
  store->set_reply_timeout_ms(10000);
  auto bb = Blkback::Create(*platform, ports, *store, options);
  if (!bb) return started->set_value(bb.error());
  started->set_value(Ok());
  while (!stop_.load()) {
    if (auto st = (*bb)->RunOnce(50); !st) {
      spdlog::warn("vbd fixture: blkback: {}", st.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  bb->reset();  // devices shut down (Closed) while the store and platform still live
}

VbdFixture::~VbdFixture() {
  stop_ = true;
  if (backend_thread_.joinable()) backend_thread_.join();
  frontend_store_.reset();
  frontend_ports_.reset();
  frontend_.reset();
  toolstack_.reset();
  store_.reset();
  host_.reset();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

Result<std::unique_ptr<xenstore::Client>> VbdFixture::NewStoreClient() {
  XPV_ASSIGN_OR_RETURN(xenstore::Client c, xenstore::Client::Connect(store_->path()));
  c.set_reply_timeout_ms(10000);
  return std::make_unique<xenstore::Client>(std::move(c));
}

std::string VbdFixture::ImagePath(uint32_t devid) const {
  return fmt::format("{}/disk-{}.img", dir_, devid);
}

Result<xenbus::DeviceId> VbdFixture::AddVbd(const VbdSpec& spec) {
  std::string image = spec.image;
  if (image.empty()) {
    image = ImagePath(spec.devid);
    UniqueFd fd(::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return Err(errno, "creating the image");
    if (::ftruncate(fd.get(), static_cast<off_t>(spec.size_bytes)) != 0)
      return Err(errno, "sizing the image");
  }
  xenbus::DeviceId id{"vbd", backend_id_, frontend_id_, spec.devid};
  XPV_TRY(WriteVbdNodes(*toolstack_, id,
                        {.params = image, .read_only = spec.read_only, .discard = spec.discard}));
  return id;
}

Result<std::unique_ptr<BlkFront>> VbdFixture::ConnectFront(const xenbus::DeviceId& id,
                                                           const FrontOptions& options) {
  return BlkFront::Connect(*frontend_, *frontend_ports_, *frontend_store_, id, options);
}

std::string VbdFixture::Node(const std::string& path) {
  auto v = toolstack_->Read(path);
  return v ? *v : "<absent>";
}

bool VbdFixture::WaitForNode(const std::string& path, const std::string& value, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Node(path) == value) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Node(path) == value;
}

}  // namespace xpv::block::testing
