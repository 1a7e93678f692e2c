// Result<T>: a value or an Error, for anything a guest, a peer or a user can cause.
//
// A subset of std::expected's API (value(), error(), has_value(), operator*, operator->), kept here
// because clang 14 (our fuzzing compiler) cannot use libstdc++'s <expected>.
#pragma once

#include <cerrno>
#include <string_view>
#include <utility>
#include <variant>

#include "xpv/base/check.h"

namespace xpv {

// An errno-style code and a static message. The message must outlive the Error (a literal).
struct Error {
  int code = EINVAL;
  std::string_view message;

  friend bool operator==(const Error& a, const Error& b) { return a.code == b.code; }
};

// Mirrors std::unexpected: `return Err(ENOENT, "no such node");`
inline Error Err(int code, std::string_view message = {}) {
  return Error{code, message};
}

// Result<T, E>: E is Error unless a caller needs a richer error (the toolstack's parsers carry the
// whole "FILE:LINE: what is wrong" line).
template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

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
  const E& error() const {
    XPV_CHECK(!has_value());
    return std::get<1>(v_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, E> v_;
};

template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(E error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const {
    XPV_CHECK(!ok_);
    return error_;
  }

 private:
  E error_{};
  bool ok_ = true;
};

using Status = Result<void>;
inline Status Ok() {
  return {};
}

}  // namespace xpv

// XPV_TRY(expr): evaluates a Result; on error returns the error from the enclosing function.
#define XPV_TRY(expr)                                     \
  do {                                                    \
    auto&& xpv_try_result_ = (expr);                      \
    if (!xpv_try_result_) return xpv_try_result_.error(); \
  } while (0)

// XPV_ASSIGN_OR_RETURN(lhs, expr): `XPV_ASSIGN_OR_RETURN(auto fd, Open(path));`
#define XPV_CONCAT_INNER_(a, b) a##b
#define XPV_CONCAT_(a, b) XPV_CONCAT_INNER_(a, b)
#define XPV_ASSIGN_OR_RETURN(lhs, expr) \
  XPV_ASSIGN_OR_RETURN_IMPL_(XPV_CONCAT_(xpv_r_, __LINE__), lhs, expr)
#define XPV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp) return tmp.error();                    \
  lhs = std::move(tmp).value()
