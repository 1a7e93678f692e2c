// Per-domain quotas: the names, meanings and defaults of Xen 4.17's C daemon ("quota" in
// xenstore-control). dom0 and other privileged connections are exempt, as there.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xpv::xenstore {

enum class QuotaKind : uint8_t {
  kNodes,             // nodes owned per domain
  kWatches,           // watches per domain
  kTransactions,      // open transactions per domain
  kOutstanding,       // outstanding requests per domain
  kTransactionNodes,  // nodes accessed per transaction
  kMemory,            // store memory per domain
  kNodeSize,          // bytes of a node's value (and, for permissions, its entries)
  kPathMax,           // length of a path without its /local/domain/<id>/ prefix
  kPermissions,       // permission entries per node
};
inline constexpr size_t kQuotaCount = 9;

struct QuotaInfo {
  QuotaKind kind;
  std::string_view name;
  uint32_t default_value;
  std::string_view description;
};

// Xen 4.17's table, in its order.
inline constexpr std::array<QuotaInfo, kQuotaCount> kQuotaTable = {{
    {QuotaKind::kNodes, "nodes", 1000, "Nodes per domain"},
    {QuotaKind::kWatches, "watches", 128, "Watches per domain"},
    {QuotaKind::kTransactions, "transactions", 10, "Transactions per domain"},
    {QuotaKind::kOutstanding, "outstanding", 20, "Outstanding requests per domain"},
    {QuotaKind::kTransactionNodes, "transaction-nodes", 1024,
     "Max. number of accessed nodes per transaction"},
    {QuotaKind::kMemory, "memory", 2621440, "Total Xenstore memory per domain (error level)"},
    {QuotaKind::kNodeSize, "node-size", 2048, "Max. size of a node"},
    {QuotaKind::kPathMax, "path-max", 2048, "Max. length of a node path"},
    {QuotaKind::kPermissions, "permissions", 5, "Max. number of permissions per node"},
}};

class Quotas {
 public:
  Quotas() {
    for (const auto& q : kQuotaTable) values_[static_cast<size_t>(q.kind)] = q.default_value;
  }
  uint32_t get(QuotaKind k) const { return values_[static_cast<size_t>(k)]; }
  void set(QuotaKind k, uint32_t v) { values_[static_cast<size_t>(k)] = v; }

  static std::optional<QuotaKind> Find(std::string_view name) {
    for (const auto& q : kQuotaTable) {
      if (q.name == name) return q.kind;
    }
    return std::nullopt;
  }
  // The CONTROL "quota" report, formatted as Xen's.
  std::string Report() const;

 private:
  std::array<uint32_t, kQuotaCount> values_{};
};

}  // namespace xpv::xenstore
