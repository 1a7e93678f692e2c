#include "xpv/platform/sim/config.h"

#include <cstdlib>

namespace xpv::platform::sim {

const char* MappingModeName(MappingMode mode) {
  switch (mode) {
    case MappingMode::kCopy:
      return "copy";
    case MappingMode::kMap:
      return "map";
  }
  return "?";
}

std::optional<MappingMode> ParseMappingMode(std::string_view s) {
  if (s == "copy") return MappingMode::kCopy;
  if (s == "map") return MappingMode::kMap;
  return std::nullopt;
}

std::string DefaultSocketPath() {
  const char* env = std::getenv(kEnvHvSocket);
  if (env != nullptr && *env != '\0') return env;
  return "/run/xpv/hv.sock";
}

}  // namespace xpv::platform::sim
