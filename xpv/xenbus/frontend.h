// The frontend's half of the xenbus handshake: synchronous, for frontends that own their store
// client (userspace guests, tests, benchmarks).
//
//   XPV_ASSIGN_OR_RETURN(auto link, FrontendLink::Open(store, id));   // backend must exist
//   XPV_TRY(link.WaitForBackend({State::kInitWait, State::kConnected}, 5000));
//   ... read features with ReadBackend, publish rings with WriteFrontend ...
//   XPV_TRY(link.SwitchState(State::kInitialised));
//   XPV_TRY(link.WaitForBackend({State::kConnected}, 5000));
//   XPV_TRY(link.SwitchState(State::kConnected));
//
// While waiting, the link consumes the store client's watch events: a client that also serves
// other watches should not be shared with a link.
#pragma once

#include <initializer_list>
#include <string>

#include "xpv/base/result.h"
#include "xpv/xenbus/xenbus.h"
#include "xpv/xenstore/client.h"

namespace xpv::xenbus {

class FrontendLink {
 public:
  // Reads the frontend directory's `backend` and `backend-id` nodes (written by the toolstack)
  // and watches the backend's state. `id.backend` is ignored: the toolstack's nodes say.
  static Result<FrontendLink> Open(xenstore::Client& store, const DeviceId& id);
  FrontendLink(FrontendLink&&) noexcept;
  ~FrontendLink();

  const std::string& frontend_path() const { return frontend_path_; }
  const std::string& backend_path() const { return backend_path_; }
  DomId backend_id() const { return backend_id_; }

  // The backend's state now; Unknown when unreadable.
  State BackendState();
  // Waits until the backend's state is one of `wanted`. EPIPE when the backend closes
  // (Closing/Closed) and that was not wanted; ETIMEDOUT after `timeout_ms`.
  Result<State> WaitForBackend(std::initializer_list<State> wanted, int timeout_ms);
  Status SwitchState(State s);

  Result<std::string> ReadBackend(std::string_view node);
  // A decimal node of the backend's; `fallback` when absent, EINVAL when not a number <= max.
  Result<uint64_t> ReadBackendUint(std::string_view node, uint64_t fallback,
                                   uint64_t max = UINT64_MAX);
  Status WriteFrontend(std::string_view node, std::string_view value, uint32_t tx = 0);

 private:
  FrontendLink(xenstore::Client& store, std::string fe, std::string be, DomId be_id)
      : store_(&store),
        frontend_path_(std::move(fe)),
        backend_path_(std::move(be)),
        backend_id_(be_id) {}

  xenstore::Client* store_;
  std::string frontend_path_;
  std::string backend_path_;
  DomId backend_id_;
  bool watching_ = false;
};

}  // namespace xpv::xenbus
