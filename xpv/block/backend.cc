#include "xpv/block/backend.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include <fmt/format.h>

namespace xpv::block {

namespace {
using xenbus::ParseUint;
constexpr int kDrainTimeoutMs = 30000;

// libxl_disk.c writes a qdisk's `params` as "<format>:<target>"; only raw images are served.
Result<std::string> DiskTarget(std::string_view backend_type, std::string params) {
  if (backend_type != "qdisk") return params;
  const size_t colon = params.find(':');
  if (colon == std::string::npos) return params;
  const std::string_view format = std::string_view(params).substr(0, colon);
  if (format == "raw" || format == "aio") return params.substr(colon + 1);
  if (format == "qcow" || format == "qcow2" || format == "vhd" || format == "qed")
    return Err(EOPNOTSUPP, "only raw images are served");
  return params;
}
}  // namespace

BlockBackend::BlockBackend(BackendEnv env, xenbus::DeviceId id, BackendOptions options)
    : env_(env), options_(options), device_(env.store, std::move(id), *this) {}

BlockBackend::~BlockBackend() {
  Disconnect();
  if (disk_) env_.loop.Remove(disk_->event_fd());
}

bool BlockBackend::map_grants() const {
  if (options_.grant_copy) return false;
  // Probing costs nothing: an empty batch is refused only where mapping is forbidden.
  return env_.platform.mapper().Map({}).has_value();
}

std::optional<Error> BlockBackend::TakeBreakage() {
  return std::exchange(broken_, std::nullopt);
}

Status BlockBackend::Prepare() {
  if (!disk_) {
    XPV_ASSIGN_OR_RETURN(std::string params, env_.store.Read(device_.backend_path() + "/params"));
    XPV_ASSIGN_OR_RETURN(std::string target, DiskTarget(options_.backend_type, std::move(params)));
    auto mode = env_.store.Read(device_.backend_path() + "/mode");
    const bool read_only = mode && (*mode == "r" || *mode == "ro");
    auto discard = env_.store.Read(device_.backend_path() + "/discard-enable");
    discard_ = !read_only && (!discard || *discard != "0");
    DiskOptions opts{.access = read_only ? Access::kReadOnly : Access::kReadWrite,
                     .caching = options_.caching,
                     .queue_depth = options_.disk_queue_depth};
    XPV_ASSIGN_OR_RETURN(disk_, Disk::Open(target, opts));
    XPV_TRY(env_.loop.Add(disk_->event_fd(), [this] { OnDiskEvent(); }));
  }
  return PublishFeatures();
}

Status BlockBackend::PublishFeatures() {
  const bool persistent = options_.persistent && map_grants();
  const std::vector<std::pair<std::string, std::string>> nodes = {
      {"feature-flush-cache", "1"},
      {"feature-discard", discard_ ? "1" : "0"},
      {"discard-granularity", std::to_string(disk_->physical_sector_size())},
      {"discard-alignment", "0"},
      {"discard-secure", "0"},
      {"feature-max-indirect-segments", std::to_string(options_.max_indirect_segments)},
      {"feature-persistent", persistent ? "1" : "0"},
      {"max-ring-page-order", std::to_string(options_.max_ring_page_order)},
      {"multi-queue-max-queues", std::to_string(options_.max_queues)},
      {"sectors", std::to_string(disk_->sectors())},
      {"info", std::to_string(disk_->access() == Access::kReadOnly ? VDISK_READONLY : 0)},
      {"sector-size", std::to_string(disk_->logical_sector_size())},
      {"physical-sector-size", std::to_string(disk_->physical_sector_size())},
  };
  // One transaction, as Linux's blkback does, so a frontend never sees half the features.
  return env_.store.InTransaction([&](uint32_t tx) -> Status {
    for (const auto& [node, value] : nodes)
      XPV_TRY(env_.store.Write(device_.backend_path() + "/" + node, value, tx));
    return Ok();
  });
}

Result<QueueConfig> BlockBackend::ReadQueue(uint32_t index, uint32_t queues, uint32_t ring_pages,
                                            abi::blkif::Protocol protocol, bool persistent) {
  const std::string dir = queues == 1 ? device_.frontend_path()
                                      : fmt::format("{}/queue-{}", device_.frontend_path(), index);
  QueueConfig q;
  q.index = index;
  q.frontend = device_.id().frontend;
  q.protocol = protocol;
  q.map_grants = map_grants();
  q.persistent = persistent;
  q.max_persistent_grants = options_.max_persistent_grants;
  q.max_bounce_pages = options_.max_bounce_pages;
  q.limits = RequestLimits{
      .disk_sectors = disk_->sectors(),
      .access = disk_->access(),
      .max_indirect_segments = options_.max_indirect_segments,
      .discard = discard_ ? DiscardSupport::kDiscard : DiscardSupport::kNone,
      .logical_sector_size = disk_->logical_sector_size(),
  };
  for (uint32_t i = 0; i < ring_pages; ++i) {
    // A single-page ring is `ring-ref`; a multi-page one `ring-ref0`..`ring-ref<N-1>`.
    const std::string node = ring_pages == 1 ? "ring-ref" : fmt::format("ring-ref{}", i);
    XPV_ASSIGN_OR_RETURN(std::string v, env_.store.Read(dir + "/" + node));
    auto ref = ParseUint(v, UINT32_MAX);
    if (!ref) return Err(EINVAL, "ring-ref is not a grant reference");
    q.ring_refs.push_back(GrantRef(static_cast<uint32_t>(*ref)));
  }
  XPV_ASSIGN_OR_RETURN(std::string port, env_.store.Read(dir + "/event-channel"));
  auto p = ParseUint(port, UINT32_MAX);
  if (!p) return Err(EINVAL, "event-channel is not a port");
  q.remote_port = EvtchnPort(static_cast<uint32_t>(*p));
  return q;
}

Status BlockBackend::Connect() {
  if (!disk_) return Err(EINVAL, "connect before prepare");
  const std::string fe = device_.frontend_path();
  auto read_uint = [&](std::string_view node, uint64_t fallback, uint64_t max) -> Result<uint64_t> {
    auto v = env_.store.Read(fe + "/" + std::string(node));
    if (!v) return fallback;
    auto n = ParseUint(*v, max);
    if (!n) return Err(EINVAL, "a frontend node is not a number in range");
    return *n;
  };
  XPV_ASSIGN_OR_RETURN(uint64_t queues,
                       read_uint("multi-queue-num-queues", 1, options_.max_queues));
  if (queues == 0) return Err(EINVAL, "multi-queue-num-queues is 0");
  XPV_ASSIGN_OR_RETURN(uint64_t order,
                       read_uint("ring-page-order", 0, options_.max_ring_page_order));
  XPV_ASSIGN_OR_RETURN(uint64_t fe_persistent, read_uint("feature-persistent", 0, 1));

  abi::blkif::Protocol protocol = abi::blkif::Protocol::kX86_64;
  if (auto p = env_.store.Read(fe + "/protocol")) {
    if (*p == abi::blkif::kProtocolX86_32) {
      protocol = abi::blkif::Protocol::kX86_32;
    } else if (*p != abi::blkif::kProtocolX86_64) {
      return Err(EINVAL, "unknown protocol");
    }
  }
  const bool persistent = fe_persistent == 1 && options_.persistent && map_grants();

  std::vector<std::unique_ptr<BackendQueue>> made;
  for (uint32_t i = 0; i < queues; ++i) {
    XPV_ASSIGN_OR_RETURN(QueueConfig config, ReadQueue(i, static_cast<uint32_t>(queues),
                                                       1u << order, protocol, persistent));
    BackendQueue::Env qenv{env_.platform, env_.ports, env_.loop, *disk_,
                           [this](const Error& e) { broken_ = e; }};
    XPV_ASSIGN_OR_RETURN(auto q, BackendQueue::Create(qenv, std::move(config)));
    made.push_back(std::move(q));
  }
  queues_ = std::move(made);
  spdlog::info("blkback {}: connected, {} queue(s) of {} page(s), {}{}", device_.backend_path(),
               queues, 1u << order, protocol == abi::blkif::Protocol::kX86_32 ? "x86_32" : "x86_64",
               persistent ? ", persistent grants" : "");
  return Ok();
}

void BlockBackend::Disconnect() {
  if (disk_) {
    // The queues' pages (mapped grants, bounce pages) are in the kernel's hands until their
    // operations complete: drain before dropping them.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kDrainTimeoutMs);
    while (disk_->in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
      (void)disk_->Wait(100);
      completions_.clear();
      disk_->Reap(completions_);
    }
  }
  queues_.clear();
}

void BlockBackend::OnDiskEvent() {
  completions_.clear();
  disk_->Reap(completions_);
  for (const DiskCompletion& c : completions_) {
    const uint32_t q = BackendQueue::TagQueue(c.tag);
    if (q < queues_.size()) queues_[q]->OnCompletion(c);
  }
  for (auto& q : queues_) q->AfterCompletions();
}

}  // namespace xpv::block
