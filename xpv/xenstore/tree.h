// The committed node tree. Children keep their creation order, which DIRECTORY reports, as Xen's
// C daemon does. Large directories get a hash index so that lookups stay O(1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xpv/xenstore/perms.h"

namespace xpv::xenstore {

class Node {
 public:
  Node(std::string name, Node* parent) : name_(std::move(name)), parent_(parent) {}
  // Frees the subtree iteratively: unique_ptr's own recursion would follow the tree's depth.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  std::string_view name() const { return name_; }
  Node* parent() const { return parent_; }
  const std::string& value() const { return value_; }
  const PermsRef& perms() const { return perms_; }
  DomId owner() const { return (*perms_)[0].domid; }
  // Bumped whenever the node changes: created, value, permissions, a child added or removed.
  // Transactions compare it; DIRECTORY_PART reports it.
  uint64_t gen() const { return gen_; }
  const std::vector<std::unique_ptr<Node>>& children() const { return children_; }

  Node* FindChild(std::string_view name) const;
  // Total bytes of the DIRECTORY reply: each child's name and its nul.
  size_t ChildrenBytes() const { return children_bytes_; }
  void AppendChildrenTo(std::string& out) const;

 private:
  friend class Tree;
  static constexpr size_t kIndexThreshold = 16;

  void RebuildIndex();

  std::string name_;
  Node* parent_;
  std::string value_;
  PermsRef perms_;
  uint64_t gen_ = 0;
  size_t children_bytes_ = 0;
  std::vector<std::unique_ptr<Node>> children_;
  std::unique_ptr<std::unordered_map<std::string_view, Node*>> index_;
};

class Tree {
 public:
  // A tree holding "/" owned by dom0 with no access for others, as Xen's daemon starts.
  Tree();

  Node& root() { return root_; }
  const Node& root() const { return root_; }

  // The node at canonical absolute `path`, or null.
  Node* Find(std::string_view path) const;
  // The deepest existing node on the way to `path` (at least "/").
  Node* DeepestExisting(std::string_view path) const;

  // Adds child `name` to `parent` with `value` and `perms`; the child must not exist.
  Node* AddChild(Node* parent, std::string_view name, std::string value, PermsRef perms);
  void SetValue(Node* node, std::string value);
  void SetPerms(Node* node, PermsRef perms);
  // Removes `node` (not the root) and its subtree, calling `visit(path, node)` for each removed
  // node, children before parents.
  template <typename Visit>
  void Remove(Node* node, std::string& path, Visit&& visit);

  size_t node_count() const { return node_count_; }
  uint64_t NextGen() { return ++gen_counter_; }

 private:
  void Unlink(Node* node);

  Node root_;
  size_t node_count_ = 1;
  uint64_t gen_counter_ = 0;
};

template <typename Visit>
void Tree::Remove(Node* node, std::string& path, Visit&& visit) {
  // Depth-first over an explicit stack of (node, path length): no recursion on guest-built depth.
  struct Frame {
    Node* node;
    size_t path_len;
    size_t next_child;
  };
  std::vector<Frame> stack;
  stack.push_back({node, path.size(), 0});
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next_child < f.node->children_.size()) {
      Node* child = f.node->children_[f.next_child++].get();
      path.resize(f.path_len);
      if (path != "/") path += '/';
      path += child->name_;
      stack.push_back({child, path.size(), 0});
      continue;
    }
    path.resize(f.path_len);
    visit(std::string_view(path), *f.node);
    stack.pop_back();
  }
  Unlink(node);
}

}  // namespace xpv::xenstore
