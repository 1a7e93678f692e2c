// Transactions through Engine::Handle: isolation, conflicts (EAGAIN only on real ones), ids,
// quotas, and the watches a commit fires.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/testing/engine_fixture.h"
#include "xpv/xenstore/testing/fake_sink.h"

namespace xpv::xenstore {
namespace {

using namespace std::string_literals;
using testing::EngineFixture;
using testing::Ev;
using testing::FakeClient;
using testing::Outcome;
using testing::RecordedEvent;
using testing::Strings;

using Names = std::vector<std::string>;
using Events = std::vector<RecordedEvent>;

class TransactionTest : public EngineFixture {
 protected:
  uint32_t Start(FakeClient& c) {
    auto tx = c.TxStart();
    EXPECT_TRUE(tx.has_value());
    return tx ? *tx : 0;
  }
};

TEST_F(TransactionTest, ReadsItsOwnWritesWhileOthersSeeNothingUntilCommit) {
  const uint32_t tx = Start(dom0);
  ASSERT_EQ(Outcome(dom0.Write("/t/a", "1", tx)), "OK");
  EXPECT_EQ(*dom0.Read("/t/a", tx), "1");
  EXPECT_EQ(*dom0.Read("/t", tx), "");
  EXPECT_EQ(*dom0.Directory("/t", tx), Names{"a"});
  EXPECT_EQ(Outcome(dom0.Read("/t/a")), "ENOENT");
  EXPECT_EQ(Outcome(dom6.Read("/t/a")), "EACCES");
  ASSERT_EQ(Outcome(dom0.TxEnd(tx, true)), "OK");
  EXPECT_EQ(*dom0.Read("/t/a"), "1");
}

TEST_F(TransactionTest, AbortDiscardsEverythingAndFiresNothing) {
  ASSERT_EQ(Outcome(dom0.Watch("/", "all")), "OK");
  dom0.TakeEvents();
  const uint32_t tx = Start(dom0);
  ASSERT_EQ(Outcome(dom0.Write("/t/a", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom0.Rm("/tool", tx)), "OK");
  ASSERT_EQ(Outcome(dom0.TxEnd(tx, false)), "OK");
  EXPECT_EQ(Outcome(dom0.Read("/t")), "ENOENT");
  EXPECT_EQ(*dom0.Read("/tool/xenstored"), "");
  EXPECT_TRUE(dom0.TakeEvents().empty());
  EXPECT_EQ(dom0.conn().transaction_count(), 0u);
}

TEST_F(TransactionTest, ReadsSeeTheSnapshotNotLaterCommits) {
  ASSERT_EQ(Outcome(dom0.Write("/s", "old")), "OK");
  const uint32_t tx = Start(dom0);
  EXPECT_EQ(*dom0.Read("/s", tx), "old");
  ASSERT_EQ(Outcome(dom6.Write("x", "y")), "OK");  // unrelated
  ASSERT_EQ(Outcome(dom0.Write("/s", "new")), "OK");
  EXPECT_EQ(*dom0.Read("/s", tx), "old");
  EXPECT_EQ(Outcome(dom0.TxEnd(tx, true)), "EAGAIN");
}

TEST_F(TransactionTest, UnknownTransactionIdsAreENOENT) {
  EXPECT_EQ(Outcome(dom0.Read("/tool", 77)), "ENOENT");
  EXPECT_EQ(Outcome(dom0.Write("/x", "v", 77)), "ENOENT");
  EXPECT_EQ(Outcome(dom0.TxEnd(77, true)), "ENOENT");
  EXPECT_EQ(Outcome(dom0.TxEnd(0, true)), "ENOENT");
  EXPECT_EQ(Outcome(dom0.Read("/x")), "ENOENT");
}

TEST_F(TransactionTest, TransactionIdsBelongToTheirConnection) {
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Write("x", "mine", tx)), "OK");
  EXPECT_EQ(Outcome(dom6.Read("/local/domain/5/x", tx)), "ENOENT");
  EXPECT_EQ(Outcome(dom6.TxEnd(tx, true)), "ENOENT");
  EXPECT_EQ(Outcome(dom0.TxEnd(tx, false)), "ENOENT");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "OK");
}

TEST_F(TransactionTest, IdsAreNotReusedWhileOpen) {
  const uint32_t a = Start(dom0);
  const uint32_t b = Start(dom0);
  EXPECT_NE(a, b);
  EXPECT_NE(a, 0u);
  EXPECT_NE(b, 0u);
}

TEST_F(TransactionTest, NestedTransactionStartIsEBUSY) {
  const uint32_t tx = Start(dom0);
  EXPECT_EQ(dom0.Send(MsgType::kTransactionStart, "\0"s, tx).payload, "EBUSY\0"s);
  EXPECT_EQ(dom0.conn().transaction_count(), 1u);
}

TEST_F(TransactionTest, TheTransactionEndsEvenWhenCommitFails) {
  ASSERT_EQ(Outcome(dom0.Write("/c", "0")), "OK");
  const uint32_t tx = Start(dom0);
  ASSERT_EQ(Outcome(dom0.Read("/c", tx)), "OK");
  ASSERT_EQ(Outcome(dom6.Write("x", "")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/c", "1")), "OK");
  EXPECT_EQ(Outcome(dom0.TxEnd(tx, true)), "EAGAIN");
  EXPECT_EQ(dom0.conn().transaction_count(), 0u);
  EXPECT_EQ(Outcome(dom0.Read("/c", tx)), "ENOENT");
}

TEST_F(TransactionTest, ConcurrentWriteToANodeTheTransactionReadIsEAGAIN) {
  ASSERT_EQ(Outcome(dom5.Write("c", "0")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(*dom5.Read("c", tx), "0");
  ASSERT_EQ(Outcome(dom5.Write("other", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/5/c", "x")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
  EXPECT_EQ(*dom5.Read("c"), "x");
  EXPECT_EQ(Outcome(dom5.Read("other")), "ENOENT");
}

TEST_F(TransactionTest, ConcurrentPermissionChangeOfANodeTheTransactionReadIsEAGAIN) {
  ASSERT_EQ(Outcome(dom5.Write("c", "0")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(*dom5.Read("c", tx), "0");
  ASSERT_EQ(Outcome(dom5.SetPerms("c", {"n5", "r6"})), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
}

TEST_F(TransactionTest, ConcurrentRemovalOfANodeTheTransactionReadIsEAGAIN) {
  ASSERT_EQ(Outcome(dom5.Write("c", "0")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(*dom5.Read("c", tx), "0");
  ASSERT_EQ(Outcome(dom5.Write("c", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Rm("c")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
  EXPECT_EQ(Outcome(dom5.Read("c")), "ENOENT");
}

TEST_F(TransactionTest, ConcurrentCreationOfANodeTheTransactionFoundMissingIsEAGAIN) {
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Read("flag", tx)), "ENOENT");
  ASSERT_EQ(Outcome(dom5.Write("acted", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Write("flag", "set")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
}

TEST_F(TransactionTest, TwoTransactionsCreatingTheSameNodeConflict) {
  const uint32_t a = Start(dom5);
  const uint32_t b = Start(dom0);
  ASSERT_EQ(Outcome(dom5.Write("n", "a", a)), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/5/n", "b", b)), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(a, true)), "OK");
  EXPECT_EQ(Outcome(dom0.TxEnd(b, true)), "EAGAIN");
  EXPECT_EQ(*dom5.Read("n"), "a");
}

TEST_F(TransactionTest, UnrelatedConcurrentWritesDoNotConflict) {
  ASSERT_EQ(Outcome(dom5.Write("a", "0")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(*dom5.Read("a", tx), "0");
  ASSERT_EQ(Outcome(dom5.Write("a", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Write("b", "x")), "OK");
  ASSERT_EQ(Outcome(dom6.Write("c", "x")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/elsewhere", "x")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "OK");
  EXPECT_EQ(*dom5.Read("a"), "1");
  EXPECT_EQ(*dom5.Read("b"), "x");
}

// xenstored clients loop on EAGAIN; spurious conflicts between independent guests turn into
// livelock under load. Each of 64 guests runs read-modify-write transactions on its own subtree,
// interleaved step by step with all the others: all must commit, round after round.
TEST_F(TransactionTest, SixtyFourConnectionsOnDisjointSubtreesAllCommitInterleaved) {
  constexpr uint32_t kConns = 64;
  std::vector<std::unique_ptr<FakeClient>> clients;
  for (uint32_t i = 0; i < kConns; ++i) {
    const DomId id(100 + i);
    testing::IntroduceWithHome(dom0, id);
    clients.push_back(std::make_unique<FakeClient>(engine, id, Privilege::kUnprivileged));
    ASSERT_EQ(Outcome(clients.back()->Write("counter", "0")), "OK");
  }
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<uint32_t> txs;
    for (auto& c : clients) txs.push_back(Start(*c));
    std::vector<int> values;
    for (uint32_t i = 0; i < kConns; ++i) {
      auto v = clients[i]->Read("counter", txs[i]);
      ASSERT_TRUE(v.has_value());
      values.push_back(std::stoi(*v));
    }
    for (uint32_t i = 0; i < kConns; ++i) {
      FakeClient& c = *clients[i];
      ASSERT_EQ(Outcome(c.Write("counter", std::to_string(values[i] + 1), txs[i])), "OK");
      ASSERT_EQ(Outcome(c.Write("log/" + std::to_string(round), "x", txs[i])), "OK");
      ASSERT_EQ(Outcome(c.Directory("log", txs[i])), "OK");
      ASSERT_EQ(Outcome(c.Rm("scratch", txs[i])), "OK");
      ASSERT_EQ(Outcome(c.Write("scratch/" + std::to_string(round), "x", txs[i])), "OK");
    }
    for (uint32_t i = 0; i < kConns; ++i) {
      EXPECT_EQ(Outcome(clients[i]->TxEnd(txs[i], true)), "OK")
          << "conn " << i << " round " << round;
    }
  }
  for (auto& c : clients) {
    EXPECT_EQ(*c->Read("counter"), std::to_string(kRounds));
    EXPECT_EQ(c->Directory("log")->size(), static_cast<size_t>(kRounds));
    EXPECT_EQ(*c->Directory("scratch"), Names{std::to_string(kRounds - 1)});
  }
}

// The same guests each adding their own entry under one shared directory (a registry, a log):
// the entries are different nodes, so nothing conflicts (docs/xenstored.md: Xen's daemon answers
// EAGAIN here; xpv lets both commit).
// Xen 4.17's model: adding a child changes the parent, which every transaction that added one
// depends on. Of 64 concurrent ones the first commit wins; the others get EAGAIN and succeed on
// retry, as libxenstore users retry.
TEST_F(TransactionTest, SixtyFourConnectionsAddingChildrenUnderOneParentCommitOnRetry) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/shared")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/shared", {"b0"})), "OK");  // everyone may read and write
  constexpr uint32_t kConns = 64;
  std::vector<std::unique_ptr<FakeClient>> clients;
  for (uint32_t i = 0; i < kConns; ++i) {
    const DomId id(100 + i);
    testing::IntroduceWithHome(dom0, id);
    clients.push_back(std::make_unique<FakeClient>(engine, id, Privilege::kUnprivileged));
  }
  std::vector<uint32_t> txs;
  for (auto& c : clients) txs.push_back(Start(*c));
  for (uint32_t i = 0; i < kConns; ++i) {
    ASSERT_EQ(Outcome(clients[i]->Write(fmt::format("/shared/{}", i), "x", txs[i])), "OK");
  }
  EXPECT_EQ(Outcome(clients[0]->TxEnd(txs[0], true)), "OK");
  for (uint32_t i = 1; i < kConns; ++i) {
    EXPECT_EQ(Outcome(clients[i]->TxEnd(txs[i], true)), "EAGAIN") << "conn " << i;
    const uint32_t retry = Start(*clients[i]);
    ASSERT_EQ(Outcome(clients[i]->Write(fmt::format("/shared/{}", i), "x", retry)), "OK");
    EXPECT_EQ(Outcome(clients[i]->TxEnd(retry, true)), "OK") << "conn " << i;
  }
  EXPECT_EQ(dom0.Directory("/shared")->size(), kConns);
}

TEST_F(TransactionTest, ChildAddUnderAParentChangedMeanwhileConflictsAsInXen) {
  ASSERT_EQ(Outcome(dom5.Mkdir("p")), "OK");
  const uint32_t a = Start(dom5);
  const uint32_t b = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Write("p/a", "1", a)), "OK");
  ASSERT_EQ(Outcome(dom5.Write("p/b", "2", b)), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("p/direct")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(b, true)), "EAGAIN");
  EXPECT_EQ(Outcome(dom5.TxEnd(a, true)), "EAGAIN");
  EXPECT_EQ(*dom5.Directory("p"), (Names{"direct"}));
}

TEST_F(TransactionTest, ListingADirectoryThenAConcurrentChildAddConflicts) {
  ASSERT_EQ(Outcome(dom5.Mkdir("p")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(*dom5.Directory("p", tx), Names{});
  ASSERT_EQ(Outcome(dom5.Write("elsewhere", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("p/new")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
}

TEST_F(TransactionTest, ListingADirectoryThenAConcurrentChildRemovalConflicts) {
  ASSERT_EQ(Outcome(dom5.Mkdir("p/old")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(*dom5.Directory("p", tx), Names{"old"});
  ASSERT_EQ(Outcome(dom5.Write("elsewhere", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Rm("p/old")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
}

// A leader election: each transaction adds itself, lists the directory, and keeps its entry only
// if it is alone. Serially, the second would see two entries; both committing as "alone" would mean
// the listing was stale.
TEST_F(TransactionTest, TwoTransactionsCannotBothSeeThemselvesAloneInADirectory) {
  ASSERT_EQ(Outcome(dom5.Mkdir("election")), "OK");
  const uint32_t a = Start(dom5);
  const uint32_t b = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Write("election/a", "", a)), "OK");
  ASSERT_EQ(Outcome(dom5.Write("election/b", "", b)), "OK");
  EXPECT_EQ(*dom5.Directory("election", a), Names{"a"});
  EXPECT_EQ(*dom5.Directory("election", b), Names{"b"});
  const std::string ra = Outcome(dom5.TxEnd(a, true));
  const std::string rb = Outcome(dom5.TxEnd(b, true));
  EXPECT_FALSE(ra == "OK" && rb == "OK") << "both leaders: listing was stale";
}

TEST_F(TransactionTest, ListingAfterAddingAChildConflictsWithAConcurrentAdd) {
  ASSERT_EQ(Outcome(dom5.Mkdir("p/existing")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Mkdir("p/mine", tx)), "OK");
  ASSERT_EQ(*dom5.Directory("p", tx), (Names{"existing", "mine"}));
  ASSERT_EQ(Outcome(dom5.Mkdir("p/theirs")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
}

// A removal inside a transaction removes the children it saw; one added meanwhile would be
// removed unseen.
TEST_F(TransactionTest, RemovingANodeConflictsWithAConcurrentChildAdd) {
  ASSERT_EQ(Outcome(dom5.Mkdir("p")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Rm("p", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("p/new")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
  EXPECT_EQ(Outcome(dom5.Read("p/new")), "OK");
}

TEST_F(TransactionTest, RemovingANodeItAlsoChangedConflictsWithAConcurrentChildAdd) {
  ASSERT_EQ(Outcome(dom5.Mkdir("p")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Write("p", "v", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("p/mine", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Rm("p", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("p/theirs")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "EAGAIN");
  EXPECT_EQ(Outcome(dom5.Read("p/theirs")), "OK");
}

TEST_F(TransactionTest, RmThenRecreateInsideATransaction) {
  ASSERT_EQ(Outcome(dom5.Write("r/old/deep", "v")), "OK");
  ASSERT_EQ(Outcome(dom5.Write("r", "rv")), "OK");
  ASSERT_EQ(Outcome(dom5.Watch("r/old/deep", "deep")), "OK");
  ASSERT_EQ(Outcome(dom5.Watch("r", "r")), "OK");
  dom5.TakeEvents();
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Rm("r", tx)), "OK");
  EXPECT_EQ(Outcome(dom5.Read("r", tx)), "ENOENT");
  EXPECT_EQ(Outcome(dom5.Read("r/old/deep", tx)), "ENOENT");
  ASSERT_EQ(Outcome(dom5.Write("r/new", "1", tx)), "OK");
  EXPECT_EQ(*dom5.Read("r", tx), "");
  EXPECT_EQ(*dom5.Directory("r", tx), Names{"new"});
  EXPECT_EQ(Outcome(dom5.Read("r/old", tx)), "ENOENT");
  EXPECT_EQ(Outcome(dom5.Read("r/old/deep", tx)), "ENOENT");
  EXPECT_EQ(*dom5.Read("r/old/deep"), "v");
  EXPECT_TRUE(dom5.TakeEvents().empty());
  ASSERT_EQ(Outcome(dom5.TxEnd(tx, true)), "OK");
  EXPECT_EQ(*dom5.Directory("r"), Names{"new"});
  EXPECT_EQ(*dom5.Read("r"), "");
  EXPECT_EQ(Outcome(dom5.Read("r/old")), "ENOENT");
  Events got = dom5.TakeEvents();
  // The removed descendant's watch fired, and the parent's watch fired for the change.
  EXPECT_NE(std::find(got.begin(), got.end(), Ev("r/old/deep", "deep")), got.end());
  EXPECT_NE(std::find(got.begin(), got.end(), Ev("r", "r")), got.end());
  // Ownership accounting survived: home, r, r/new.
  EXPECT_EQ(OwnedNodes(DomId(5)), 3);
}

// Snapshots are taken per node, when the transaction first looks: a domU can make its own
// transaction see a node whose parent (looked at later) is gone. Nothing it then asks may crash
// the store.
TEST_F(TransactionTest, RemovingANodeWhoseParentVanishedSinceDoesNotCrashTheStore) {
  ASSERT_EQ(Outcome(dom5.Write("a/b", "v")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(*dom5.Read("a/b", tx), "v");
  ASSERT_EQ(Outcome(dom5.Rm("a")), "OK");
  // Whatever the engine answers (removing it, or refusing the inconsistent view), it answers.
  (void)dom5.Rm("a/b", tx);
  EXPECT_EQ(Outcome(dom5.Read("a", tx)), "ENOENT");
  EXPECT_EQ(Outcome(dom5.Read("a/b/c", tx)), "ENOENT");
  EXPECT_EQ(Outcome(dom5.Directory("a", tx)), "ENOENT");
  (void)dom5.Call(MsgType::kDirectoryPart, Strings({"a/b/c", "0"}), tx);
  (void)dom5.Write("a/b/c", "w", tx);
  (void)dom5.Rm("a/b/c", tx);
  EXPECT_NE(Outcome(dom5.TxEnd(tx, true)), "OK");
  EXPECT_EQ(Outcome(dom5.Read("a")), "ENOENT");
  EXPECT_EQ(OwnedNodes(DomId(5)), 1);
}

TEST_F(TransactionTest, CreateThenRemoveInsideATransactionLeavesNothing) {
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Write("tmp/a/b", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Rm("tmp", tx)), "OK");
  EXPECT_EQ(Outcome(dom5.Read("tmp/a", tx)), "ENOENT");
  ASSERT_EQ(Outcome(dom5.TxEnd(tx, true)), "OK");
  EXPECT_EQ(Outcome(dom5.Read("tmp")), "ENOENT");
  EXPECT_EQ(OwnedNodes(DomId(5)), 1);
}

TEST_F(TransactionTest, CommitFiresEachChangedNodesWatchesOnceAndOnlyAtCommit) {
  ASSERT_EQ(Outcome(dom6.Watch("/local/domain/6", "home")), "OK");
  ASSERT_EQ(Outcome(dom0.Watch("/local/domain/6", "tools")), "OK");
  dom6.TakeEvents();
  dom0.TakeEvents();
  const uint32_t tx = Start(dom6);
  ASSERT_EQ(Outcome(dom6.Write("x", "1", tx)), "OK");
  ASSERT_EQ(Outcome(dom6.Write("x", "2", tx)), "OK");
  ASSERT_EQ(Outcome(dom6.Write("y", "1", tx)), "OK");
  EXPECT_TRUE(dom6.TakeEvents().empty());
  EXPECT_TRUE(dom0.TakeEvents().empty());
  ASSERT_EQ(Outcome(dom6.TxEnd(tx, true)), "OK");
  EXPECT_EQ(dom6.TakeEvents(),
            (Events{Ev("/local/domain/6/x", "home"), Ev("/local/domain/6/y", "home")}));
  EXPECT_EQ(dom0.TakeEvents().size(), 2u);
  EXPECT_EQ(*dom6.Read("x"), "2");
}

TEST_F(TransactionTest, DomUTransactionsStillCheckPermissions) {
  const uint32_t tx = Start(dom5);
  EXPECT_EQ(Outcome(dom5.Write("/local/domain/6/x", "v", tx)), "EACCES");
  EXPECT_EQ(Outcome(dom5.Read("/tool/xenstored", tx)), "EACCES");
  EXPECT_EQ(Outcome(dom5.Rm("/local/domain/6", tx)), "EACCES");
  EXPECT_EQ(Outcome(dom5.SetPerms("/local/domain/6", {"n5"}, tx)), "EACCES");
  ASSERT_EQ(Outcome(dom5.Write("mine", "v", tx)), "OK");
  EXPECT_EQ(Outcome(dom5.SetPerms("mine", {"n6"}, tx)), "EPERM");
  ASSERT_EQ(Outcome(dom5.TxEnd(tx, true)), "OK");
  EXPECT_EQ(Outcome(dom5.Read("/local/domain/6/x")), "EACCES");
  EXPECT_EQ(*dom5.GetPerms("mine"), "n5\0"s);
}

TEST_F(TransactionTest, SetPermsInsideATransactionIsIsolatedUntilCommit) {
  ASSERT_EQ(Outcome(dom5.Write("x", "v")), "OK");
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.SetPerms("x", {"n5", "r6"}, tx)), "OK");
  EXPECT_EQ(*dom5.GetPerms("x", tx), "n5\0r6\0"s);
  EXPECT_EQ(Outcome(dom6.Read("/local/domain/5/x")), "EACCES");
  ASSERT_EQ(Outcome(dom5.TxEnd(tx, true)), "OK");
  EXPECT_EQ(*dom6.Read("/local/domain/5/x"), "v");
}

// Xen 4.17 refuses once more than the quota are open (`>`): quota + 1 fit.
TEST_F(TransactionTest, TransactionQuotaIsENOSPCForDomUsOnly) {
  SetQuota("transactions", 2);
  const uint32_t a = Start(dom5);
  Start(dom5);
  Start(dom5);
  EXPECT_EQ(Outcome(dom5.TxStart()), "ENOSPC");
  ASSERT_EQ(Outcome(dom5.TxEnd(a, false)), "OK");
  EXPECT_EQ(Outcome(dom5.TxStart()), "OK");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Outcome(dom0.TxStart()), "OK");
}

TEST_F(TransactionTest, TransactionNodesQuotaIsENOSPC) {
  SetQuota("transaction-nodes", 4);
  const uint32_t tx = Start(dom5);
  std::string first_failure;
  int ok = 0;
  for (int i = 0; i < 10 && first_failure.empty(); ++i) {
    std::string r = Outcome(dom5.Write("n" + std::to_string(i), "v", tx));
    if (r == "OK") {
      ++ok;
    } else {
      first_failure = r;
    }
  }
  EXPECT_EQ(first_failure, "ENOSPC");
  EXPECT_GE(ok, 1);
  EXPECT_LT(ok, 4);
  // Privileged transactions are exempt.
  const uint32_t t0 = Start(dom0);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(Outcome(dom0.Write("/q/" + std::to_string(i), "v", t0)), "OK");
}

// A request answered ENOSPC has failed: it must not take effect when the transaction commits.
TEST_F(TransactionTest, AWriteRefusedForTheTransactionNodesQuotaIsNotCommittedLater) {
  SetQuota("transaction-nodes", 4);
  const uint32_t tx = Start(dom5);
  std::string refused;
  for (int i = 0; i < 10 && refused.empty(); ++i) {
    const std::string name = "n" + std::to_string(i);
    if (Outcome(dom5.Write(name, "v", tx)) == "ENOSPC") refused = name;
  }
  ASSERT_FALSE(refused.empty());
  if (Outcome(dom5.TxEnd(tx, true)) == "OK") {
    EXPECT_EQ(Outcome(dom5.Read(refused)), "ENOENT") << "a refused write was committed";
  }
}

// Two transactions, each within the quota on its own, must not together exceed it. (They work
// under different parents so that they cannot conflict, under any conflict rule.)
TEST_F(TransactionTest, TransactionCannotEscapeNodeQuota) {
  SetQuota("nodes", 10);
  ASSERT_EQ(Outcome(dom5.Mkdir("pa")), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("pb")), "OK");
  ASSERT_EQ(OwnedNodes(DomId(5)), 3);
  const uint32_t a = Start(dom5);
  const uint32_t b = Start(dom5);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(Outcome(dom5.Write("pa/" + std::to_string(i), "", a)), "OK");
    ASSERT_EQ(Outcome(dom5.Write("pb/" + std::to_string(i), "", b)), "OK");
  }
  EXPECT_EQ(Outcome(dom5.TxEnd(a, true)), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(b, true)), "ENOSPC");
  EXPECT_EQ(OwnedNodes(DomId(5)), 7);
  EXPECT_EQ(Outcome(dom5.Read("pb/0")), "ENOENT");
}

TEST_F(TransactionTest, TransactionCannotEscapeNodeQuotaWithOneDeepWrite) {
  SetQuota("nodes", 10);
  const uint32_t tx = Start(dom5);
  const std::string r = Outcome(dom5.Write("a/b/c/d/e/f/g/h/i/j/k/l", "v", tx));
  const std::string c = Outcome(dom5.TxEnd(tx, true));
  EXPECT_TRUE(r != "OK" || c != "OK");
  EXPECT_LE(OwnedNodes(DomId(5)), 10);
}

TEST_F(TransactionTest, TransactionCannotEscapeNodeQuotaInterleavedWithDirectWrites) {
  SetQuota("nodes", 10);
  ASSERT_EQ(Outcome(dom5.Mkdir("pt")), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("pd")), "OK");
  const uint32_t tx = Start(dom5);
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(Outcome(dom5.Write("pt/" + std::to_string(i), "", tx)), "OK");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Outcome(dom5.Write("pd/" + std::to_string(i), "")), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "ENOSPC");
  EXPECT_EQ(OwnedNodes(DomId(5)), 8);
}

TEST_F(TransactionTest, NodeSizeQuotaAppliesInsideTransactions) {
  const uint32_t tx = Start(dom5);
  EXPECT_EQ(Outcome(dom5.Write("fits", std::string(100, 'x'), tx)), "OK");
  EXPECT_EQ(Outcome(dom5.Write("big", std::string(2048, 'x'), tx)), "ENOSPC");
  // Xen: a transaction that hit a quota has failed and cannot commit.
  EXPECT_EQ(Outcome(dom5.TxEnd(tx, true)), "ENOMEM");
  EXPECT_EQ(Outcome(dom5.Read("fits")), "ENOENT");
  EXPECT_EQ(Outcome(dom5.Read("big")), "ENOENT");
}

// TRANSACTION_END frees the transaction; the engine used to read it afterwards (the
// transaction-nodes check) and, for a commit refused with ENOSPC, to write to it (marking it
// failed). Found by the engine fuzzer under ASan; meaningful in the asan-ubsan build.
TEST_F(TransactionTest, EndingATransactionNeverTouchesItOnceFreed) {
  SetQuota("nodes", 4);
  ASSERT_EQ(Outcome(dom5.Mkdir("pa")), "OK");
  ASSERT_EQ(Outcome(dom5.Mkdir("pb")), "OK");
  const uint32_t ok = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Read("pa", ok)), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(ok, true)), "OK");
  const uint32_t a = Start(dom5);
  const uint32_t b = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Write("pa/x", "", a)), "OK");
  ASSERT_EQ(Outcome(dom5.Write("pb/x", "", b)), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(a, true)), "OK");
  EXPECT_EQ(Outcome(dom5.TxEnd(b, true)), "ENOSPC");
  const uint32_t aborted = Start(dom5);
  EXPECT_EQ(Outcome(dom5.TxEnd(aborted, false)), "OK");
  EXPECT_EQ(dom5.conn().transaction_count(), 0u);
}

TEST_F(TransactionTest, ClosingAConnectionDropsItsTransactions) {
  const uint32_t tx = Start(dom5);
  ASSERT_EQ(Outcome(dom5.Write("x", "v", tx)), "OK");
  world_.dom5.reset();
  EXPECT_EQ(Outcome(dom0.Read("/local/domain/5/x")), "ENOENT");
}

}  // namespace
}  // namespace xpv::xenstore
