// The backend's half of the xenbus handshake, for one device.
//
// A backend process watches BackendRoot() for devices the toolstack adds; for each it creates a
// BackendDevice with hooks that know the device type (block, net, ...):
//
//   Prepare   the toolstack's nodes are there: open the backing resource, publish features.
//             The machine then writes InitWait.
//   Connect   the frontend reached Initialised or Connected: read its ring references and
//             channel, map and bind them. The machine then writes Connected.
//   Disconnect  the frontend closes, vanishes or misbehaves: unmap and unbind. Idempotent.
//
// Events are fed in with Update() whenever a watched path changes (the device's own backend
// directory and the frontend's state node). Every decision is made on a fresh read of the
// frontend's state; an unparsable state counts as Closed. A hook's failure writes the reason to
// the backend's `error` node (as Linux's xenbus_dev_fatal does) and closes the device.
#pragma once

#include <string>

#include "xpv/base/result.h"
#include "xpv/xenbus/xenbus.h"
#include "xpv/xenstore/client.h"

namespace xpv::xenbus {

class BackendHooks {
 public:
  virtual ~BackendHooks() = default;
  virtual Status Prepare() = 0;
  virtual Status Connect() = 0;
  virtual void Disconnect() = 0;
};

class BackendDevice {
 public:
  // `store` and `hooks` must outlive the device. Nothing happens until Start().
  BackendDevice(xenstore::Client& store, DeviceId id, BackendHooks& hooks);

  // Reads the toolstack's `frontend` node, watches the frontend's state, runs Prepare and
  // writes InitWait. Fails (and closes) when the toolstack's nodes are missing or bad.
  Status Start();
  // Re-evaluates after a watch fired. Returns false once the device is finished: the toolstack
  // removed the backend directory or the frontend is gone for good; the owner then drops it.
  bool Update();
  // Disconnects and writes Closed: the backend process is shutting down.
  void Shutdown();

  const DeviceId& id() const { return id_; }
  const std::string& backend_path() const { return backend_path_; }
  const std::string& frontend_path() const { return frontend_path_; }
  State state() const { return state_; }
  // The watch token this device registered (events carrying it belong to it).
  const std::string& token() const { return token_; }

  // Gives up on the device: writes `what` and the error to the backend's `error` node,
  // disconnects and goes to Closing (Linux's xenbus_dev_fatal). For data-path failures too.
  void Fail(std::string_view what, const Error& e);

  // Reads a node of the frontend's directory / writes one of the backend's.
  Result<std::string> ReadFrontend(std::string_view node);
  Status WriteBackend(std::string_view node, std::string_view value);

 private:
  Status SetState(State s);
  void Close(State final_state);

  xenstore::Client& store_;
  DeviceId id_;
  BackendHooks& hooks_;
  std::string backend_path_;
  std::string frontend_path_;
  std::string token_;
  State state_ = State::kInitialising;
  bool connected_ = false;
  bool watching_ = false;
};

}  // namespace xpv::xenbus
