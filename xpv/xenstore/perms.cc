#include "xpv/xenstore/perms.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>

namespace xpv::xenstore {

PermsRef MakePerms(PermList list) {
  return std::make_shared<const PermList>(std::move(list));
}

PermsRef OwnerOnlyPerms(DomId domid) {
  return MakePerms({Perm{domid, kPermNone}});
}

Result<PermList> ParsePerms(const std::vector<std::string_view>& strings) {
  PermList out;
  out.reserve(strings.size());
  for (std::string_view s : strings) {
    if (s.empty()) return Err(EINVAL, "empty permission");
    Perm p;
    switch (s[0]) {
      case 'n':
        p.bits = kPermNone;
        break;
      case 'r':
        p.bits = kPermRead;
        break;
      case 'w':
        p.bits = kPermWrite;
        break;
      case 'b':
        p.bits = kPermBoth;
        break;
      default:
        return Err(EINVAL, "bad permission letter");
    }
    // libxenstore's xs_strings_to_perms(): strtol(s + 1, &end, 0) must consume a non-empty rest;
    // the long is then truncated to unsigned int ("n-1" names domain 4294967295, "n010" domain 8).
    const std::string digits(s.substr(1));
    if (digits.empty()) return Err(EINVAL, "missing permission domid");
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(digits.c_str(), &end, 0);
    if (*end != '\0') return Err(EINVAL, "bad permission domid");
    const uint32_t id = static_cast<uint32_t>(v);
    p.domid = DomId(id);
    out.push_back(p);
  }
  return out;
}

std::string FormatPerms(const PermList& perms) {
  std::string out;
  for (const Perm& p : perms) {
    constexpr char kLetters[] = {'n', 'r', 'w', 'b'};
    out += kLetters[p.bits & kPermBoth];
    // libxenstore prints the id as a signed int ("r-1" for 4294967295), as Xen's daemon replies.
    fmt::format_to(std::back_inserter(out), "{}", static_cast<int32_t>(p.domid.value));
    out += '\0';
  }
  return out;
}

uint8_t PermFor(const Caller& caller, const PermList& perms) {
  constexpr uint8_t kAll = kPermRead | kPermWrite | kPermOwner;
  if (caller.privileged || perms.empty()) return kAll;
  const DomId owner = perms[0].domid;
  if (owner == caller.domid || (caller.has_target && owner == caller.target)) return kAll;
  for (size_t i = 1; i < perms.size(); ++i) {
    if (perms[i].domid == caller.domid || (caller.has_target && perms[i].domid == caller.target)) {
      return perms[i].bits & kPermBoth;
    }
  }
  return perms[0].bits & kPermBoth;
}

}  // namespace xpv::xenstore
