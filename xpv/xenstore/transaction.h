// A transaction's private view of the store, as Xen 4.17's daemon keeps it: a copy of each node it
// touched, taken at first access together with the node's generation, and the log of its
// successful operations. Commit replays the log onto the committed tree once every touched node
// still has the generation the transaction saw; otherwise it fails with EAGAIN. A conflict is thus
// a change to a node the transaction depended on: nodes it never touched may change freely.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "xpv/xenstore/perms.h"

namespace xpv::xenstore {

class Transaction {
 public:
  explicit Transaction(uint32_t id) : id_(id) {}
  uint32_t id() const { return id_; }

 private:
  friend class Engine;

  // A node the transaction touched: as the committed tree had it at first access (for the
  // commit-time check), and as the transaction sees it now.
  struct TxNode {
    bool base_exists = false;
    uint64_t base_gen = 0;
    bool exists = false;
    std::string value;
    PermsRef perms;
    std::vector<std::string> children;
  };
  // Creation and value changes both replay as a write: commit checks the node is as it was.
  enum class OpKind { kWrite, kRm, kSetPerms };
  struct Op {
    OpKind kind;
    std::string path;
    std::string value;
    PermsRef perms;
  };

  uint32_t id_;
  std::unordered_map<std::string, TxNode> nodes_;
  std::vector<Op> ops_;
  int64_t node_delta_ = 0;
  bool failed_ = false;  // hit a quota: commit answers ENOMEM, as Xen's daemon does  // nodes the
                         // committing domain will own after commit, minus before
};

}  // namespace xpv::xenstore
