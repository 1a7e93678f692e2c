// Replays inputs through the fuzz targets' own entry points (testing/fuzz_entry.h), so every build
// runs the fuzzers' invariant checks without clang: hand-written nasty scripts, then a few thousand
// generated ones from a fixed seed. An invariant failure aborts with the file and line.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "xpv/xenstore/path.h"
#include "xpv/xenstore/testing/fake_sink.h"
#include "xpv/xenstore/testing/fuzz_entry.h"
#include "xpv/xenstore/wire.h"

namespace xpv::xenstore {
namespace {

using namespace std::string_literals;
using testing::EncodeEngineFuzzRequest;
using testing::EngineFuzzOneInput;
using testing::Strings;
using testing::WireFuzzOneInput;

enum Who : uint8_t { kDom0Conn = 0, kToolsConn = 1, kDom5Conn = 2, kDom6Conn = 3 };

std::span<const uint8_t> Bytes(const std::string& s) {
  // SAFETY: reading chars as bytes of the same size.
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Req(Who who, MsgType type, std::string_view payload, uint32_t tx = 0) {
  return EncodeEngineFuzzRequest(who, static_cast<uint32_t>(type), tx, payload);
}

std::string WriteReq(Who who, std::string_view path, std::string_view value, uint32_t tx = 0) {
  std::string p(path);
  p += '\0';
  p += value;
  return Req(who, MsgType::kWrite, p, tx);
}

// ---------------------------------------------------------------------------------------------
// Hand-written engine scripts.

std::vector<std::string> EngineCorpus() {
  std::vector<std::string> c;
  // Plain traffic from everyone.
  c.push_back(WriteReq(kDom5Conn, "a/b", "v") + Req(kDom5Conn, MsgType::kRead, "a/b\0"s) +
              Req(kDom6Conn, MsgType::kRead, "/local/domain/5/a/b\0"s) +
              Req(kDom5Conn, MsgType::kDirectory, "a\0"s) + Req(kDom5Conn, MsgType::kRm, "a\0"s) +
              Req(kDom0Conn, MsgType::kDirectoryPart,
                  "/local/domain\0"
                  "0\0"s));
  // Transactions: conflicting, disjoint, rm-then-recreate, commit after the tx's node vanished.
  c.push_back(WriteReq(kDom5Conn, "c", "0") + Req(kDom5Conn, MsgType::kTransactionStart, "\0"s) +
              Req(kDom5Conn, MsgType::kRead, "c\0"s, 1) + WriteReq(kDom5Conn, "c", "1", 1) +
              WriteReq(kDom0Conn, "/local/domain/5/c", "x") +
              Req(kDom5Conn, MsgType::kTransactionEnd, "T\0"s, 1));
  c.push_back(WriteReq(kDom5Conn, "r/old/deep", "v") +
              Req(kDom5Conn, MsgType::kTransactionStart, "\0"s) +
              Req(kDom5Conn, MsgType::kRm, "r\0"s, 1) + WriteReq(kDom5Conn, "r/new", "1", 1) +
              Req(kDom5Conn, MsgType::kDirectory, "r\0"s, 1) +
              Req(kDom5Conn, MsgType::kTransactionEnd, "T\0"s, 1));
  c.push_back(Req(kDom5Conn, MsgType::kTransactionStart, "\0"s) +
              WriteReq(kDom5Conn, "t/a/b/c", "1", 1) + Req(kDom5Conn, MsgType::kRm, "t/a\0"s, 1) +
              Req(kDom0Conn, MsgType::kRm, "/local/domain/5\0"s) +
              Req(kDom5Conn, MsgType::kTransactionEnd, "T\0"s, 1) +
              Req(kDom5Conn, MsgType::kTransactionEnd, "T\0"s, 1));
  // Ownership moved by dom0 while a domU's transaction creates nodes.
  c.push_back(Req(kDom6Conn, MsgType::kTransactionStart, "\0"s) + WriteReq(kDom6Conn, "n1", "", 1) +
              WriteReq(kDom6Conn, "n2/n3", "", 1) +
              Req(kDom0Conn, MsgType::kSetPerms, "/local/domain/6\0n5\0r6\0"s) +
              Req(kDom6Conn, MsgType::kTransactionEnd, "T\0"s, 1) +
              Req(kDom0Conn, MsgType::kSetPerms, "/local/domain/6\0n6\0"s) +
              WriteReq(kDom6Conn, "n4", ""));
  // Quotas shrunk under running domains, then deep writes.
  c.push_back(Req(kDom0Conn, MsgType::kControl,
                  "quota\0set\0nodes\0"
                  "4\0"s) +
              WriteReq(kDom5Conn, "a/b/c/d/e/f/g/h", "") + WriteReq(kDom5Conn, "a/b", "") +
              Req(kDom5Conn, MsgType::kTransactionStart, "\0"s) +
              WriteReq(kDom5Conn, "t/u/v/w/x/y", "", 1) +
              Req(kDom5Conn, MsgType::kTransactionEnd, "T\0"s, 1) +
              Req(kDom0Conn, MsgType::kControl,
                  "quota\0"
                  "5\0"s));
  c.push_back(Req(kDom0Conn, MsgType::kControl,
                  "quota\0set\0transaction-nodes\0"
                  "2\0"s) +
              Req(kDom5Conn, MsgType::kTransactionStart, "\0"s) + WriteReq(kDom5Conn, "a", "", 1) +
              WriteReq(kDom5Conn, "b", "", 1) + WriteReq(kDom5Conn, "c", "", 1) +
              Req(kDom5Conn, MsgType::kTransactionEnd, "T\0"s, 1));
  // Domain lifetime: release with nodes left, re-introduce, SET_TARGET across it.
  c.push_back(WriteReq(kDom5Conn, "keep/me", "") + Req(kDom0Conn, MsgType::kRelease, "5\0"s) +
              Req(kDom0Conn, MsgType::kRm, "/local/domain/5/keep\0"s) +
              Req(kDom0Conn, MsgType::kIntroduce,
                  "5\0"
                  "1\0"
                  "2\0"s) +
              Req(kDom0Conn, MsgType::kSetTarget,
                  "5\0"
                  "6\0"s) +
              WriteReq(kDom5Conn, "again", "") + WriteReq(kDom5Conn, "/local/domain/6/dm", "") +
              Req(kDom0Conn, MsgType::kRelease, "6\0"s) +
              Req(kDom0Conn, MsgType::kControl,
                  "quota\0"
                  "5\0"s));
  // Watches everywhere, then a big removal; special watches and resets.
  {
    std::string s;
    for (const char* w : {"/", "/local", "/local/domain/5/w/x", "w", "w/x/y/z", "@releaseDomain"}) {
      s += Req(kDom5Conn, MsgType::kWatch, Strings({w, "t"}));
      s += Req(kDom0Conn, MsgType::kWatch, Strings({w, "t", "1"}));
    }
    s += WriteReq(kDom5Conn, "w/x/y/z", "v") + Req(kDom0Conn, MsgType::kRm, "/local\0"s) +
         Req(kDom5Conn, MsgType::kResetWatches, "") + Req(kDom0Conn, MsgType::kRelease, "5\0"s);
    c.push_back(s);
  }
  // The deepest path anyone may create, one level too deep, and the removal.
  {
    std::string path = "/deep";
    while (path.size() + 2 <= kDefaultPathMax) path += "/x";
    c.push_back(WriteReq(kDom0Conn, path, "") + WriteReq(kDom0Conn, path + "/x", "") +
                Req(kDom0Conn, MsgType::kControl,
                    "quota\0set\0path-max\0"
                    "5000\0"s) +
                WriteReq(kDom0Conn, path + "/x", "") + Req(kDom0Conn, MsgType::kRm, "/deep\0"s));
  }
  // The largest replies: a directory too big for one message, a full value, many permissions.
  {
    std::string s;
    for (int i = 0; i < 150; ++i)
      s += WriteReq(kDom0Conn, "/big/" + std::string(40, 'a' + i % 26) + std::to_string(i), "");
    s += Req(kDom0Conn, MsgType::kDirectory, "/big\0"s) +
         Req(kDom0Conn, MsgType::kDirectoryPart,
             "/big\0"
             "0\0"s) +
         WriteReq(kDom0Conn, "/v", std::string(kPayloadMax - 3, 'v')) +
         Req(kDom0Conn, MsgType::kRead, "/v\0"s);
    std::string perms = "/v\0"s;
    for (int i = 0; perms.size() + 8 < kPayloadMax; ++i) perms += "b" + std::to_string(i) + '\0';
    s += Req(kDom0Conn, MsgType::kSetPerms, perms) + Req(kDom0Conn, MsgType::kGetPerms, "/v\0"s);
    c.push_back(s);
  }
  // Every header type, including unknown ones, with an empty and a junk payload, in a transaction.
  {
    std::string s = Req(kDom5Conn, MsgType::kTransactionStart, "\0"s);
    for (uint32_t t = 0; t < 256; ++t) {
      s += EncodeEngineFuzzRequest(kDom5Conn, t, 0, "");
      s += EncodeEngineFuzzRequest(kDom5Conn, t, 1, "\xff\x00junk/\x00"s);
      s += EncodeEngineFuzzRequest(kDom0Conn, t, 0,
                                   "/local/domain/5\0"
                                   "0\0"s);
    }
    c.push_back(s);
  }
  // A truncated final request.
  c.push_back(WriteReq(kDom5Conn, "a", "v").substr(0, 7));
  c.push_back(""s);
  return c;
}

TEST(FuzzCorpusTest, EngineHandWrittenScripts) {
  for (const std::string& input : EngineCorpus()) EngineFuzzOneInput(Bytes(input));
}

// Generated scripts: requests built from a small vocabulary of paths, permissions and values so
// that they collide, from every connection, with transactions mixed in.
std::string RandomEngineScript(std::mt19937& rng, int requests) {
  static const std::array<std::string_view, 20> kPaths = {"/a",
                                                          "/a/b",
                                                          "/a/b/c",
                                                          "x",
                                                          "x/y",
                                                          "x/y/z",
                                                          "/local/domain/5",
                                                          "/local/domain/5/x",
                                                          "/local/domain/6/x",
                                                          "/local/domain/6",
                                                          "/tool",
                                                          "/",
                                                          "@releaseDomain",
                                                          "@introduceDomain",
                                                          "",
                                                          "/a//b",
                                                          "deep/1/2/3/4/5/6/7",
                                                          "/local/domain/6/x/y",
                                                          "/local",
                                                          "x/q"};
  static const std::array<std::string_view, 8> kPerms = {"n0", "r5", "b6", "n5",
                                                         "w5", "n6", "r7", "b0"};
  static const std::array<MsgType, 19> kTypes = {MsgType::kRead,
                                                 MsgType::kWrite,
                                                 MsgType::kWrite,
                                                 MsgType::kMkdir,
                                                 MsgType::kRm,
                                                 MsgType::kDirectory,
                                                 MsgType::kDirectoryPart,
                                                 MsgType::kGetPerms,
                                                 MsgType::kSetPerms,
                                                 MsgType::kWatch,
                                                 MsgType::kUnwatch,
                                                 MsgType::kTransactionStart,
                                                 MsgType::kTransactionEnd,
                                                 MsgType::kTransactionEnd,
                                                 MsgType::kIntroduce,
                                                 MsgType::kRelease,
                                                 MsgType::kSetTarget,
                                                 MsgType::kControl,
                                                 MsgType::kSetQuota};
  auto pick = [&](auto& arr) { return arr[rng() % arr.size()]; };
  auto dom = [&] { return std::to_string(5 + rng() % 3); };
  // Transaction ids count up per connection from 1; guess which are open, assuming every
  // TRANSACTION_START succeeds, so that most requests name a live transaction.
  std::array<uint32_t, 4> started = {};
  std::array<std::vector<uint32_t>, 4> open;
  auto some_tx = [&](Who who) -> uint32_t {
    return open[who].empty() ? 1 + rng() % 3 : open[who][rng() % open[who].size()];
  };
  std::string s;
  for (int i = 0; i < requests; ++i) {
    const Who who = static_cast<Who>(rng() % 4);
    MsgType type = pick(kTypes);
    if (type == MsgType::kTransactionEnd && open[who].empty() && rng() % 8 != 0) {
      type = MsgType::kTransactionStart;
    }
    uint32_t tx = rng() % 3 == 0 ? some_tx(who) : 0;
    if (type == MsgType::kTransactionEnd && rng() % 8 != 0) tx = some_tx(who);
    if (type == MsgType::kTransactionStart && tx == 0) open[who].push_back(++started[who]);
    if (type == MsgType::kTransactionEnd) std::erase(open[who], tx);
    const std::string path(pick(kPaths));
    std::string payload;
    switch (type) {
      case MsgType::kWrite:
        payload = path + '\0' + std::string(rng() % 4 == 0 ? 2100 : rng() % 8, 'v');
        break;
      case MsgType::kSetPerms: {
        payload = Strings({path});
        const int n = 1 + rng() % 3;
        for (int k = 0; k < n; ++k) payload += std::string(pick(kPerms)) + '\0';
        break;
      }
      case MsgType::kWatch:
        payload =
            rng() % 2 ? Strings({path, "t"}) : Strings({path, "t", std::to_string(rng() % 3)});
        break;
      case MsgType::kUnwatch:
        payload = Strings({path, "t"});
        break;
      case MsgType::kDirectoryPart:
        payload = Strings({path, std::to_string(rng() % 8)});
        break;
      case MsgType::kTransactionStart:
        payload = "\0"s;
        break;
      case MsgType::kTransactionEnd:
        payload = rng() % 4 ? "T\0"s : "F\0"s;
        break;
      case MsgType::kIntroduce:
        payload = Strings({dom(), "1", "2"});
        break;
      case MsgType::kRelease:
        payload = Strings({dom()});
        break;
      case MsgType::kSetTarget:
        payload = Strings({dom(), dom()});
        break;
      case MsgType::kControl:
        payload = rng() % 2 ? Strings({"quota", "set", rng() % 2 ? "nodes" : "transaction-nodes",
                                       std::to_string(2 + rng() % 6)})
                            : Strings({"quota", dom()});
        break;
      case MsgType::kSetQuota:
        payload = Strings({dom(), "nodes", std::to_string(2 + rng() % 6)});
        break;
      default:
        payload = Strings({path});
        break;
    }
    s += Req(who, type, payload, tx);
  }
  return s;
}

TEST(FuzzCorpusTest, EngineGeneratedScripts) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 1500; ++i) EngineFuzzOneInput(Bytes(RandomEngineScript(rng, 5 + i % 60)));
}

TEST(FuzzCorpusTest, EngineRandomBytes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string s(rng() % 600, '\0');
    for (char& ch : s) ch = static_cast<char>(rng());
    EngineFuzzOneInput(Bytes(s));
  }
}

// ---------------------------------------------------------------------------------------------
// Wire codec.

std::string Frame(uint32_t type, uint32_t len, std::string_view payload) {
  std::string out(kHeaderSize, '\0');
  EncodeHeader(Header{type, 1, 0, len}, out.data());
  out += payload;
  return out;
}

TEST(FuzzCorpusTest, WireHandWrittenStreams) {
  const std::vector<std::string> streams = {
      ""s,
      "\x01"s,
      "\x00"s + Frame(XS_WRITE, 7, "/a\0val"s),
      "\x03"s + Frame(XS_READ, 3, "/a\0"s) + Frame(XS_READ, 0, "") + Frame(XS_DIRECTORY, 2, "/\0"s),
      "\x05"s + Frame(XS_WRITE, UINT32_MAX, "x"),
      "\x3f"s + Frame(XS_WRITE, kPayloadMax + 1, std::string(100, 'x')),
      "\x10"s + Frame(XS_WRITE, kPayloadMax, std::string(kPayloadMax, '\0')),
      "\x00"s + Frame(XS_SET_PERMS, 20, "/a\0n0\0r5\0b99999999999"s),
      "\x00"s + Frame(XS_SET_PERMS, 13, "/a\0r-1\0w+2\0\0"s),
      "\x00"s + Frame(XS_WATCH, 30,
                      "@introduceDomain\0tok\0"
                      "7\0junk"s),
      "\x00"s + Frame(XS_READ, 9, "/a//b/..\0"s) + Frame(XS_READ, 1, "\0"s),
      "\x02"s + Frame(999, 5, "\xff\xfe\xfd\xfc\0"s),
      "\x00"s + Frame(XS_WRITE, 3, "a"),  // truncated payload
      "\x00"s + std::string(kHeaderSize - 1, '\x7f'),
  };
  for (const std::string& s : streams) WireFuzzOneInput(Bytes(s));
}

TEST(FuzzCorpusTest, WireRandomStreams) {
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    s += static_cast<char>(rng());
    const int frames = rng() % 4;
    for (int f = 0; f < frames; ++f) {
      std::string payload(rng() % 64, '\0');
      for (char& ch : payload) {
        const uint32_t r = rng() % 8;
        ch = r == 0 ? '\0' : r == 1 ? '/' : r == 2 ? '@' : static_cast<char>('a' + rng() % 26);
        if (rng() % 50 == 0) ch = static_cast<char>(rng());
      }
      const uint32_t len = rng() % 20 == 0 ? static_cast<uint32_t>(rng()) : payload.size();
      s += Frame(rng() % 30, len, payload);
    }
    WireFuzzOneInput(Bytes(s));
  }
}

}  // namespace
}  // namespace xpv::xenstore
