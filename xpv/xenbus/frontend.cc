#include "xpv/xenbus/frontend.h"

#include <algorithm>
#include <chrono>

namespace xpv::xenbus {

namespace {
constexpr std::string_view kToken = "xpv-fe";
}

Result<FrontendLink> FrontendLink::Open(xenstore::Client& store, const DeviceId& id) {
  const std::string fe = id.FrontendPath();
  XPV_ASSIGN_OR_RETURN(std::string be, store.Read(fe + "/backend"));
  XPV_ASSIGN_OR_RETURN(std::string be_id_node, store.Read(fe + "/backend-id"));
  auto be_id = ParseUint(be_id_node, kDomIdFirstReserved - 1);
  if (!be_id) return Err(EINVAL, "backend-id is not a domain id");
  // The backend directory must be where backend-id's backends live, for this very device.
  DeviceId expect = id;
  expect.backend = DomId(static_cast<uint32_t>(*be_id));
  if (be != expect.BackendPath()) return Err(EINVAL, "backend node is not the canonical path");
  FrontendLink link(store, fe, std::move(be), expect.backend);
  XPV_TRY(store.Watch(link.backend_path_ + "/state", kToken));
  link.watching_ = true;
  return link;
}

FrontendLink::FrontendLink(FrontendLink&& o) noexcept
    : store_(o.store_),
      frontend_path_(std::move(o.frontend_path_)),
      backend_path_(std::move(o.backend_path_)),
      backend_id_(o.backend_id_),
      watching_(std::exchange(o.watching_, false)) {}

FrontendLink::~FrontendLink() {
  if (watching_) (void)store_->Unwatch(backend_path_ + "/state", kToken);
}

State FrontendLink::BackendState() {
  auto node = ReadBackend("state");
  if (!node) return State::kUnknown;
  return ParseState(*node).value_or(State::kUnknown);
}

Result<State> FrontendLink::WaitForBackend(std::initializer_list<State> wanted, int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const State s = BackendState();
    if (std::ranges::find(wanted, s) != wanted.end()) return s;
    if (s == State::kClosing || s == State::kClosed) return Err(EPIPE, "backend closed");
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Err(ETIMEDOUT, "backend did not reach the state");
    // Any event may be ours; the state is re-read either way.
    auto ev = store_->NextEvent(static_cast<int>(std::min<int64_t>(left, 1000)));
    if (!ev && ev.error().code != ETIMEDOUT) return ev.error();
  }
}

Status FrontendLink::SwitchState(State s) {
  return WriteFrontend("state", FormatState(s));
}

Result<std::string> FrontendLink::ReadBackend(std::string_view node) {
  return store_->Read(backend_path_ + "/" + std::string(node));
}

Result<uint64_t> FrontendLink::ReadBackendUint(std::string_view node, uint64_t fallback,
                                               uint64_t max) {
  auto v = ReadBackend(node);
  if (!v) return v.error().code == ENOENT ? Result<uint64_t>(fallback) : v.error();
  auto n = ParseUint(*v, max);
  if (!n) return Err(EINVAL, "backend node is not a number in range");
  return *n;
}

Status FrontendLink::WriteFrontend(std::string_view node, std::string_view value, uint32_t tx) {
  return store_->Write(frontend_path_ + "/" + std::string(node), value, tx);
}

}  // namespace xpv::xenbus
