#include "xpv/xenstore/tree.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace xpv::xenstore {
namespace {

using namespace std::string_literals;

PermsRef P(uint32_t owner) {
  return OwnerOnlyPerms(DomId(owner));
}

std::vector<std::string> Children(const Node& n) {
  std::vector<std::string> out;
  for (const auto& c : n.children()) out.emplace_back(c->name());
  return out;
}

TEST(TreeTest, StartsWithARootOwnedByDom0) {
  Tree t;
  EXPECT_EQ(t.Find("/"), &t.root());
  EXPECT_EQ(t.root().owner(), kDom0);
  EXPECT_EQ(FormatPerms(*t.root().perms()), "n0\0"s);
  EXPECT_EQ(t.node_count(), 1u);
  EXPECT_EQ(t.Find("/a"), nullptr);
}

TEST(TreeTest, ChildrenKeepCreationOrder) {
  Tree t;
  for (const char* name : {"zeta", "alpha", "mid"}) t.AddChild(&t.root(), name, "", P(0));
  EXPECT_EQ(Children(t.root()), (std::vector<std::string>{"zeta", "alpha", "mid"}));
  std::string listing;
  t.root().AppendChildrenTo(listing);
  EXPECT_EQ(listing, "zeta\0alpha\0mid\0"s);
  EXPECT_EQ(t.root().ChildrenBytes(), listing.size());
}

TEST(TreeTest, FindAndDeepestExisting) {
  Tree t;
  Node* a = t.AddChild(&t.root(), "a", "va", P(0));
  Node* b = t.AddChild(a, "b", "vb", P(0));
  EXPECT_EQ(t.Find("/a"), a);
  EXPECT_EQ(t.Find("/a/b"), b);
  EXPECT_EQ(t.Find("/a/c"), nullptr);
  EXPECT_EQ(t.Find("/a/b/c"), nullptr);
  EXPECT_EQ(t.DeepestExisting("/a/b/c/d"), b);
  EXPECT_EQ(t.DeepestExisting("/x/y"), &t.root());
  EXPECT_EQ(t.DeepestExisting("/a"), a);
  EXPECT_EQ(b->value(), "vb");
  EXPECT_EQ(b->parent(), a);
}

// Transactions compare generations: every kind of change to a node must bump its own.
TEST(TreeTest, EveryChangeToANodeBumpsItsGeneration) {
  Tree t;
  Node* a = t.AddChild(&t.root(), "a", "", P(0));
  EXPECT_NE(a->gen(), 0u);
  uint64_t last = a->gen();
  auto bumped = [&] {
    const bool b = a->gen() > last;
    last = a->gen();
    return b;
  };
  Node* b = t.AddChild(a, "b", "", P(0));
  EXPECT_TRUE(bumped()) << "child added";
  t.SetValue(a, "v");
  EXPECT_TRUE(bumped()) << "value";
  t.SetPerms(a, P(5));
  EXPECT_TRUE(bumped()) << "permissions";
  EXPECT_EQ(a->owner(), DomId(5));
  std::string path = "/a/b";
  t.Remove(b, path, [](std::string_view, const Node&) {});
  EXPECT_TRUE(bumped()) << "child removed";
  // Generations come from one counter: a re-created node never repeats an old one.
  Node* again = t.AddChild(a, "b", "", P(0));
  EXPECT_GT(again->gen(), last);
  EXPECT_NE(t.root().gen(), 0u);
}

TEST(TreeTest, ManyChildrenStayFindableAcrossTheIndexThreshold) {
  Tree t;
  Node* d = t.AddChild(&t.root(), "d", "", P(0));
  constexpr int kN = 100;
  for (int i = 0; i < kN; ++i) t.AddChild(d, "c" + std::to_string(i), std::to_string(i), P(0));
  for (int i = 0; i < kN; ++i) {
    Node* c = d->FindChild("c" + std::to_string(i));
    ASSERT_NE(c, nullptr) << i;
    EXPECT_EQ(c->value(), std::to_string(i));
  }
  EXPECT_EQ(d->FindChild("c100"), nullptr);
  // Remove most of them (dropping back below the threshold) and check what is left.
  for (int i = 0; i < kN - 3; ++i) {
    std::string path = "/d/c" + std::to_string(i);
    t.Remove(d->FindChild("c" + std::to_string(i)), path, [](std::string_view, const Node&) {});
    EXPECT_EQ(d->FindChild("c" + std::to_string(i)), nullptr) << i;
    ASSERT_NE(d->FindChild("c" + std::to_string(kN - 1)), nullptr) << i;
  }
  EXPECT_EQ(Children(*d), (std::vector<std::string>{"c97", "c98", "c99"}));
  EXPECT_EQ(d->ChildrenBytes(), 12u);
  EXPECT_EQ(t.node_count(), 5u);
  // Re-adding a removed name works through whichever lookup is in use.
  t.AddChild(d, "c5", "again", P(0));
  ASSERT_NE(d->FindChild("c5"), nullptr);
  EXPECT_EQ(d->FindChild("c5")->value(), "again");
}

TEST(TreeTest, RemoveVisitsChildrenBeforeParentsWithTheirPaths) {
  Tree t;
  Node* a = t.AddChild(&t.root(), "a", "", P(0));
  Node* b = t.AddChild(a, "b", "", P(0));
  t.AddChild(b, "c", "", P(0));
  t.AddChild(a, "d", "", P(0));
  t.AddChild(&t.root(), "keep", "", P(0));
  std::vector<std::string> seen;
  std::string path = "/a";
  t.Remove(a, path, [&](std::string_view p, const Node&) { seen.emplace_back(p); });
  EXPECT_EQ(seen, (std::vector<std::string>{"/a/b/c", "/a/b", "/a/d", "/a"}));
  EXPECT_EQ(t.node_count(), 2u);
  EXPECT_EQ(t.Find("/a"), nullptr);
  EXPECT_NE(t.Find("/keep"), nullptr);
  EXPECT_EQ(Children(t.root()), (std::vector<std::string>{"keep"}));
}

// Removal walks an explicit stack; freeing the removed nodes must not recurse either, or a deep
// enough chain overflows the daemon's stack.
TEST(TreeTest, DeepChainRemovalDoesNotRecurseStack) {
  Tree t;
  Node* top = t.AddChild(&t.root(), "top", "", P(0));
  Node* n = top;
  constexpr size_t kDepth = 1'000'000;
  for (size_t i = 0; i < kDepth; ++i) n = t.AddChild(n, "n", "", P(0));
  EXPECT_EQ(t.node_count(), kDepth + 2);
  size_t visited = 0;
  std::string path = "/top";
  t.Remove(top, path, [&](std::string_view, const Node&) { ++visited; });
  EXPECT_EQ(visited, kDepth + 1);
  EXPECT_EQ(t.node_count(), 1u);
}

TEST(TreeTest, DeepChainDestructionDoesNotRecurseStack) {
  auto t = std::make_unique<Tree>();
  Node* n = &t->root();
  for (size_t i = 0; i < 1'000'000; ++i) n = t->AddChild(n, "n", "", P(0));
  t.reset();
}

}  // namespace
}  // namespace xpv::xenstore
