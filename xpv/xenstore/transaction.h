// A transaction's private view of the store: an overlay of the nodes it changed over the committed
// tree, the generations of what it read, and the log of its successful operations, which commit
// replays onto the committed tree once nothing it read has changed.
//
// Conflicts are per node and per aspect: a node's value/permissions/existence and its child list
// are versioned separately (Node::gen and Node::child_gen), so two transactions that add different
// children under one parent both commit; a transaction that listed a directory conflicts with one
// that changed that directory's children.
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

  // What the transaction saw of a committed node when it first looked (gen 0: did not exist).
  // Later reads in the transaction see this snapshot, not later commits by others.
  struct ReadRecord {
    uint64_t gen = 0;
    uint64_t child_gen = 0;
    bool children_read = false;
    std::string value;
    PermsRef perms;
    std::string children;  // the DIRECTORY payload, once children_read
  };
  // A node as the transaction sees it after its own changes.
  struct TxNode {
    bool exists = false;
    std::string value;
    PermsRef perms;
    std::vector<std::string> children;
    bool fresh = false;  // created by the transaction: committed children below are not visible
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
  std::unordered_map<std::string, ReadRecord> reads_;
  std::unordered_map<std::string, TxNode> overlay_;
  std::vector<Op> ops_;
  int64_t node_delta_ = 0;
  bool failed_ = false;  // hit a quota: commit answers ENOMEM, as Xen's daemon does  // nodes the committing domain will own after commit, minus before
};

}  // namespace xpv::xenstore
