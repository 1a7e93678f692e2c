#include "xpv/xenbus/backend.h"

#include <fmt/format.h>
#include <cstring>

#include "xpv/base/log.h"

namespace xpv::xenbus {

BackendDevice::BackendDevice(xenstore::Client& store, DeviceId id, BackendHooks& hooks)
    : store_(store), id_(std::move(id)), hooks_(hooks), backend_path_(id_.BackendPath()) {
  token_ = "xpv-be:" + backend_path_;
}

Result<std::string> BackendDevice::ReadFrontend(std::string_view node) {
  return store_.Read(frontend_path_ + "/" + std::string(node));
}

Status BackendDevice::WriteBackend(std::string_view node, std::string_view value) {
  return store_.Write(backend_path_ + "/" + std::string(node), value);
}

Status BackendDevice::SetState(State s) {
  XPV_TRY(WriteBackend("state", FormatState(s)));
  state_ = s;
  return Ok();
}

void BackendDevice::Fail(std::string_view what, const Error& e) {
  const std::string msg = fmt::format("{} {}: {}", std::strerror(e.code), what, e.message);
  spdlog::warn("xenbus {}: {}", backend_path_, msg);
  (void)WriteBackend("error", msg);
  Close(State::kClosing);
}

void BackendDevice::Close(State final_state) {
  if (connected_) hooks_.Disconnect();
  connected_ = false;
  (void)SetState(final_state);
}

Status BackendDevice::Start() {
  // The toolstack wrote `frontend` (the frontend's directory) and `frontend-id`; the frontend's
  // directory must be the canonical one for the frontend domain the backend path names, or a
  // toolstack mistake (or a forged node) would have us watch someone else's device.
  auto fe = store_.Read(backend_path_ + "/frontend");
  if (!fe) {
    Fail("reading frontend", fe.error());
    return fe.error();
  }
  if (*fe != id_.FrontendPath()) {
    const Error e = Err(EINVAL, "frontend node is not the canonical frontend path");
    Fail("checking frontend", e);
    return e;
  }
  frontend_path_ = *fe;
  if (auto st = store_.Watch(frontend_path_ + "/state", token_); !st) {
    Fail("watching the frontend", st.error());
    return st.error();
  }
  watching_ = true;
  if (auto st = hooks_.Prepare(); !st) {
    Fail("preparing", st.error());
    return st.error();
  }
  return SetState(State::kInitWait);
}

bool BackendDevice::Update() {
  // The toolstack removing our directory ends the device (xl's device removal).
  if (!store_.Read(backend_path_ + "/state")) {
    if (connected_) hooks_.Disconnect();
    connected_ = false;
    if (watching_) (void)store_.Unwatch(frontend_path_ + "/state", token_);
    watching_ = false;
    return false;
  }
  auto node = ReadFrontend("state");
  const State fe = node ? ParseState(*node).value_or(State::kClosed) : State::kClosed;
  switch (fe) {
    case State::kInitialised:
    case State::kConnected:
      if (state_ == State::kInitWait) {
        if (auto st = hooks_.Connect(); !st) {
          Fail("connecting", st.error());
          break;
        }
        connected_ = true;
        (void)SetState(State::kConnected);
      }
      break;
    case State::kInitialising:
    case State::kInitWait:
      // A frontend starting over (a rebooted or kexec'd guest) after we closed: offer again.
      if (state_ == State::kClosed || state_ == State::kClosing) {
        if (connected_) hooks_.Disconnect();
        connected_ = false;
        if (auto st = hooks_.Prepare(); !st) {
          Fail("preparing", st.error());
          break;
        }
        (void)SetState(State::kInitWait);
      }
      break;
    case State::kClosing:
      if (state_ != State::kClosing && state_ != State::kClosed) Close(State::kClosing);
      break;
    case State::kClosed:
    case State::kUnknown:
    case State::kReconfiguring:
    case State::kReconfigured:
      if (state_ != State::kClosed) Close(State::kClosed);
      break;
  }
  return true;
}

void BackendDevice::Shutdown() {
  Close(State::kClosed);
  if (watching_) (void)store_.Unwatch(frontend_path_ + "/state", token_);
  watching_ = false;
}

}  // namespace xpv::xenbus
