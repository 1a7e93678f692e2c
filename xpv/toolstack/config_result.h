// ConfigResult<T>: a value or a ConfigError, for the toolstack's parsers of text a person wrote.
//
// xpv::Result carries a static message, which cannot say which file, line or value was wrong; a
// person editing guest.cfg needs exactly that. So these parsers return the whole line to print,
// "guest.cfg:3: memory: expected a number, got \"lots\"": an xpv::Result whose error is a
// ConfigError, so XPV_TRY and XPV_ASSIGN_OR_RETURN work unchanged.
#pragma once

#include <cerrno>
#include <string>
#include <utility>

#include "xpv/base/result.h"

namespace xpv::toolstack {

struct ConfigError {
  std::string message;

  // For callers that speak xpv::Error: every configuration error is EINVAL.
  Error ToError() const { return Err(EINVAL, "invalid configuration"); }
  friend bool operator==(const ConfigError&, const ConfigError&) = default;
};

inline ConfigError ConfigErr(std::string message) {
  return ConfigError{std::move(message)};
}

template <typename T>
using ConfigResult = Result<T, ConfigError>;

using ConfigStatus = ConfigResult<void>;
inline ConfigStatus ConfigOk() {
  return {};
}

}  // namespace xpv::toolstack
