// The engine through Engine::Handle, as a transport drives it: reply formats, argument and path
// errors, permissions and what they disclose, SET_TARGET, watches and domain events.
// Transactions are in engine_tx_test.cc, quotas and domain lifetime in engine_quota_test.cc.
#include "xpv/xenstore/engine.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

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
using testing::RecordedReply;
using testing::Strings;

using Names = std::vector<std::string>;
using Events = std::vector<RecordedEvent>;

const std::string kOk("OK\0", 3);

class EngineTest : public EngineFixture {};

// ---------------------------------------------------------------------------------------------
// Reply formats (xenstore.txt "Message types").

TEST_F(EngineTest, ReadReplyIsTheValueWithoutATerminator) {
  ASSERT_EQ(Outcome(dom0.Write("/a", "hello")), "OK");
  RecordedReply r = dom0.Send(MsgType::kRead, "/a\0"s);
  EXPECT_EQ(r.type, MsgType::kRead);
  EXPECT_EQ(r.payload, "hello");
}

TEST_F(EngineTest, ValuesAreBinaryAndMayBeEmpty) {
  ASSERT_EQ(Outcome(dom0.Write("/bin", "x\0y\0"s)), "OK");
  EXPECT_EQ(*dom0.Read("/bin"), "x\0y\0"s);
  ASSERT_EQ(Outcome(dom0.Write("/empty", "")), "OK");
  EXPECT_EQ(*dom0.Read("/empty"), "");
}

TEST_F(EngineTest, AcknowledgementsAreOkWithNulAndEchoTheType) {
  const std::vector<std::pair<MsgType, std::string>> requests = {
      {MsgType::kWrite, "/a\0v"s},
      {MsgType::kMkdir, "/b\0"s},
      {MsgType::kSetPerms, "/b\0n0\0r5\0"s},
      {MsgType::kRm, "/b\0"s},
      {MsgType::kWatch, "/a\0tok\0"s},
      {MsgType::kUnwatch, "/a\0tok\0"s},
      {MsgType::kResetWatches, ""s},
      {MsgType::kIntroduce,
       "9\0"
       "1234\0"
       "3\0"s},
      {MsgType::kResume, "9\0"s},
      {MsgType::kRelease, "9\0"s},
      {MsgType::kSetTarget,
       "5\0"
       "6\0"s},
      {MsgType::kControl, "check\0"s},
  };
  for (const auto& [type, payload] : requests) {
    RecordedReply r = dom0.Send(type, payload);
    EXPECT_EQ(r.type, type) << MsgTypeName(static_cast<uint32_t>(type));
    EXPECT_EQ(r.payload, kOk) << MsgTypeName(static_cast<uint32_t>(type));
  }
}

TEST_F(EngineTest, RepliesEchoRequestAndTransactionIds) {
  const uint32_t tx = *dom0.TxStart();
  RecordedReply r = dom0.Send(MsgType::kWrite, "/a\0v"s, tx);
  EXPECT_EQ(r.tx_id, tx);
  RecordedReply e = dom0.Send(MsgType::kRead, "/missing\0"s, tx);
  EXPECT_EQ(e.type, MsgType::kError);
  EXPECT_EQ(e.tx_id, tx);
}

TEST_F(EngineTest, ErrorReplyIsTheErrnoNameWithNul) {
  RecordedReply r = dom0.Send(MsgType::kRead, "/missing\0"s);
  EXPECT_EQ(r.type, MsgType::kError);
  EXPECT_EQ(r.payload, "ENOENT\0"s);
}

TEST_F(EngineTest, DirectoryIsNulTerminatedNamesInCreationOrder) {
  for (const char* p : {"/d/zeta", "/d/alpha", "/d/mid"}) ASSERT_EQ(Outcome(dom0.Mkdir(p)), "OK");
  RecordedReply r = dom0.Send(MsgType::kDirectory, "/d\0"s);
  EXPECT_EQ(r.type, MsgType::kDirectory);
  EXPECT_EQ(r.payload, "zeta\0alpha\0mid\0"s);
  EXPECT_EQ(dom0.Send(MsgType::kDirectory, "/d/mid\0"s).payload, "");
}

TEST_F(EngineTest, GetPermsListsEntriesEachWithNul) {
  ASSERT_EQ(Outcome(dom0.Write("/p", "")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/p", {"n0", "r5", "b6"})), "OK");
  EXPECT_EQ(*dom0.GetPerms("/p"), "n0\0r5\0b6\0"s);
}

TEST_F(EngineTest, TransactionStartRepliesWithDecimalIdAndNul) {
  RecordedReply r = dom0.Send(MsgType::kTransactionStart, "\0"s);
  ASSERT_EQ(r.type, MsgType::kTransactionStart);
  ASSERT_GE(r.payload.size(), 2u);
  EXPECT_EQ(r.payload.back(), '\0');
  EXPECT_EQ(r.payload.find_first_not_of("0123456789"), r.payload.size() - 1);
  EXPECT_NE(r.payload, "0\0"s);
}

TEST_F(EngineTest, GetDomainPathForAnyCaller) {
  EXPECT_EQ(dom0.Send(MsgType::kGetDomainPath, "7\0"s).payload, "/local/domain/7\0"s);
  EXPECT_EQ(dom5.Send(MsgType::kGetDomainPath, "5\0"s).payload, "/local/domain/5\0"s);
}

TEST_F(EngineTest, IsDomainIntroducedIsTOrFWithNul) {
  EXPECT_EQ(dom0.Send(MsgType::kIsDomainIntroduced, "5\0"s).payload, "T\0"s);
  EXPECT_EQ(dom0.Send(MsgType::kIsDomainIntroduced, "9\0"s).payload, "F\0"s);
  EXPECT_EQ(dom0.Send(MsgType::kIsDomainIntroduced, "0\0"s).payload, "T\0"s);
}

TEST_F(EngineTest, UnknownAndReservedTypesAreENOSYS) {
  for (uint32_t type : {static_cast<uint32_t>(XS_WATCH_EVENT), static_cast<uint32_t>(XS_ERROR),
                        20u /* RESTRICT */, abi::XS_TYPE_COUNT_LATEST, 999u, UINT32_MAX}) {
    RecordedReply r = dom0.SendRaw(type, "/a\0"s);
    EXPECT_EQ(r.type, MsgType::kError) << type;
    EXPECT_EQ(r.payload, "ENOSYS\0"s) << type;
  }
}

// Parses "<gen>\0<child>\0...<child>\0", with a final empty string when the list is complete.
struct DirPart {
  std::string gen;
  Names names;
  bool complete = false;
};
DirPart ParseDirPart(const std::string& payload) {
  DirPart out;
  EXPECT_TRUE(!payload.empty() && payload.back() == '\0');
  auto parts = SplitStrings(payload);
  EXPECT_GE(parts.size(), 1u);
  if (parts.empty()) return out;
  out.gen = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].empty()) {
      EXPECT_EQ(i + 1, parts.size()) << "the empty string ends the list";
      out.complete = true;
      break;
    }
    out.names.emplace_back(parts[i]);
  }
  return out;
}

TEST_F(EngineTest, DirectoryPartIsGenerationThenChildrenThenEmptyString) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/d/a")), "OK");
  ASSERT_EQ(Outcome(dom0.Mkdir("/d/bb")), "OK");
  RecordedReply r = dom0.Send(MsgType::kDirectoryPart,
                              "/d\0"
                              "0\0"s);
  ASSERT_EQ(r.type, MsgType::kDirectoryPart);
  DirPart all = ParseDirPart(r.payload);
  EXPECT_EQ(all.names, (Names{"a", "bb"}));
  EXPECT_TRUE(all.complete);
  EXPECT_FALSE(all.gen.empty());
  EXPECT_EQ(all.gen.find_first_not_of("0123456789"), std::string::npos);
  // The offset counts bytes of the child list.
  EXPECT_EQ(ParseDirPart(dom0.Send(MsgType::kDirectoryPart,
                                   "/d\0"
                                   "2\0"s)
                             .payload)
                .names,
            (Names{"bb"}));
  EXPECT_EQ(ParseDirPart(dom0.Send(MsgType::kDirectoryPart,
                                   "/d\0"
                                   "5\0"s)
                             .payload)
                .names,
            Names{});
  EXPECT_EQ(ParseDirPart(dom0.Send(MsgType::kDirectoryPart,
                                   "/d\0"
                                   "99\0"s)
                             .payload)
                .names,
            Names{});
}

TEST_F(EngineTest, DirectoryPartGenerationChangesWithTheChildList) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/d/a")), "OK");
  const std::string g1 = ParseDirPart(dom0.Send(MsgType::kDirectoryPart,
                                                "/d\0"
                                                "0\0"s)
                                          .payload)
                             .gen;
  ASSERT_EQ(Outcome(dom0.Mkdir("/d/b")), "OK");
  const std::string g2 = ParseDirPart(dom0.Send(MsgType::kDirectoryPart,
                                                "/d\0"
                                                "0\0"s)
                                          .payload)
                             .gen;
  EXPECT_NE(g1, g2);
}

TEST_F(EngineTest, DirectoryTooLargeForOneReplyIsE2BIGAndDirectoryPartPagesThroughIt) {
  Names expected;
  for (int i = 0; i < 200; ++i) {
    expected.push_back(fmt::format("child-{:04}-{}", i, std::string(30, 'x')));
    ASSERT_EQ(Outcome(dom0.Mkdir("/big/" + expected.back())), "OK");
  }
  EXPECT_EQ(Outcome(dom0.Directory("/big")), "E2BIG");

  Names got;
  size_t offset = 0;
  std::string gen;
  int pages = 0;
  for (bool done = false; !done && pages < 100; ++pages) {
    RecordedReply r = dom0.Send(MsgType::kDirectoryPart, Strings({"/big", std::to_string(offset)}));
    ASSERT_EQ(r.type, MsgType::kDirectoryPart);
    ASSERT_LE(r.payload.size(), kPayloadMax);
    DirPart part = ParseDirPart(r.payload);
    if (gen.empty()) gen = part.gen;
    EXPECT_EQ(part.gen, gen);
    ASSERT_TRUE(part.complete || !part.names.empty()) << "no progress at offset " << offset;
    done = part.complete;
    for (auto& n : part.names) {
      offset += n.size() + 1;
      got.push_back(std::move(n));
    }
  }
  EXPECT_EQ(got, expected);
  EXPECT_GE(pages, 3);
}

TEST_F(EngineTest, GetFeatureWithoutArgumentsListsServerFeatures) {
  RecordedReply r = dom5.Send(MsgType::kGetFeature, "");
  ASSERT_EQ(r.type, MsgType::kGetFeature);
  ASSERT_FALSE(r.payload.empty());
  EXPECT_EQ(r.payload.back(), '\0');
  const unsigned long features = std::stoul(r.payload);
  // xs_wire.h: the watch-depth feature is bit 2 (value 4).
  EXPECT_NE(features & abi::XENSTORE_SERVER_FEATURE_WATCHDEPTH, 0u);
}

TEST_F(EngineTest, SetAndGetFeatureOfADomain) {
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kSetFeature,
                              "5\0"
                              "4\0"s)),
            "OK");
  EXPECT_EQ(*dom0.Call(MsgType::kGetFeature, "5\0"s), "4\0"s);
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kSetFeature,
                              "5\0"
                              "1024\0"s)),
            "EINVAL");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kGetFeature, "9\0"s)), "ENOENT");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kSetFeature,
                              "9\0"
                              "4\0"s)),
            "ENOENT");
}

TEST_F(EngineTest, ControlCommands) {
  EXPECT_EQ(Outcome(dom0.Control({"check"})), "OK");
  auto help = dom0.Call(MsgType::kControl, Strings({"help"}));
  ASSERT_TRUE(help.has_value());
  EXPECT_NE(help->find("quota"), std::string::npos);
  EXPECT_EQ(help->back(), '\0');
  EXPECT_EQ(Outcome(dom0.Control({"memreport"})), "OK");
  EXPECT_EQ(Outcome(dom0.Control({"check", "extra"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Control({"log", "maybe"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Control({"no-such-command"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kControl, "")), "EINVAL");
}

// ---------------------------------------------------------------------------------------------
// Argument and path errors.

TEST_F(EngineTest, MalformedArgumentsAreEINVAL) {
  const std::vector<std::pair<MsgType, std::string>> requests = {
      {MsgType::kRead, ""s},
      {MsgType::kRead, "/a"s},        // no terminator
      {MsgType::kRead, "/a\0/b\0"s},  // two arguments
      {MsgType::kRead, "/a\0junk"s},  // trailing bytes
      {MsgType::kDirectory, ""s},
      {MsgType::kGetPerms, ""s},
      {MsgType::kMkdir, "/a\0/b\0"s},
      {MsgType::kRm, ""s},
      {MsgType::kWrite, "/a"s},  // no nul between path and value
      {MsgType::kWrite, ""s},
      {MsgType::kSetPerms, "/tool\0"s},  // no permissions
      {MsgType::kSetPerms, "/tool\0x0\0"s},
      {MsgType::kSetPerms, "/tool\0r\0"s},
      {MsgType::kWatch, "/a\0"s},
      {MsgType::kWatch,
       "/a\0t\0"
       "1\0"
       "x\0"s},
      {MsgType::kWatch, "/a\0t\0deep\0"s},
      {MsgType::kWatch, "/a\0t\0-1\0"s},
      {MsgType::kUnwatch, "/a\0"s},
      {MsgType::kTransactionEnd, "X\0"s},
      {MsgType::kTransactionEnd, ""s},
      {MsgType::kTransactionEnd, "T"s},
      {MsgType::kIntroduce,
       "9\0"
       "1\0"s},
      {MsgType::kIntroduce,
       "9\0"
       "1\0"
       "0\0"s},  // port 0
      {MsgType::kRelease, ""s},
      {MsgType::kRelease, "0\0"s},  // dom0 is never released
      {MsgType::kResume, "0\0"s},
      {MsgType::kSetTarget, "5\0"s},
      {MsgType::kDirectoryPart, "/tool\0"s},
      {MsgType::kGetDomainPath, ""s},
      {MsgType::kIsDomainIntroduced, ""s},
      {MsgType::kGetQuota,
       "nodes\0"
       "5\0"
       "x\0"s},
      {MsgType::kGetQuota, "no-such-quota\0"s},
      {MsgType::kSetQuota, "nodes\0"s},
      {MsgType::kSetQuota,
       "nodes\0"
       "many\0"s},
      {MsgType::kSetQuota,
       "no-such-quota\0"
       "1\0"s},
  };
  for (const auto& [type, payload] : requests) {
    RecordedReply r = dom0.Send(type, payload);
    EXPECT_EQ(r.payload, "EINVAL\0"s)
        << MsgTypeName(static_cast<uint32_t>(type)) << " " << ::testing::PrintToString(payload);
  }
}

TEST_F(EngineTest, InvalidPathsAreEINVALForEveryPathRequest) {
  for (std::string bad : {"/a//b", "/a/", "/a b", "", "/a/../b", "@introduceDomain"}) {
    for (FakeClient* c : {&dom0, &dom5}) {
      EXPECT_EQ(Outcome(c->Read(bad)), "EINVAL") << bad;
      EXPECT_EQ(Outcome(c->Write(bad, "v")), "EINVAL") << bad;
      EXPECT_EQ(Outcome(c->Mkdir(bad)), "EINVAL") << bad;
      EXPECT_EQ(Outcome(c->Rm(bad)), "EINVAL") << bad;
      EXPECT_EQ(Outcome(c->Directory(bad)), "EINVAL") << bad;
      EXPECT_EQ(Outcome(c->Call(MsgType::kDirectoryPart, Strings({bad, "0"}))), "EINVAL") << bad;
      if (bad[0] == '@') continue;  // GET/SET_PERMS take special names
      EXPECT_EQ(Outcome(c->GetPerms(bad)), "EINVAL") << bad;
      EXPECT_EQ(Outcome(c->SetPerms(bad, {"n0"})), "EINVAL") << bad;
      EXPECT_EQ(Outcome(c->Watch(bad, "t")), "EINVAL") << bad;
    }
  }
  EXPECT_EQ(Outcome(dom0.GetPerms("@noSuchSpecial")), "EINVAL");
}

// ---------------------------------------------------------------------------------------------
// Basic tree semantics.

TEST_F(EngineTest, StartsWithToolXenstoredOwnedByDom0) {
  EXPECT_EQ(*dom0.Read("/tool/xenstored"), "");
  EXPECT_EQ(*dom0.GetPerms("/tool"), "n0\0"s);
  EXPECT_EQ(*dom0.GetPerms("/"), "n0\0"s);
}

TEST_F(EngineTest, WriteCreatesMissingParentsWithEmptyValues) {
  ASSERT_EQ(Outcome(dom0.Write("/a/b/c", "v")), "OK");
  EXPECT_EQ(*dom0.Read("/a"), "");
  EXPECT_EQ(*dom0.Read("/a/b"), "");
  EXPECT_EQ(*dom0.Read("/a/b/c"), "v");
  EXPECT_EQ(*dom0.Directory("/a"), Names{"b"});
}

TEST_F(EngineTest, WriteReplacesTheValue) {
  ASSERT_EQ(Outcome(dom0.Write("/a", "1")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/a", "22")), "OK");
  EXPECT_EQ(*dom0.Read("/a"), "22");
}

TEST_F(EngineTest, MkdirOfAnExistingNodeKeepsItsValue) {
  ASSERT_EQ(Outcome(dom0.Write("/a", "v")), "OK");
  EXPECT_EQ(Outcome(dom0.Mkdir("/a")), "OK");
  EXPECT_EQ(*dom0.Read("/a"), "v");
}

TEST_F(EngineTest, RmRemovesTheWholeSubtree) {
  ASSERT_EQ(Outcome(dom0.Write("/a/b/c", "v")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/a/d", "v")), "OK");
  const size_t before = engine.tree().node_count();
  ASSERT_EQ(Outcome(dom0.Rm("/a")), "OK");
  EXPECT_EQ(Outcome(dom0.Read("/a/b/c")), "ENOENT");
  EXPECT_EQ(Outcome(dom0.Read("/a")), "ENOENT");
  EXPECT_EQ(engine.tree().node_count(), before - 4);
}

TEST_F(EngineTest, RmOfAMissingNodeIsFineOnlyIfItsParentExists) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/a")), "OK");
  EXPECT_EQ(Outcome(dom0.Rm("/a/missing")), "OK");
  EXPECT_EQ(Outcome(dom0.Rm("/a/missing/deeper")), "ENOENT");
}

TEST_F(EngineTest, RootCannotBeRemoved) {
  EXPECT_EQ(Outcome(dom0.Rm("/")), "EINVAL");
}

TEST_F(EngineTest, ReadOfAMissingNodeIsENOENTForDom0) {
  EXPECT_EQ(Outcome(dom0.Read("/missing")), "ENOENT");
  EXPECT_EQ(Outcome(dom0.Directory("/missing")), "ENOENT");
  EXPECT_EQ(Outcome(dom0.GetPerms("/missing")), "ENOENT");
  EXPECT_EQ(Outcome(dom0.SetPerms("/missing", {"n0"})), "ENOENT");
}

// ---------------------------------------------------------------------------------------------
// Permissions and what errors disclose (xenstore.txt "Permissions"; Xen's errno_from_parents()).

TEST_F(EngineTest, DomUCannotReadDom0Nodes) {
  EXPECT_EQ(Outcome(dom5.Read("/tool/xenstored")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Directory("/")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Directory("/local/domain")), "EACCES");
  EXPECT_EQ(Outcome(dom5.GetPerms("/tool")), "EACCES");
}

// Without read access to the nearest existing ancestor, a missing node and a hidden one must
// answer the same, for every request, or a domU could probe for names it may not see.
TEST_F(EngineTest, DomUCannotLearnHiddenNodeExistsViaEnoent) {
  ASSERT_EQ(Outcome(dom0.Write("/secret/present", "x")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/6/hidden", "x")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/local/domain/6/hidden", {"n6"})), "OK");
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"/secret/present", "/secret/absent"},
      {"/secret/present", "/secret/absent/deeper"},
      {"/secret", "/nothing-here"},
      {"/local/domain/6/hidden", "/local/domain/6/absent"},
  };
  for (const auto& pair : pairs) {
    // Not a structured binding: clang 14 cannot capture those in a lambda.
    const std::string& present = pair.first;
    const std::string& absent = pair.second;
    auto both = [&](auto&& op) {
      EXPECT_EQ(op(present), "EACCES") << present;
      EXPECT_EQ(op(absent), "EACCES") << absent;
    };
    both([&](const std::string& p) { return Outcome(dom5.Read(p)); });
    both([&](const std::string& p) { return Outcome(dom5.Directory(p)); });
    both([&](const std::string& p) { return Outcome(dom5.GetPerms(p)); });
    both([&](const std::string& p) { return Outcome(dom5.Write(p, "v")); });
    both([&](const std::string& p) { return Outcome(dom5.Mkdir(p)); });
    both([&](const std::string& p) { return Outcome(dom5.Rm(p)); });
    both([&](const std::string& p) { return Outcome(dom5.SetPerms(p, {"n5"})); });
    both([&](const std::string& p) {
      return Outcome(dom5.Call(MsgType::kDirectoryPart, Strings({p, "0"})));
    });
    // Inside a transaction too.
    const uint32_t tx = *dom5.TxStart();
    both([&](const std::string& p) { return Outcome(dom5.Read(p, tx)); });
    both([&](const std::string& p) { return Outcome(dom5.Write(p, "v", tx)); });
    ASSERT_EQ(Outcome(dom5.TxEnd(tx, false)), "OK");
  }
  EXPECT_EQ(*dom0.Read("/secret/present"), "x");
  EXPECT_EQ(Outcome(dom0.Read("/secret/absent")), "ENOENT");
}

// Under a parent the domU may read, names are visible anyway (DIRECTORY), so ENOENT is allowed.
TEST_F(EngineTest, UnderAReadableParentOnlyTrulyMissingNodesAreENOENT) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/pub")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/pub", {"n0", "r5"})), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/pub/hidden", "x")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/pub/hidden", {"n0"})), "OK");
  EXPECT_EQ(Outcome(dom5.Read("/pub/hidden")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Read("/pub/missing")), "ENOENT");
  EXPECT_EQ(*dom5.Directory("/pub"), Names{"hidden"});
  // Reading is not writing: creating under /pub needs write access.
  EXPECT_EQ(Outcome(dom5.Write("/pub/new", "v")), "EACCES");
}

TEST_F(EngineTest, DomURelativePathsResolveUnderItsHome) {
  ASSERT_EQ(Outcome(dom5.Write("data/x", "1")), "OK");
  EXPECT_EQ(*dom0.Read("/local/domain/5/data/x"), "1");
  EXPECT_EQ(*dom5.Read("data/x"), "1");
  EXPECT_EQ(*dom5.Read("/local/domain/5/data/x"), "1");
  EXPECT_EQ(*dom5.Directory("data"), Names{"x"});
  ASSERT_EQ(Outcome(dom5.Rm("data")), "OK");
  EXPECT_EQ(Outcome(dom0.Read("/local/domain/5/data")), "ENOENT");
}

TEST_F(EngineTest, DomUCannotUseDotDotToLeaveItsHome) {
  ASSERT_EQ(Outcome(dom6.Write("x", "v")), "OK");
  EXPECT_EQ(Outcome(dom5.Read("../6/x")), "EINVAL");
  EXPECT_EQ(Outcome(dom5.Write("../6/x", "pwned")), "EINVAL");
  EXPECT_EQ(*dom6.Read("x"), "v");
}

TEST_F(EngineTest, DomUOwnsWhatItCreatesAndInheritsTheRestOfThePermissions) {
  ASSERT_EQ(Outcome(dom0.SetPerms("/local/domain/5", {"n5", "r6"})), "OK");
  ASSERT_EQ(Outcome(dom5.Write("x/y", "v")), "OK");
  EXPECT_EQ(*dom5.GetPerms("x"), "n5\0r6\0"s);
  EXPECT_EQ(*dom5.GetPerms("x/y"), "n5\0r6\0"s);
  EXPECT_EQ(*dom6.Read("/local/domain/5/x/y"), "v");
  EXPECT_EQ(Outcome(dom6.Write("/local/domain/5/x/y", "w")), "EACCES");
}

TEST_F(EngineTest, DomUCreatingUnderAForeignWritableParentOwnsTheNewNode) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/drop")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/drop", {"n0", "w5"})), "OK");
  // dom5 may not read /drop but may write into it.
  EXPECT_EQ(Outcome(dom5.Directory("/drop")), "EACCES");
  ASSERT_EQ(Outcome(dom5.Write("/drop/mine", "v")), "OK");
  EXPECT_EQ(*dom5.GetPerms("/drop/mine"), "n5\0w5\0"s);
  EXPECT_EQ(*dom5.Read("/drop/mine"), "v");
  EXPECT_EQ(Outcome(dom6.Read("/drop/mine")), "EACCES");
}

TEST_F(EngineTest, Dom0CreationsInheritThePermissionsUnchanged) {
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/5/from-dom0", "v")), "OK");
  EXPECT_EQ(*dom0.GetPerms("/local/domain/5/from-dom0"), "n5\0"s);
  EXPECT_EQ(*dom5.Read("from-dom0"), "v");
}

TEST_F(EngineTest, DomUCannotCreateUnderAReadOnlyParent) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/ro")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/ro", {"n0", "r5"})), "OK");
  EXPECT_EQ(Outcome(dom5.Write("/ro/x", "v")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Mkdir("/ro/x")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Write("/ro/x/y/z", "v")), "EACCES");
  EXPECT_EQ(Outcome(dom0.Read("/ro/x")), "ENOENT");
}

TEST_F(EngineTest, DomUCannotWriteOutsideWhatItMayWrite) {
  EXPECT_EQ(Outcome(dom5.Write("/evil", "x")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Write("/local/domain/6/x", "x")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Mkdir("/local/domain/7")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Rm("/local/domain/6")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Rm("/tool")), "EACCES");
  EXPECT_EQ(Outcome(dom0.Read("/evil")), "ENOENT");
}

TEST_F(EngineTest, DomUCannotRemoveANodeItMayNotWriteEvenInItsOwnHome) {
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/5/device/vbd", "x")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/local/domain/5/device", {"n0", "r5"})), "OK");
  EXPECT_EQ(Outcome(dom5.Rm("device")), "EACCES");
  EXPECT_EQ(*dom0.Read("/local/domain/5/device/vbd"), "x");
}

TEST_F(EngineTest, DomUCannotRemoveTheDomainDirectory) {
  EXPECT_EQ(Outcome(dom5.Rm("/local/domain")), "EACCES");
  EXPECT_EQ(Outcome(dom5.Rm("/local")), "EACCES");
}

TEST_F(EngineTest, DomUMayNotGiveItsNodesAway) {
  ASSERT_EQ(Outcome(dom5.Write("x", "v")), "OK");
  EXPECT_EQ(Outcome(dom5.SetPerms("x", {"n6"})), "EPERM");
  EXPECT_EQ(Outcome(dom5.SetPerms("x", {"b6"})), "EPERM");
  EXPECT_EQ(*dom5.GetPerms("x"), "n5\0"s);
  EXPECT_EQ(Outcome(dom5.SetPerms("x", {"n5", "r6"})), "OK");
  EXPECT_EQ(*dom6.Read("/local/domain/5/x"), "v");
}

TEST_F(EngineTest, DomUMayNotTakeNodesOver) {
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/5/w", "v")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/local/domain/5/w", {"n0", "b5"})), "OK");
  // Write access is not ownership: SET_PERMS needs both.
  EXPECT_EQ(Outcome(dom5.SetPerms("w", {"n0", "b5", "r6"})), "EACCES");
  EXPECT_EQ(Outcome(dom5.SetPerms("w", {"n5"})), "EACCES");
  EXPECT_EQ(Outcome(dom5.Write("w", "mine")), "OK");
}

TEST_F(EngineTest, Dom0MayChangeOwners) {
  ASSERT_EQ(Outcome(dom0.Write("/gift", "v")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/gift", {"n5"})), "OK");
  EXPECT_EQ(*dom5.Read("/gift"), "v");
  EXPECT_EQ(Outcome(dom5.SetPerms("/gift", {"n5", "r6"})), "OK");
}

TEST_F(EngineTest, PrivilegedRequestsFromADomUAreEACCES) {
  const std::vector<std::pair<MsgType, std::string>> requests = {
      {MsgType::kIntroduce,
       "9\0"
       "1\0"
       "3\0"s},
      {MsgType::kRelease, "6\0"s},
      {MsgType::kResume, "6\0"s},
      {MsgType::kSetTarget,
       "5\0"
       "6\0"s},
      {MsgType::kIsDomainIntroduced, "6\0"s},
      {MsgType::kControl, "check\0"s},
      {MsgType::kControl,
       "quota\0"
       "set\0"
       "nodes\0"
       "100000\0"s},
      {MsgType::kSetFeature,
       "5\0"
       "4\0"s},
      {MsgType::kGetFeature, "6\0"s},
      {MsgType::kGetQuota, "nodes\0"s},
      {MsgType::kSetQuota,
       "nodes\0"
       "100000\0"s},
      {MsgType::kSetQuota,
       "5\0"
       "nodes\0"
       "100000\0"s},
  };
  for (const auto& [type, payload] : requests) {
    EXPECT_EQ(dom5.Send(type, payload).payload, "EACCES\0"s)
        << MsgTypeName(static_cast<uint32_t>(type));
  }
  EXPECT_FALSE(engine.IsIntroduced(DomId(9)));
  EXPECT_TRUE(engine.IsIntroduced(DomId(6)));
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota,
                       "5\0"
                       "nodes\0"s),
            "1000\0"s);
}

TEST_F(EngineTest, OnlyThePrivilegedSetSpecialPathPermissions) {
  auto special = [&](const char* name) { return FormatPerms(*engine.special_perms().at(name)); };
  EXPECT_EQ(special("@releaseDomain"), "n0\0"s);
  EXPECT_EQ(Outcome(dom5.SetPerms("@releaseDomain", {"n5"})), "EACCES");
  EXPECT_EQ(Outcome(dom5.SetPerms("@introduceDomain", {"n0", "r5"})), "EACCES");
  EXPECT_NE(Outcome(dom0.SetPerms("@noSuchSpecial", {"n0"})), "OK");
  EXPECT_FALSE(engine.special_perms().contains("@noSuchSpecial"));
  ASSERT_EQ(Outcome(dom0.SetPerms("@releaseDomain", {"n0", "r5"})), "OK");
  EXPECT_EQ(special("@releaseDomain"), "n0\0r5\0"s);
  EXPECT_EQ(special("@introduceDomain"), "n0\0"s);
}

TEST_F(EngineTest, SetPermsNeedsAnOwnerThatCanExist) {
  ASSERT_EQ(Outcome(dom0.Write("/p", "")), "OK");
  // xen.h: DOMID_FIRST_RESERVED (0x7FF0) and above are not domains.
  EXPECT_EQ(Outcome(dom0.SetPerms("/p", {"n32752"})), "ENOENT");
  EXPECT_EQ(Outcome(dom0.SetPerms("/p", {"n-1"})), "ENOENT");
  EXPECT_EQ(Outcome(dom0.SetPerms("/p", {"n32751"})), "OK");
}

// ---------------------------------------------------------------------------------------------
// SET_TARGET (xenstore.txt: a device model acting for its guest).

TEST_F(EngineTest, SetTargetLetsADeviceModelActForItsGuest) {
  ASSERT_EQ(Outcome(dom6.Write("x", "v")), "OK");
  EXPECT_EQ(Outcome(dom5.Read("/local/domain/6/x")), "EACCES");
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kSetTarget,
                              "5\0"
                              "6\0"s)),
            "OK");
  EXPECT_EQ(*dom5.Read("/local/domain/6/x"), "v");
  ASSERT_EQ(Outcome(dom5.Write("/local/domain/6/x", "w")), "OK");
  EXPECT_EQ(*dom6.Read("x"), "w");
  // What it creates there it owns itself (Xen: the creator's own domid).
  ASSERT_EQ(Outcome(dom5.Write("/local/domain/6/dm", "1")), "OK");
  EXPECT_EQ(*dom0.GetPerms("/local/domain/6/dm"), "n5\0"s);
  // Acting as owner lets it set permissions, but not move the owner to itself.
  EXPECT_EQ(Outcome(dom5.SetPerms("/local/domain/6/x", {"n6", "r5"})), "OK");
  EXPECT_EQ(Outcome(dom5.SetPerms("/local/domain/6/x", {"n5"})), "EPERM");
  // The relation is one way.
  ASSERT_EQ(Outcome(dom5.Write("mine", "v")), "OK");
  EXPECT_EQ(Outcome(dom6.Read("/local/domain/5/mine")), "EACCES");
}

TEST_F(EngineTest, SetTargetNeedsTwoIntroducedDomains) {
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kSetTarget,
                              "5\0"
                              "9\0"s)),
            "ENOENT");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kSetTarget,
                              "9\0"
                              "5\0"s)),
            "ENOENT");
  EXPECT_EQ(Outcome(dom5.Read("/local/domain/6")), "EACCES");
}

TEST_F(EngineTest, SetTargetAfterTheDomainsConnectionClosedIsHarmless) {
  world_.dom5.reset();
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kSetTarget,
                              "5\0"
                              "6\0"s)),
            "OK");
}

// ---------------------------------------------------------------------------------------------
// Watches (xenstore.txt "Watches").

TEST_F(EngineTest, WatchFiresOnceStraightAwayAfterItsAck) {
  ASSERT_EQ(Outcome(dom0.Watch("/a", "tok")), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("/a", "tok")}));
  EXPECT_EQ(dom0.sink().raw_events.back(), "/a\0tok\0"s);
  EXPECT_GT(dom0.sink().events.back().seq, dom0.sink().replies.back().seq);
}

TEST_F(EngineTest, WatchEventsComeBeforeTheReplyOfTheRequestThatFiredThem) {
  ASSERT_EQ(Outcome(dom0.Watch("/a", "tok")), "OK");
  dom0.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Write("/a", "v")), "OK");
  ASSERT_EQ(dom0.TakeEvents().size(), 1u);
  EXPECT_LT(dom0.sink().events.back().seq, dom0.sink().replies.back().seq);
}

TEST_F(EngineTest, WatchFiresForTheNodeAndItsDescendantsOnly) {
  ASSERT_EQ(Outcome(dom5.Watch("/local/domain/5/a", "t")), "OK");
  dom5.TakeEvents();
  for (const char* p : {"a", "a/b", "a/b/c", "ab", "b", "ab/a"}) {
    ASSERT_EQ(Outcome(dom5.Write(p, "v")), "OK");
  }
  EXPECT_EQ(dom5.TakeEvents(), (Events{Ev("/local/domain/5/a", "t"), Ev("/local/domain/5/a/b", "t"),
                                       Ev("/local/domain/5/a/b/c", "t")}));
}

TEST_F(EngineTest, WatchOnAMissingPathFiresWhenItAppears) {
  ASSERT_EQ(Outcome(dom0.Watch("/later/x", "t")), "OK");
  dom0.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Write("/later/x/y", "v")), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("/later/x/y", "t")}));
}

TEST_F(EngineTest, WriteCreatingParentsFiresOnlyForTheWrittenPath) {
  ASSERT_EQ(Outcome(dom0.Watch("/", "root")), "OK");
  dom0.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Write("/x/y/z", "v")), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("/x/y/z", "root")}));
}

TEST_F(EngineTest, MkdirOfAnExistingNodeFiresNothing) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/m")), "OK");
  ASSERT_EQ(Outcome(dom0.Watch("/m", "t")), "OK");
  dom0.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Mkdir("/m")), "OK");
  EXPECT_TRUE(dom0.TakeEvents().empty());
}

TEST_F(EngineTest, FailedRequestsFireNothing) {
  ASSERT_EQ(Outcome(dom6.Watch("x", "t")), "OK");
  ASSERT_EQ(Outcome(dom0.Watch("/", "t")), "OK");
  dom6.TakeEvents();
  dom0.TakeEvents();
  EXPECT_EQ(Outcome(dom5.Write("/local/domain/6/x", "v")), "EACCES");
  EXPECT_EQ(Outcome(dom0.Rm("/nothing/here")), "ENOENT");
  EXPECT_TRUE(dom6.TakeEvents().empty());
  EXPECT_TRUE(dom0.TakeEvents().empty());
}

TEST_F(EngineTest, RemovalFiresOnWatchedDescendantsExactlyOnce) {
  ASSERT_EQ(Outcome(dom0.Write("/a/b/c/d", "v")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/a/b/sib", "v")), "OK");
  for (const char* w : {"/a", "/a/b/c", "/a/b/c/d", "/a/b/c/d/e", "/a/bb", "/a/b"}) {
    ASSERT_EQ(Outcome(dom0.Watch(w, w)), "OK");
  }
  dom0.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Rm("/a/b")), "OK");
  Events got = dom0.TakeEvents();
  std::sort(got.begin(), got.end(), [](const auto& x, const auto& y) { return x.token < y.token; });
  EXPECT_EQ(got, (Events{Ev("/a/b", "/a"), Ev("/a/b", "/a/b"), Ev("/a/b/c", "/a/b/c"),
                         Ev("/a/b/c/d", "/a/b/c/d")}));
}

TEST_F(EngineTest, RmOfAMissingNodeFiresNothing) {
  ASSERT_EQ(Outcome(dom0.Mkdir("/a")), "OK");
  ASSERT_EQ(Outcome(dom0.Watch("/a", "t")), "OK");
  dom0.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Rm("/a/missing")), "OK");
  EXPECT_TRUE(dom0.TakeEvents().empty());
}

TEST_F(EngineTest, DomUDoesNotSeeEventsForNodesItCannotRead) {
  ASSERT_EQ(Outcome(dom6.Watch("/local/domain/5", "spy")), "OK");
  // The first event is the watch's own and carries only the watched path.
  EXPECT_EQ(dom6.TakeEvents(), (Events{Ev("/local/domain/5", "spy")}));
  ASSERT_EQ(Outcome(dom5.Write("secret", "v")), "OK");
  ASSERT_EQ(Outcome(dom5.Write("secret", "v2")), "OK");
  ASSERT_EQ(Outcome(dom5.Rm("secret")), "OK");
  EXPECT_TRUE(dom6.TakeEvents().empty());
}

TEST_F(EngineTest, DomUSeesEventsWhenSetPermsGrantsOrRevokesItsReadAccess) {
  ASSERT_EQ(Outcome(dom5.Write("shared", "v")), "OK");
  ASSERT_EQ(Outcome(dom6.Watch("/local/domain/5/shared", "t")), "OK");
  dom6.TakeEvents();
  ASSERT_EQ(Outcome(dom5.SetPerms("shared", {"n5", "r6"})), "OK");
  EXPECT_EQ(dom6.TakeEvents(), (Events{Ev("/local/domain/5/shared", "t")}));
  ASSERT_EQ(Outcome(dom5.Write("shared", "v2")), "OK");
  EXPECT_EQ(dom6.TakeEvents().size(), 1u);
  ASSERT_EQ(Outcome(dom5.SetPerms("shared", {"n5"})), "OK");
  EXPECT_EQ(dom6.TakeEvents(), (Events{Ev("/local/domain/5/shared", "t")}));
  ASSERT_EQ(Outcome(dom5.Write("shared", "v3")), "OK");
  EXPECT_TRUE(dom6.TakeEvents().empty());
}

TEST_F(EngineTest, RemovalEventsAreFilteredByEachRemovedNodesPermissions) {
  ASSERT_EQ(Outcome(dom5.Write("dir/pub", "v")), "OK");
  ASSERT_EQ(Outcome(dom5.Write("dir/priv", "v")), "OK");
  ASSERT_EQ(Outcome(dom5.SetPerms("dir/pub", {"n5", "r6"})), "OK");
  ASSERT_EQ(Outcome(dom6.Watch("/local/domain/5/dir/pub", "pub")), "OK");
  ASSERT_EQ(Outcome(dom6.Watch("/local/domain/5/dir/priv", "priv")), "OK");
  ASSERT_EQ(Outcome(dom6.Watch("/local/domain/5/dir", "dir")), "OK");
  dom6.TakeEvents();
  ASSERT_EQ(Outcome(dom5.Rm("dir")), "OK");
  EXPECT_EQ(dom6.TakeEvents(), (Events{Ev("/local/domain/5/dir/pub", "pub")}));
}

TEST_F(EngineTest, RelativeWatchesReportRelativePaths) {
  ASSERT_EQ(Outcome(dom5.Watch("dev", "rel")), "OK");
  ASSERT_EQ(Outcome(dom5.Watch("/local/domain/5/dev", "abs")), "OK");
  EXPECT_EQ(dom5.TakeEvents(), (Events{Ev("dev", "rel"), Ev("/local/domain/5/dev", "abs")}));
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/5/dev/vbd/0", "1")), "OK");
  EXPECT_EQ(dom5.TakeEvents(),
            (Events{Ev("dev/vbd/0", "rel"), Ev("/local/domain/5/dev/vbd/0", "abs")}));
}

TEST_F(EngineTest, WatchDepthLimitsTheLevelsThatMatch) {
  ASSERT_EQ(Outcome(dom0.WatchDepth("/a", "d0", "0")), "OK");
  ASSERT_EQ(Outcome(dom0.WatchDepth("/a", "d1", "1")), "OK");
  ASSERT_EQ(Outcome(dom0.WatchDepth("/a", "d2", "2")), "OK");
  EXPECT_EQ(dom0.TakeEvents().size(), 3u);
  ASSERT_EQ(Outcome(dom0.Write("/a", "v")), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("/a", "d0"), Ev("/a", "d1"), Ev("/a", "d2")}));
  ASSERT_EQ(Outcome(dom0.Write("/a/b", "v")), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("/a/b", "d1"), Ev("/a/b", "d2")}));
  ASSERT_EQ(Outcome(dom0.Write("/a/b/c", "v")), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("/a/b/c", "d2")}));
  ASSERT_EQ(Outcome(dom0.Write("/a/b/c/d", "v")), "OK");
  EXPECT_TRUE(dom0.TakeEvents().empty());
}

TEST_F(EngineTest, DuplicateWatchIsEEXISTHoweverItIsSpelled) {
  ASSERT_EQ(Outcome(dom5.Watch("x", "t")), "OK");
  EXPECT_EQ(Outcome(dom5.Watch("x", "t")), "EEXIST");
  EXPECT_EQ(Outcome(dom5.Watch("/local/domain/5/x", "t")), "EEXIST");
  EXPECT_EQ(Outcome(dom5.Watch("x", "t2")), "OK");
  // Another connection's watches are its own.
  EXPECT_EQ(Outcome(dom6.Watch("/local/domain/5/x", "t")), "OK");
  dom5.TakeEvents();
  ASSERT_EQ(Outcome(dom5.Write("x", "v")), "OK");
  EXPECT_EQ(dom5.TakeEvents(), (Events{Ev("x", "t"), Ev("x", "t2")}));
}

TEST_F(EngineTest, UnwatchStopsEventsAndUnknownWatchesAreENOENT) {
  EXPECT_EQ(Outcome(dom5.Unwatch("x", "t")), "ENOENT");
  ASSERT_EQ(Outcome(dom5.Watch("x", "t")), "OK");
  EXPECT_EQ(Outcome(dom5.Unwatch("x", "other")), "ENOENT");
  // Relative and absolute spellings name the same watch.
  EXPECT_EQ(Outcome(dom5.Unwatch("/local/domain/5/x", "t")), "OK");
  EXPECT_EQ(dom5.conn().watch_count(), 0u);
  dom5.TakeEvents();
  ASSERT_EQ(Outcome(dom5.Write("x", "v")), "OK");
  EXPECT_TRUE(dom5.TakeEvents().empty());
}

TEST_F(EngineTest, WatchAndUnwatchIgnoreTheTransactionId) {
  EXPECT_EQ(dom0.Send(MsgType::kWatch, "/a\0t\0"s, 999).payload, kOk);
  EXPECT_EQ(dom0.Send(MsgType::kUnwatch, "/a\0t\0"s, 999).payload, kOk);
}

TEST_F(EngineTest, TokensAreOpaque) {
  const std::string token = "a token/with @odd chars \x01\xff";
  ASSERT_EQ(Outcome(dom0.Watch("/t", token)), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("/t", token)}));
}

// Xen 4.17's do_watch() refuses once a domain has more than the quota (`>`): quota + 1 fit.
TEST_F(EngineTest, WatchQuotaIsE2BIGForDomUsOnly) {
  SetQuota("watches", 2);
  EXPECT_EQ(Outcome(dom5.Watch("a", "t")), "OK");
  EXPECT_EQ(Outcome(dom5.Watch("b", "t")), "OK");
  EXPECT_EQ(Outcome(dom5.Watch("c", "t")), "OK");
  EXPECT_EQ(Outcome(dom5.Watch("d", "t")), "E2BIG");
  EXPECT_EQ(dom5.conn().watch_count(), 3u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Outcome(dom0.Watch("/w", std::to_string(i))), "OK");
  ASSERT_EQ(Outcome(dom5.Unwatch("a", "t")), "OK");
  EXPECT_EQ(Outcome(dom5.Watch("d", "t")), "OK");
}

TEST_F(EngineTest, ResetWatchesDropsWatchesAndTransactions) {
  ASSERT_EQ(Outcome(dom5.Watch("x", "t")), "OK");
  const uint32_t tx = *dom5.TxStart();
  ASSERT_EQ(Outcome(dom5.Write("y", "v", tx)), "OK");
  ASSERT_EQ(Outcome(dom5.Call(MsgType::kResetWatches, "")), "OK");
  EXPECT_EQ(dom5.conn().watch_count(), 0u);
  EXPECT_EQ(dom5.conn().transaction_count(), 0u);
  EXPECT_EQ(Outcome(dom5.Read("y", tx)), "ENOENT");
  dom5.TakeEvents();
  ASSERT_EQ(Outcome(dom5.Write("x", "v")), "OK");
  EXPECT_TRUE(dom5.TakeEvents().empty());
  EXPECT_EQ(Outcome(dom5.Read("y")), "ENOENT");
}

TEST_F(EngineTest, EventsTheTransportRefusesAreCountedNotQueued) {
  dom0.sink().event_capacity = 1;
  ASSERT_EQ(Outcome(dom0.Watch("/a", "t")), "OK");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Outcome(dom0.Write("/a", "v")), "OK");
  EXPECT_EQ(dom0.sink().events.size(), 1u);
  EXPECT_EQ(dom0.conn().events_dropped(), 3u);
}

TEST_F(EngineTest, ClosedConnectionsStopReceivingEvents) {
  ASSERT_EQ(Outcome(dom5.Watch("x", "t")), "OK");
  world_.dom5.reset();
  EXPECT_EQ(Outcome(dom0.Write("/local/domain/5/x", "v")), "OK");
  EXPECT_EQ(engine.connection_count(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Domain events: @introduceDomain and @releaseDomain without DomainHooks.

TEST_F(EngineTest, IntroduceFiresIntroduceDomainOncePerDomain) {
  ASSERT_EQ(Outcome(dom0.Watch("@introduceDomain", "in")), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("@introduceDomain", "in")}));
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kIntroduce,
                              "7\0"
                              "100\0"
                              "4\0"s)),
            "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("@introduceDomain", "in")}));
  EXPECT_TRUE(engine.IsIntroduced(DomId(7)));
  // Introducing it again (a re-bind) is not a new domain.
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kIntroduce,
                              "7\0"
                              "100\0"
                              "4\0"s)),
            "OK");
  EXPECT_TRUE(dom0.TakeEvents().empty());
}

TEST_F(EngineTest, ReleaseFiresReleaseDomain) {
  ASSERT_EQ(Outcome(dom0.Watch("@releaseDomain", "out")), "OK");
  dom0.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kRelease, "5\0"s)), "OK");
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("@releaseDomain", "out")}));
  EXPECT_EQ(*dom0.Call(MsgType::kIsDomainIntroduced, "5\0"s), "F\0"s);
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kRelease, "5\0"s)), "ENOENT");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kRelease, "9\0"s)), "ENOENT");
  EXPECT_TRUE(dom0.TakeEvents().empty());
}

TEST_F(EngineTest, DomainGoneFiresReleaseDomainOnce) {
  ASSERT_EQ(Outcome(dom0.Watch("@releaseDomain", "out")), "OK");
  dom0.TakeEvents();
  engine.DomainGone(DomId(6));
  engine.DomainGone(DomId(6));
  engine.DomainGone(DomId(42));
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("@releaseDomain", "out")}));
  EXPECT_FALSE(engine.IsIntroduced(DomId(6)));
}

TEST_F(EngineTest, DomainShutdownFiresReleaseDomainOnceUntilResumed) {
  ASSERT_EQ(Outcome(dom0.Watch("@releaseDomain", "out")), "OK");
  dom0.TakeEvents();
  engine.DomainShutdown(DomId(6));
  engine.DomainShutdown(DomId(6));
  engine.DomainShutdown(DomId(42));  // never introduced
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("@releaseDomain", "out")}));
  EXPECT_TRUE(engine.IsIntroduced(DomId(6)));  // shut down is not gone: its nodes stay
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kResume, "6\0"s)), "OK");
  engine.DomainShutdown(DomId(6));
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev("@releaseDomain", "out")}));
}

TEST_F(EngineTest, DomUGetsDomainEventsOnlyWhenThePermissionsAllow) {
  ASSERT_EQ(Outcome(dom6.Watch("@releaseDomain", "out")), "OK");
  ASSERT_EQ(Outcome(dom6.Watch("@introduceDomain", "in")), "OK");
  dom6.TakeEvents();
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kIntroduce,
                              "8\0"
                              "1\0"
                              "2\0"s)),
            "OK");
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kRelease, "8\0"s)), "OK");
  EXPECT_TRUE(dom6.TakeEvents().empty());
  ASSERT_EQ(Outcome(dom0.SetPerms("@releaseDomain", {"n0", "r6"})), "OK");
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kIntroduce,
                              "8\0"
                              "1\0"
                              "2\0"s)),
            "OK");
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kRelease, "8\0"s)), "OK");
  EXPECT_EQ(dom6.TakeEvents(), (Events{Ev("@releaseDomain", "out")}));
}

TEST_F(EngineTest, ResumeNeedsAnIntroducedDomain) {
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kResume, "5\0"s)), "OK");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kResume, "9\0"s)), "ENOENT");
}

// ---------------------------------------------------------------------------------------------
// The mutation stream the journal follows.

TEST_F(EngineTest, MutationListenerSeesEachCreatedLevelAndTheRemovedTop) {
  std::vector<std::string> log;
  engine.set_mutation_listener([&](const Mutation& m) {
    log.push_back(fmt::format("{} {} {}", m.kind == Mutation::Kind::kSet ? "set" : "rm", m.path,
                              m.node ? m.node->value() : "-"));
  });
  ASSERT_EQ(Outcome(dom0.Write("/m/a/b", "v")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/m/a/b", "w")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/m", {"n5"})), "OK");
  EXPECT_EQ(Outcome(dom6.Write("/m/x", "v")), "EACCES");
  ASSERT_EQ(Outcome(dom0.Rm("/m")), "OK");
  EXPECT_EQ(log, (std::vector<std::string>{"set /m ", "set /m/a ", "set /m/a/b v", "set /m/a/b w",
                                           "set /m ", "rm /m -"}));
  engine.set_mutation_listener(nullptr);
}

TEST_F(EngineTest, MutationsArePublishedBeforeTheReply) {
  size_t replies_at_mutation = SIZE_MAX;
  engine.set_mutation_listener(
      [&](const Mutation&) { replies_at_mutation = dom0.sink().replies.size(); });
  const size_t before = dom0.sink().replies.size();
  ASSERT_EQ(Outcome(dom0.Write("/j", "v")), "OK");
  EXPECT_EQ(replies_at_mutation, before);
  engine.set_mutation_listener(nullptr);
}

// ---------------------------------------------------------------------------------------------
// Hostile shapes.

TEST_F(EngineTest, DeepPathRemovalDoesNotRecurseStack) {
  // The deepest path anyone may create: path-max (at most XENSTORE_REL_PATH_MAX) of "/x".
  std::string path = "/deep";
  while (path.size() + 2 <= kDefaultPathMax) path += "/x";
  ASSERT_EQ(Outcome(dom0.Write(path, "bottom")), "OK");
  EXPECT_EQ(Outcome(dom0.Write(path + "/x", "")), "EINVAL");
  const size_t levels = (path.size() - 5) / 2;
  EXPECT_GE(levels, 1000u);
  ASSERT_EQ(Outcome(dom0.Watch(path, "bottom")), "OK");
  dom0.TakeEvents();
  const size_t before = engine.tree().node_count();
  ASSERT_EQ(Outcome(dom0.Rm("/deep")), "OK");
  EXPECT_EQ(engine.tree().node_count(), before - levels - 1);
  EXPECT_EQ(dom0.TakeEvents(), (Events{Ev(path, "bottom")}));
}

TEST_F(EngineTest, RepliesNeverExceedThePayloadLimit) {
  // dom0 may write a value as large as a request can carry; reading it back must still fit.
  const std::string value(kPayloadMax - 3, 'v');
  ASSERT_EQ(Outcome(dom0.Write("/v", value)), "OK");
  EXPECT_EQ(dom0.Read("/v")->size(), value.size());
  // A long permission list reads back no longer than it was written.
  std::vector<std::string> perms = {"n0"};
  std::string payload = Strings({"/v", "n0"});
  while (payload.size() + 8 < kPayloadMax) {
    perms.push_back("r" + std::to_string(perms.size()));
    payload += perms.back();
    payload += '\0';
  }
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kSetPerms, payload)), "OK");
  EXPECT_LE(dom0.GetPerms("/v")->size(), kPayloadMax);
}

}  // namespace
}  // namespace xpv::xenstore
