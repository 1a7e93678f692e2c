// xenbus: how a frontend and a backend find each other in the store and agree to connect.
//
// Paths are Xen's canonical ones (docs/misc/xenstore-paths.pandoc):
//   backend   /local/domain/<backend>/backend/<type>/<frontend>/<devid>
//   frontend  /local/domain/<frontend>/device/<type>/<devid>
// Each end publishes its `state` (public/io/xenbus.h XenbusState) and watches the other's. The
// handshake is Initialising -> InitWait (backend ready, features published) -> Initialised
// (frontend's rings published) -> Connected -> Closing -> Closed; real peers skip states (a
// frontend may go straight to Connected; a toolstack may set Closing), and both machines here
// accept that.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xpv/base/result.h"
#include "xpv/base/types.h"

extern "C" {
#include <xen/io/xenbus.h>
}

namespace xpv::xenbus {

enum class State : uint8_t {
  kUnknown = XenbusStateUnknown,
  kInitialising = XenbusStateInitialising,
  kInitWait = XenbusStateInitWait,
  kInitialised = XenbusStateInitialised,
  kConnected = XenbusStateConnected,
  kClosing = XenbusStateClosing,
  kClosed = XenbusStateClosed,
  kReconfiguring = XenbusStateReconfiguring,
  kReconfigured = XenbusStateReconfigured,
};

const char* StateName(State s);
// The decimal a `state` node holds. Anything else (empty, junk, out of range) is nullopt: a peer
// wrote it, so it is not trusted.
std::optional<State> ParseState(std::string_view node);
std::string FormatState(State s);

// Parses a decimal unsigned node value written by a peer: digits only, no sign or spaces, at
// most `max`. nullopt otherwise.
std::optional<uint64_t> ParseUint(std::string_view node, uint64_t max = UINT64_MAX);

// One device: who serves it, who uses it, what it is.
struct DeviceId {
  std::string type;  // "vbd", "vif", "console"
  DomId backend;
  DomId frontend;
  uint32_t devid = 0;
  // The frontend's directory when it is named otherwise than the backend's: libxl puts a
  // `backendtype=qdisk` disk under backend/qdisk but its frontend under device/vbd. Empty: `type`.
  std::string frontend_type;

  std::string BackendPath() const;   // /local/domain/<backend>/backend/<type>/<frontend>/<devid>
  std::string FrontendPath() const;  // /local/domain/<frontend>/device/<frontend_type>/<devid>
};

// /local/domain/<backend>/backend/<type>: where a backend watches for its devices.
std::string BackendRoot(DomId backend, std::string_view type);

// Parses "<frontend>/<devid>" below BackendRoot (the rest of a watched path may follow, as in
// "3/51712/state"). nullopt when the path does not name a device.
std::optional<DeviceId> DeviceFromBackendPath(DomId backend, std::string_view type,
                                              std::string_view path);

}  // namespace xpv::xenbus
