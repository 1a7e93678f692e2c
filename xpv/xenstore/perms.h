// Node permissions: docs/misc/xenstore.txt "Permissions". The first entry names the owner and the
// access of every domain not listed; later entries grant one domain its access.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/types.h"

namespace xpv::xenstore {

enum PermBits : uint8_t {
  kPermNone = 0,
  kPermRead = 1,
  kPermWrite = 2,
  kPermBoth = kPermRead | kPermWrite,
  kPermOwner = 4,
};

struct Perm {
  DomId domid;
  uint8_t bits = kPermNone;  // PermBits without kPermOwner
  friend bool operator==(const Perm&, const Perm&) = default;
};

// Immutable and shared: nodes created under a parent share its list.
using PermList = std::vector<Perm>;
using PermsRef = std::shared_ptr<const PermList>;

PermsRef MakePerms(PermList list);
// Owner `domid`, no access for others: "n<domid>".
PermsRef OwnerOnlyPerms(DomId domid);

// Parses the strings of a SET_PERMS payload ("r0", "b5", ...), or EINVAL.
Result<PermList> ParsePerms(const std::vector<std::string_view>& strings);
// "n0\0r1\0": the GET_PERMS reply.
std::string FormatPerms(const PermList& perms);

// Who is asking: a domain, whether it is privileged (dom0 and sockets), and its SET_TARGET target.
struct Caller {
  DomId domid;
  bool privileged = false;
  bool has_target = false;
  DomId target;
};

// The access `caller` has to a node with `perms` (Xen's perm_for_conn): kPermRead|kPermWrite|
// kPermOwner for the privileged and the owner (or the owner's controller), else the first entry
// naming the caller or its target, else the default.
uint8_t PermFor(const Caller& caller, const PermList& perms);

}  // namespace xpv::xenstore
