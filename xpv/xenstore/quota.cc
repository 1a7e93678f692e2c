#include "xpv/xenstore/quota.h"

#include <fmt/format.h>

namespace xpv::xenstore {

std::string Quotas::Report() const {
  std::string out = "Quota settings:\n";
  for (const auto& q : kQuotaTable) {
    fmt::format_to(std::back_inserter(out), "{:<17}: {:8} {}\n", q.name, get(q.kind),
                   q.description);
  }
  return out;
}

}  // namespace xpv::xenstore
