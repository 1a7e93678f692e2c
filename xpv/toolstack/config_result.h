// ConfigResult<T>: a value or a ConfigError, for the toolstack's parsers of text a person wrote.
//
// xpv::Result carries a static message, which cannot say which file, line or value was wrong; a
// person editing guest.cfg needs exactly that. So these parsers return the whole line to print,
// "guest.cfg:3: memory: expected a number, got \"lots\"", with the same API subset as xpv::Result
// (has_value, value, error, *, ->), so XPV_TRY and XPV_ASSIGN_OR_RETURN work unchanged.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include "xpv/base/check.h"
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
class [[nodiscard]] ConfigResult {
 public:
  ConfigResult(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  ConfigResult(ConfigError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    XPV_CHECK(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    XPV_CHECK(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    XPV_CHECK(has_value());
    return std::get<0>(std::move(v_));
  }
  const ConfigError& error() const {
    XPV_CHECK(!has_value());
    return std::get<1>(v_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, ConfigError> v_;
};

template <>
class [[nodiscard]] ConfigResult<void> {
 public:
  ConfigResult() = default;
  ConfigResult(ConfigError error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const ConfigError& error() const {
    XPV_CHECK(!ok_);
    return error_;
  }

 private:
  ConfigError error_;
  bool ok_ = true;
};

using ConfigStatus = ConfigResult<void>;
inline ConfigStatus ConfigOk() {
  return {};
}

}  // namespace xpv::toolstack
