#include "xpv/xenstore/path.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace xpv::xenstore {

std::string DomainPath(uint32_t domid) {
  return fmt::format("/local/domain/{}", domid);
}

namespace {

bool ValidChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '/' || c == '_' || c == '@';
}

}  // namespace

size_t CountedPathLength(std::string_view path) {
  // Xen: sscanf(node, "/local/domain/%5u/%n", ...): at most five digits, then a slash.
  constexpr std::string_view kPrefix = "/local/domain/";
  if (!path.starts_with(kPrefix)) return path.size();
  size_t i = kPrefix.size();
  // %u skips leading white space and accepts a sign; the charset rule rejects those paths anyway.
  const size_t digits_start = i;
  while (i < path.size() && i - digits_start < 5 && path[i] >= '0' && path[i] <= '9') ++i;
  if (i == digits_start || i >= path.size() || path[i] != '/') return path.size();
  return path.size() - (i + 1);
}

Result<std::string> Canonicalize(DomId caller, std::string_view raw, Special special,
                                 size_t path_max) {
  if (IsSpecial(raw)) {
    if (special == Special::kReject) return Err(EINVAL, "special path not allowed here");
  }
  std::string path;
  if (!raw.empty() && (raw[0] == '/' || raw[0] == '@')) {
    path.assign(raw);
  } else {
    path = DomainPath(caller.value);
    path += '/';
    path += raw;
  }
  if (path[0] == '@') {
    // Xen checks only the length of a special name.
    if (path.size() > path_max) return Err(EINVAL, "path too long");
    return path;
  }
  if (path.size() > 1 && path.back() == '/') return Err(EINVAL, "trailing slash");
  if (path.find("//") != std::string::npos) return Err(EINVAL, "empty path component");
  if (CountedPathLength(path) > path_max) return Err(EINVAL, "path too long");
  if (!std::all_of(path.begin(), path.end(), ValidChar)) return Err(EINVAL, "invalid character");
  return path;
}

std::string_view ParentPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string_view::npos) return "/";
  return path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool IsSelfOrDescendant(std::string_view child, std::string_view parent) {
  if (parent == "/") return !child.empty() && child[0] == '/';
  if (!child.starts_with(parent)) return false;
  return child.size() == parent.size() || child[parent.size()] == '/';
}

size_t DepthBelow(std::string_view path, std::string_view ancestor) {
  if (path.size() == ancestor.size()) return 0;
  std::string_view rest = path.substr(ancestor == "/" ? 1 : ancestor.size() + 1);
  return static_cast<size_t>(std::count(rest.begin(), rest.end(), '/')) + 1;
}

uint32_t XenAtoi(std::string_view text) {
  // glibc atoi() is (int)strtol(s, NULL, 10); Xen stores the int in an unsigned int.
  std::string s(text);
  const long v = std::strtol(s.c_str(), nullptr, 10);
  return static_cast<uint32_t>(static_cast<int>(v));
}

}  // namespace xpv::xenstore
