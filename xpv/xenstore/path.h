// Node paths: resolution of relative paths and validation, as docs/misc/xenstore.txt
// ("Paths") and Xen's is_valid_nodename() define them.
#pragma once

#include <string>
#include <string_view>

#include "xpv/abi/xs_wire.h"
#include "xpv/base/result.h"
#include "xpv/base/types.h"

namespace xpv::xenstore {

// XENSTORE_REL_PATH_MAX: the default "path-max" quota. Xen counts a path's length without its
// "/local/domain/<domid>/" prefix, for every connection, dom0 included.
inline constexpr size_t kDefaultPathMax = XENSTORE_REL_PATH_MAX;

enum class Special { kReject, kAllow };

// "/local/domain/<domid>".
std::string DomainPath(uint32_t domid);

// True for "@introduceDomain"-style names.
inline bool IsSpecial(std::string_view path) {
  return !path.empty() && path[0] == '@';
}

// Resolves `raw` (absolute, relative to the caller's domain path, or "@special" when allowed) into
// a canonical absolute path, or EINVAL.
Result<std::string> Canonicalize(DomId caller, std::string_view raw, Special special,
                                 size_t path_max);

// The part of `path` that counts against path-max.
size_t CountedPathLength(std::string_view path);

// "/a/b" -> "/a"; "/a" -> "/"; "/" -> "/".
std::string_view ParentPath(std::string_view path);
// "/a/b" -> "b".
std::string_view BaseName(std::string_view path);
// True when `child` is `parent` or lies below it (Xen's is_child()).
bool IsSelfOrDescendant(std::string_view child, std::string_view parent);
// Number of components below `ancestor` (0 for the node itself); `path` must be self or descendant.
size_t DepthBelow(std::string_view path, std::string_view ancestor);

// Xen's atoi() on decimal text, including its wrap of large values to unsigned int.
uint32_t XenAtoi(std::string_view text);

}  // namespace xpv::xenstore
