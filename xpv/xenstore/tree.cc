#include "xpv/xenstore/tree.h"

#include <algorithm>

#include "xpv/base/check.h"

namespace xpv::xenstore {

Node::~Node() {
  std::vector<std::unique_ptr<Node>> stack = std::move(children_);
  while (!stack.empty()) {
    std::unique_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    for (auto& c : n->children_) stack.push_back(std::move(c));
    n->children_.clear();  // `n` is freed here with no children left to recurse into
  }
}

Node* Node::FindChild(std::string_view name) const {
  if (index_) {
    auto it = index_->find(name);
    return it == index_->end() ? nullptr : it->second;
  }
  for (const auto& c : children_) {
    if (c->name_ == name) return c.get();
  }
  return nullptr;
}

void Node::AppendChildrenTo(std::string& out) const {
  out.reserve(out.size() + children_bytes_);
  for (const auto& c : children_) {
    out += c->name_;
    out += '\0';
  }
}

void Node::RebuildIndex() {
  if (children_.size() < kIndexThreshold) {
    index_.reset();
    return;
  }
  if (!index_) index_ = std::make_unique<std::unordered_map<std::string_view, Node*>>();
  index_->clear();
  index_->reserve(children_.size());
  for (const auto& c : children_) index_->emplace(c->name_, c.get());
}

Tree::Tree() : root_("", nullptr) {
  root_.perms_ = OwnerOnlyPerms(kDom0);
  root_.gen_ = NextGen();  // generation 0 means "absent" to transactions
}

Node* Tree::Find(std::string_view path) const {
  Node* node = const_cast<Node*>(&root_);
  size_t pos = 1;
  while (pos < path.size() && node) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    node = node->FindChild(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return node;
}

Node* Tree::DeepestExisting(std::string_view path) const {
  Node* node = const_cast<Node*>(&root_);
  size_t pos = 1;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    Node* next = node->FindChild(path.substr(pos, end - pos));
    if (!next) break;
    node = next;
    pos = end + 1;
  }
  return node;
}

Node* Tree::AddChild(Node* parent, std::string_view name, std::string value, PermsRef perms) {
  auto child = std::make_unique<Node>(std::string(name), parent);
  Node* raw = child.get();
  raw->value_ = std::move(value);
  raw->perms_ = std::move(perms);
  raw->gen_ = NextGen();
  parent->children_.push_back(std::move(child));
  parent->children_bytes_ += name.size() + 1;
  parent->gen_ = NextGen();
  if (parent->index_) {
    parent->index_->emplace(raw->name_, raw);
  } else if (parent->children_.size() >= Node::kIndexThreshold) {
    parent->RebuildIndex();
  }
  ++node_count_;
  return raw;
}

void Tree::SetValue(Node* node, std::string value) {
  node->value_ = std::move(value);
  node->gen_ = NextGen();
}

void Tree::SetPerms(Node* node, PermsRef perms) {
  node->perms_ = std::move(perms);
  node->gen_ = NextGen();
}

void Tree::Unlink(Node* node) {
  Node* parent = node->parent_;
  XPV_CHECK(parent != nullptr);
  size_t removed = 1;
  {
    std::vector<const Node*> stack{node};
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      for (const auto& c : n->children_) {
        ++removed;
        stack.push_back(c.get());
      }
    }
  }
  node_count_ -= removed;
  parent->children_bytes_ -= node->name_.size() + 1;
  parent->gen_ = NextGen();
  if (parent->index_) parent->index_->erase(node->name_);
  auto it = std::find_if(parent->children_.begin(), parent->children_.end(),
                         [node](const auto& c) { return c.get() == node; });
  XPV_CHECK(it != parent->children_.end());
  parent->children_.erase(it);  // frees the subtree
  if (parent->index_ && parent->children_.size() < Node::kIndexThreshold / 2)
    parent->index_.reset();
}

}  // namespace xpv::xenstore
