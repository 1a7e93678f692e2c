#include "xpv/xenbus/xenbus.h"

#include <fmt/format.h>
#include <charconv>

namespace xpv::xenbus {

const char* StateName(State s) {
  switch (s) {
    case State::kUnknown:
      return "Unknown";
    case State::kInitialising:
      return "Initialising";
    case State::kInitWait:
      return "InitWait";
    case State::kInitialised:
      return "Initialised";
    case State::kConnected:
      return "Connected";
    case State::kClosing:
      return "Closing";
    case State::kClosed:
      return "Closed";
    case State::kReconfiguring:
      return "Reconfiguring";
    case State::kReconfigured:
      return "Reconfigured";
  }
  return "?";
}

std::optional<uint64_t> ParseUint(std::string_view node, uint64_t max) {
  if (node.empty() || node.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(node.data(), node.data() + node.size(), v);
  if (ec != std::errc() || end != node.data() + node.size() || v > max) return std::nullopt;
  return v;
}

std::optional<State> ParseState(std::string_view node) {
  auto v = ParseUint(node, static_cast<uint64_t>(State::kReconfigured));
  if (!v) return std::nullopt;
  return static_cast<State>(*v);
}

std::string FormatState(State s) {
  return std::to_string(static_cast<int>(s));
}

std::string DeviceId::BackendPath() const {
  return fmt::format("/local/domain/{}/backend/{}/{}/{}", backend.value, type, frontend.value,
                     devid);
}

std::string DeviceId::FrontendPath() const {
  return fmt::format("/local/domain/{}/device/{}/{}", frontend.value,
                     frontend_type.empty() ? type : frontend_type, devid);
}

std::string BackendRoot(DomId backend, std::string_view type) {
  return fmt::format("/local/domain/{}/backend/{}", backend.value, type);
}

std::optional<DeviceId> DeviceFromBackendPath(DomId backend, std::string_view type,
                                              std::string_view path) {
  const std::string root = BackendRoot(backend, type) + "/";
  if (!path.starts_with(root)) return std::nullopt;
  path.remove_prefix(root.size());
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto fe = ParseUint(path.substr(0, slash), kDomIdFirstReserved - 1);
  std::string_view rest = path.substr(slash + 1);
  auto devid = ParseUint(rest.substr(0, rest.find('/')), UINT32_MAX);
  if (!fe || !devid) return std::nullopt;
  return DeviceId{std::string(type), backend, DomId(static_cast<uint32_t>(*fe)),
                  static_cast<uint32_t>(*devid)};
}

}  // namespace xpv::xenbus
