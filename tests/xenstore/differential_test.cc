// Differential test: seeded random request sequences, sent as raw xs_wire.h messages over two
// connections to xpv-xenstored and to Xen 4.17's C xenstored, must get byte-identical replies
// (type, req_id, tx_id, payload) and watch events. The namespace is small so that requests collide:
// writes under transactions conflict, watches fire, removals race creations.
//
// Deliberate differences (docs/xenstored-interop.md) are masked in exactly one function,
// MaskDeliberateDifferences(); anything else that differs fails the test with the request and both
// replies. Requests on which Xen 4.17 itself misbehaves (a stale errno or an assertion failure for
// malformed one-path payloads) are not generated; hostile_test.cc checks xpv on those.
//
// Environment: XPV_DIFF_OPS (requests per seed, default 400), XPV_DIFF_SEED_BASE (default 1),
// XPV_DIFF_MINIMIZE=0 (do not shrink the first difference to a minimal reproducer),
// XPV_DIFF_MINIMIZE_OP=N (shrink op N's instead), XPV_DIFF_TRACE=1 (print every request).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/xenstore/harness.h"

namespace xpv::xenstore::interop {
namespace {

constexpr int kSeeds = 20;
constexpr int kMaxReportedDifferences = 6;
constexpr uint32_t kPingReqId = 0x50494e47;  // "PING"

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// splitmix64: portable, so a seed means the same sequence on every compiler and libstdc++.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  bool Percent(int p) { return Below(100) < static_cast<size_t>(p); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

 private:
  uint64_t s_;
};

// ---------------------------------------------------------------------------------------------
// Requests

// The transaction a request names: none (tx_id 0), a logical transaction (each daemon's own id for
// it is substituted), or a raw id sent as is.
struct TxRef {
  enum class Kind { kNone, kHandle, kRaw } kind = Kind::kNone;
  int handle = -1;
  uint32_t raw = 0;
};

struct Request {
  int conn = 0;  // which of the two connections sends it
  uint32_t type = 0;
  uint32_t req_id = 0;
  TxRef tx;
  std::string payload;
  int new_handle = -1;  // TRANSACTION_START: the logical handle its reply's id maps to
};

// Watch tokens whose watches carry a third "depth" argument (see the mask).
constexpr std::string_view kDepthTokenPrefix = "depthtok";

const std::vector<std::string> kPaths = {"/d",       "/d/a", "/d/b", "/d/a/x", "/d/a/y", "/d/b/x",
                                         "/d/a/x/1", "/e",   "r",    "r/a",    "r/a/b"};
const std::vector<std::string> kWatchPaths = {"/", "@introduceDomain", "@releaseDomain",
                                              "/d/a/x/1/z"};
const std::vector<std::string> kTokens = {"t0", "t1", "t2", ""};
const std::vector<std::string> kDomIds = {"0", "1", "7", "32752", "65535", "abc", "", "-1", "0x1"};

std::string LongName(size_t total, std::string_view prefix) {
  return std::string(prefix) + std::string(total - prefix.size(), 'x');
}

std::string BadPath(Rng& rng) {
  static const std::vector<std::string> kBad = {
      "/d/a/",  "/d//a",  "//",    "/d/a b", "/d/a$", "r/",   "",          "/d/\xc3\xa9",
      "/d/a\n", "@foo",   "@",     "/d/.",   "/d/..", "d//x", "/d/a/x/1/", "/local/domain/0/../x",
      "/d/a*",  "/d/a:b", "/d/a,b"};
  switch (rng.Below(4)) {
    case 0:
    case 1:
      return rng.Pick(kBad);
    case 2: {  // absolute path around XENSTORE_ABS_PATH_MAX (3072)
      static const std::vector<size_t> kLens = {3071, 3072, 3073, 3100};
      return LongName(rng.Pick(kLens), "/d/");
    }
    default: {  // relative path around XENSTORE_REL_PATH_MAX (2048)
      static const std::vector<size_t> kLens = {2047, 2048, 2049, 2100};
      return LongName(rng.Pick(kLens), "r/");
    }
  }
}

std::string GoodPath(Rng& rng) {
  return rng.Pick(kPaths);
}

std::string Value(Rng& rng, size_t path_len) {
  static constexpr std::string_view kAlnum = "abcdefghijklmnopqrstuvwxyz0123456789";
  switch (rng.Below(20)) {
    case 0:
    case 1:
      return "";
    case 2: {  // binary, nuls included
      std::string v(rng.Below(12) + 1, '\0');
      for (auto& c : v) c = static_cast<char>(rng.Below(4) == 0 ? 0 : rng.Below(256));
      return v;
    }
    case 3:  // large
      return std::string(1000 + rng.Below(2000), static_cast<char>('a' + rng.Below(26)));
    case 4:  // the payload exactly XENSTORE_PAYLOAD_MAX
      return std::string(kPayloadMax - path_len - 1, 'v');
    default: {
      std::string v(rng.Below(13), 'a');
      for (auto& c : v) c = kAlnum[rng.Below(kAlnum.size())];
      return v;
    }
  }
}

std::string PermString(Rng& rng) {
  static const std::vector<std::string> kGood = {"n0", "r0", "w0",     "b0",     "n1",   "r1", "w2",
                                                 "b3", "n7", "r32752", "b65535", "r0x5", "n00"};
  static const std::vector<std::string> kBad = {
      "x0", "", "n", "rabc", "n0x", "N0", "r-1", "r99999999999", "b 1"};
  return rng.Percent(85) ? rng.Pick(kGood) : rng.Pick(kBad);
}

// Per-connection state the generator keeps, updated from the reference daemon's replies.
struct ConnModel {
  std::vector<int> open_tx;  // logical handles
  std::vector<std::pair<std::string, std::string>> watches;
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  Request Next() {
    Request r;
    r.conn = rng_.Percent(70) ? 0 : 1;
    r.req_id = static_cast<uint32_t>(rng_.Next());
    ConnModel& m = model_[r.conn];
    const size_t roll = rng_.Below(1000);
    // Most store operations may run inside a transaction.
    auto maybe_tx = [&] {
      if (!m.open_tx.empty() && rng_.Percent(45)) {
        r.tx = {TxRef::Kind::kHandle, rng_.Pick(m.open_tx), 0};
      } else if (rng_.Percent(3)) {
        r.tx = UnknownTx();
      }
    };
    if (roll < 170) {  // WRITE
      r.type = XS_WRITE;
      const std::string p = GoodPath(rng_);
      r.payload = Z(p) + Value(rng_, p.size());
      maybe_tx();
    } else if (roll < 270) {
      r.type = XS_READ;
      r.payload = Z(GoodPath(rng_));
      maybe_tx();
    } else if (roll < 320) {
      r.type = XS_MKDIR;
      r.payload = Z(GoodPath(rng_));
      maybe_tx();
    } else if (roll < 390) {
      r.type = XS_RM;
      r.payload = Z(GoodPath(rng_));
      maybe_tx();
    } else if (roll < 450) {
      r.type = XS_DIRECTORY;
      r.payload = Z(GoodPath(rng_));
      maybe_tx();
    } else if (roll < 475) {
      r.type = XS_DIRECTORY_PART;
      static const std::vector<std::string> kOffsets = {"0", "0", "1", "2", "4", "100", "abc", ""};
      r.payload = Strings({GoodPath(rng_), rng_.Pick(kOffsets)});
      maybe_tx();
    } else if (roll < 520) {
      r.type = XS_GET_PERMS;
      r.payload = Z(rng_.Percent(90) ? GoodPath(rng_) : rng_.Pick(kWatchPaths));
      maybe_tx();
    } else if (roll < 590) {
      r.type = XS_SET_PERMS;
      r.payload = Z(rng_.Percent(92) ? GoodPath(rng_) : rng_.Pick(kWatchPaths));
      const size_t n = rng_.Percent(5) ? 0 : 1 + rng_.Below(rng_.Percent(10) ? 7 : 3);
      for (size_t i = 0; i < n; ++i) r.payload += Z(PermString(rng_));
      maybe_tx();
    } else if (roll < 640) {
      r.type = XS_TRANSACTION_START;
      r.payload =
          rng_.Percent(92) ? Z("") : rng_.Pick(std::vector<std::string>{"", "junk", Z("x")});
      if (!m.open_tx.empty() && rng_.Percent(8))
        r.tx = {TxRef::Kind::kHandle, rng_.Pick(m.open_tx), 0};
      r.new_handle = next_handle_++;
    } else if (roll < 700) {
      r.type = XS_TRANSACTION_END;
      static const std::vector<std::string> kArgs = {Z("T"), Z("T"), Z("T"), Z("F"), Z("F"),
                                                     Z("X"), Z(""),  "T",    Z("TF")};
      r.payload = rng_.Pick(kArgs);
      if (!m.open_tx.empty() && rng_.Percent(85)) {
        r.tx = {TxRef::Kind::kHandle, rng_.Pick(m.open_tx), 0};
      } else if (!closed_.empty() && rng_.Percent(50)) {
        r.tx = {TxRef::Kind::kHandle, rng_.Pick(closed_), 0};  // stale or another conn's
      } else {
        r.tx = rng_.Percent(30) ? TxRef{} : UnknownTx();
      }
    } else if (roll < 760) {
      r.type = XS_WATCH;
      const std::string p = rng_.Percent(80) ? GoodPath(rng_) : rng_.Pick(kWatchPaths);
      r.payload = Strings({p, rng_.Pick(kTokens)});
    } else if (roll < 800) {
      r.type = XS_UNWATCH;
      if (!m.watches.empty() && rng_.Percent(75)) {
        const auto& [p, t] = rng_.Pick(m.watches);
        r.payload = Strings({p, t});
      } else {
        r.payload = Strings({GoodPath(rng_), rng_.Pick(kTokens)});
      }
    } else if (roll < 815) {
      r.type = XS_GET_DOMAIN_PATH;
      r.payload = Z(rng_.Pick(kDomIds));
    } else if (roll < 830) {
      r.type = XS_IS_DOMAIN_INTRODUCED;
      r.payload = Z(rng_.Pick(kDomIds));
    } else if (roll < 900) {  // a bad path in any path-taking request
      static const std::vector<uint32_t> kTypes = {XS_WRITE,     XS_READ,      XS_MKDIR,
                                                   XS_RM,        XS_DIRECTORY, XS_GET_PERMS,
                                                   XS_SET_PERMS, XS_WATCH,     XS_UNWATCH};
      r.type = rng_.Pick(kTypes);
      std::string p = BadPath(rng_);
      // SET_PERMS of an unknown special name makes Xen 4.17 answer a stale errno, or die on an
      // assertion when that errno is 0 (hostile_test.cc checks xpv's ENOENT).
      while (r.type == XS_SET_PERMS && p.starts_with("@")) p = BadPath(rng_);
      if (r.type == XS_WRITE) {
        r.payload = Z(p) + "v";
      } else if (r.type == XS_SET_PERMS) {
        r.payload = Strings({p, "n0"});
      } else if (r.type == XS_WATCH || r.type == XS_UNWATCH) {
        r.payload = Strings({p, "tb"});
      } else {
        r.payload = Z(p);
      }
      maybe_tx();
    } else if (roll < 935) {  // missing nul terminators and other malformed payloads
      // Not READ, DIRECTORY, GET_PERMS, MKDIR or RM: for a payload that is not exactly one string
      // Xen 4.17 answers with a stale errno, or with nothing and then dies on an assertion
      // (docs/xenstored-interop.md); hostile_test.cc checks xpv's EINVAL for those.
      static const std::vector<uint32_t> kTypes = {XS_WRITE,           XS_SET_PERMS,
                                                   XS_WATCH,           XS_UNWATCH,
                                                   XS_GET_DOMAIN_PATH, XS_IS_DOMAIN_INTRODUCED,
                                                   XS_DIRECTORY_PART,  XS_TRANSACTION_END};
      r.type = rng_.Pick(kTypes);
      const std::string p = GoodPath(rng_);
      switch (rng_.Below(5)) {
        case 0:
          r.payload = p;
          break;  // no nul at all
        case 1:
          r.payload = "";
          break;  // empty
        case 2:
          r.payload = Z(p) + "tail";
          break;  // a second, unterminated string
        case 3:
          r.payload = Strings({p, "extra"});
          break;  // one string too many
        default:
          r.payload = Strings({p, "a", "b", "c"});
          break;
      }
      if (r.type == XS_GET_DOMAIN_PATH || r.type == XS_IS_DOMAIN_INTRODUCED) {
        r.payload = rng_.Percent(50) ? "0" : Strings({"0", "1"});
      }
      maybe_tx();
    } else if (roll < 955) {  // types no daemon implements
      static const std::vector<uint32_t> kTypes = {
          20, 27, 28, 64, 0xffff, 0x7fffffff, XS_WATCH_EVENT, XS_ERROR};
      r.type = rng_.Pick(kTypes);
      r.payload = Z(GoodPath(rng_));
    } else if (roll < 990) {  // requests whose replies differ on purpose
      switch (rng_.Below(4)) {
        case 0:
          r.type = abi::XS_GET_FEATURE;
          r.payload = rng_.Percent(50) ? Z("0") : "";
          break;
        case 1:
          r.type = abi::XS_GET_QUOTA;
          r.payload = rng_.Percent(50) ? Z("0") : "";
          break;
        case 2:
          r.type = XS_WATCH;
          r.payload =
              Strings({GoodPath(rng_), fmt::format("{}{}", kDepthTokenPrefix, rng_.Below(3)),
                       rng_.Percent(80) ? "1" : "0"});
          break;
        default:
          r.type = XS_CONTROL;
          r.payload = Z("help");
          break;
      }
    } else {
      r.type = XS_RESET_WATCHES;
      r.payload = rng_.Percent(50) ? "" : Z("");
    }
    return r;
  }

  // Updates the model from the reference daemon's reply to `r`.
  void Observe(const Request& r, const Message* reply, bool conn_closed) {
    ConnModel& m = model_[r.conn];
    if (conn_closed) {
      for (int h : m.open_tx) closed_.push_back(h);
      m = {};
      return;
    }
    if (reply == nullptr) return;
    const bool ok = reply->header.type == r.type;
    auto strings = SplitStrings(r.payload);
    if (r.type == XS_TRANSACTION_START && ok) m.open_tx.push_back(r.new_handle);
    if (r.type == XS_TRANSACTION_END && r.tx.kind == TxRef::Kind::kHandle) {
      // Xen ends the transaction once its argument parses, whatever the outcome.
      const bool arg_ok = r.payload == Z("T") || r.payload == Z("F");
      auto it = std::find(m.open_tx.begin(), m.open_tx.end(), r.tx.handle);
      if (arg_ok && it != m.open_tx.end()) {
        closed_.push_back(*it);
        m.open_tx.erase(it);
      }
    }
    if (r.type == XS_WATCH && ok && strings.size() == 2) {
      m.watches.emplace_back(strings[0], strings[1]);
    }
    if (r.type == XS_UNWATCH && ok && strings.size() == 2) {
      std::erase(m.watches, std::pair<std::string, std::string>(strings[0], strings[1]));
    }
    if (r.type == XS_RESET_WATCHES && ok) {
      for (int h : m.open_tx) closed_.push_back(h);
      m = {};
    }
  }

 private:
  TxRef UnknownTx() {
    static const std::vector<uint32_t> kIds = {1, 2, 9, 12345, 0xffffffff, 0x80000000};
    return {TxRef::Kind::kRaw, -1, rng_.Pick(kIds)};
  }

  Rng rng_;
  ConnModel model_[2];
  std::vector<int> closed_;
  int next_handle_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The one place deliberate differences are masked.

// Rewrites what a daemon sent in answer to `req` so that the differences between xpv-xenstored and
// Xen 4.17's C daemon that docs/xenstored-interop.md lists as deliberate compare equal. Applied to
// both daemons' messages alike. Nothing else may be masked anywhere in this test.
void MaskDeliberateDifferences(const Request& req, std::vector<Message>& received) {
  for (Message& m : received) {
    const bool is_reply = m.header.type != XS_WATCH_EVENT;
    // 1. DIRECTORY_PART's first string is the node's generation count, an internal counter of
    //    each daemon (Xen: a global transaction/modification count); only the children compare.
    if (is_reply && req.type == XS_DIRECTORY_PART && m.header.type == XS_DIRECTORY_PART) {
      const size_t nul = m.payload.find('\0');
      if (nul != std::string::npos) m.payload.replace(0, nul, "<generation>");
    }
    // 2. GET/SET_FEATURE and GET/SET_QUOTA (types 23-26) are ENOSYS in Xen 4.17; xpv implements
    //    them (docs/misc/xenstore.txt of later Xen).
    // 3. CONTROL's output is each daemon's own (commands and text are implementation-defined).
    // 4. WATCH with a third "depth" argument is EINVAL in Xen 4.17; xpv supports it (later Xen's
    //    XENSTORE_SERVER_FEATURE_WATCHDEPTH). Its events and UNWATCH are masked by token.
    const bool depth_watch =
        (req.type == XS_WATCH || req.type == XS_UNWATCH) &&
        std::string_view(req.payload).find(kDepthTokenPrefix) != std::string_view::npos;
    if (is_reply && ((req.type >= abi::XS_GET_FEATURE && req.type <= abi::XS_SET_QUOTA) ||
                     req.type == XS_CONTROL || depth_watch)) {
      m.header.type = XS_ERROR;
      m.payload = "<masked: deliberate difference>";
    }
  }
  // 5. The order of the watch events that one transaction's commit fires: Xen 4.17 fires them in
  //    the order of its internal list of accessed nodes; xpv in the order the transaction first
  //    changed each node. Each commit's events compare as a set, each event byte for byte.
  if (req.type == XS_TRANSACTION_END) {
    for (auto it = received.begin(); it != received.end();) {
      auto run_end = std::find_if(it, received.end(),
                                  [](const Message& m) { return m.header.type != XS_WATCH_EVENT; });
      std::sort(it, run_end,
                [](const Message& a, const Message& b) { return a.payload < b.payload; });
      it = run_end == received.end() ? run_end : run_end + 1;
    }
  }
  std::erase_if(received, [](const Message& m) {
    if (m.header.type != XS_WATCH_EVENT) return false;
    const auto parts = SplitStrings(m.payload);
    return parts.size() >= 2 && parts[1].starts_with(kDepthTokenPrefix);
  });
}

// ---------------------------------------------------------------------------------------------
// One daemon driven through two connections.

class Side {
 public:
  // Starts `impl` in `dir`; replies are awaited up to `timeout_ms`.
  static std::optional<Side> Start(Impl impl, const std::string& dir, int timeout_ms) {
    auto d = Daemon::Start(impl, dir);
    if (!d) return std::nullopt;
    Side s(impl, std::move(*d), timeout_ms);
    for (auto& c : s.conns_) {
      auto conn = RawConn::Connect(s.daemon_.socket());
      if (!conn) return std::nullopt;
      c.emplace(std::move(*conn));
    }
    return s;
  }

  Impl impl() const { return impl_; }
  const Daemon& daemon() const { return daemon_; }
  // The daemon stopped answering (a reply timed out) or died: nothing later can be compared.
  bool broken() const { return hung_ || !daemon_.Alive(); }

  struct Outcome {
    std::vector<std::string> lines;  // rendered, after masking
    std::optional<Message> reply;    // unmasked, for the generator's model
    bool conn_closed = false;
  };

  Outcome Exchange(const Request& req) {
    Outcome out;
    uint32_t tx_id = 0;
    if (req.tx.kind == TxRef::Kind::kRaw) tx_id = req.tx.raw;
    if (req.tx.kind == TxRef::Kind::kHandle) tx_id = TxId(req.tx.handle);
    std::vector<Message> got;
    RawConn& c = *conns_[req.conn];
    if (auto s = c.Send(req.type, req.req_id, tx_id, req.payload); !s) {
      out.lines.push_back(
          fmt::format("c{}: send failed: {}", req.conn, std::strerror(s.error().code)));
    }
    // The reply and the events that came before it.
    while (true) {
      auto m = c.Receive(timeout_ms_);
      if (!m) {
        Lost(req.conn, m.error(), &out);
        break;
      }
      const bool event = m->header.type == XS_WATCH_EVENT;
      got.push_back(*m);
      if (!event) {
        out.reply = *m;
        break;
      }
    }
    if (req.type == XS_TRANSACTION_START && out.reply &&
        out.reply->header.type == XS_TRANSACTION_START) {
      SetTxId(req.new_handle,
              static_cast<uint32_t>(std::strtoul(out.reply->payload.c_str(), nullptr, 10)));
    }
    // Events queued after the reply (WATCH's first event), on both connections: a ping on each
    // connection comes back after everything queued before it.
    std::vector<Message> later[2];
    for (int i : {req.conn, 1 - req.conn}) {
      if (!conns_[i] || hung_) continue;
      if (auto s = conns_[i]->Send(XS_GET_DOMAIN_PATH, kPingReqId, 0, Z("0")); !s) {
        Lost(i, s.error(), &out);
        continue;
      }
      while (true) {
        auto m = conns_[i]->Receive(timeout_ms_);
        if (!m) {
          Lost(i, m.error(), &out);
          break;
        }
        if (m->header.type == XS_WATCH_EVENT) {
          later[i].push_back(std::move(*m));
          continue;
        }
        if (m->header.req_id != kPingReqId) {
          out.lines.push_back(fmt::format("c{}: unexpected {}", i, Render(*m)));
        }
        break;
      }
    }
    MaskDeliberateDifferences(req, got);
    for (const Message& m : got) out.lines.push_back(fmt::format("c{}< {}", req.conn, Render(m)));
    for (int i : {req.conn, 1 - req.conn}) {
      MaskDeliberateDifferences(req, later[i]);
      for (const Message& m : later[i]) {
        out.lines.push_back(fmt::format("c{}< (after) {}", i, Render(m)));
      }
    }
    for (int i : {0, 1}) {
      if (conns_[i] || hung_) continue;
      if (i == req.conn) out.conn_closed = true;
      auto conn = RawConn::Connect(daemon_.socket());
      if (conn) conns_[i].emplace(std::move(*conn));
      out.lines.push_back(fmt::format("c{}: {}", i, conn ? "reconnected" : "reconnect failed"));
    }
    return out;
  }

 private:
  Side(Impl impl, Daemon d, int timeout_ms)
      : impl_(impl), daemon_(std::move(d)), timeout_ms_(timeout_ms) {}

  void Lost(int i, const Error& e, Outcome* out) {
    if (e.code == ETIMEDOUT) {
      hung_ = true;
      out->lines.push_back(fmt::format("c{}: no reply within {} ms", i, timeout_ms_));
    } else {
      out->lines.push_back(e.code == ECONNRESET
                               ? fmt::format("c{}: connection closed by the daemon", i)
                               : fmt::format("c{}: {}", i, std::strerror(e.code)));
    }
    conns_[i].reset();
  }
  uint32_t TxId(int handle) const {
    return handle >= 0 && handle < static_cast<int>(tx_ids_.size()) ? tx_ids_[handle] : 0;
  }
  void SetTxId(int handle, uint32_t id) {
    if (handle >= static_cast<int>(tx_ids_.size())) tx_ids_.resize(handle + 1, 0);
    tx_ids_[handle] = id;
  }

  Impl impl_;
  Daemon daemon_;
  int timeout_ms_;
  bool hung_ = false;
  std::optional<RawConn> conns_[2];
  std::vector<uint32_t> tx_ids_;  // logical handle -> this daemon's transaction id
};

std::string JoinLines(const std::vector<std::string>& lines, std::string_view indent) {
  std::string s;
  for (const auto& l : lines) s += fmt::format("{}{}\n", indent, l);
  if (lines.empty()) s += fmt::format("{}(nothing)\n", indent);
  return s;
}

std::string Describe(const Request& req) {
  return fmt::format(
      "c{} {}{}", req.conn,
      req.tx.kind == TxRef::Kind::kHandle ? fmt::format("[tx #{}] ", req.tx.handle) : "",
      RenderRequest(req.type, req.req_id, req.tx.kind == TxRef::Kind::kRaw ? req.tx.raw : 0,
                    req.payload));
}

std::string DescribeDifference(Impl a, Impl b, const Request& req, const Side::Outcome& oa,
                               const Side::Outcome& ob) {
  return fmt::format("  request: {}\n  {}:\n{}  {}:\n{}", Describe(req), ImplName(a),
                     JoinLines(oa.lines, "    "), ImplName(b), JoinLines(ob.lines, "    "));
}

// Replays `reqs` on fresh daemons; true when the last request's outcomes differ (described in
// `*what`). Used to shrink a failing sequence.
bool LastDiffers(Impl a_impl, Impl b_impl, const std::vector<Request>& reqs, std::string* what) {
  TempDir tmp("xsdiff-min");
  auto a = Side::Start(a_impl, tmp.Sub("a"), 1000);
  auto b = Side::Start(b_impl, tmp.Sub("b"), 1000);
  if (!a || !b) return false;
  for (size_t i = 0; i < reqs.size(); ++i) {
    Side::Outcome oa = a->Exchange(reqs[i]);
    Side::Outcome ob = b->Exchange(reqs[i]);
    if (i + 1 == reqs.size()) {
      if (oa.lines == ob.lines) return false;
      *what = DescribeDifference(a_impl, b_impl, reqs[i], oa, ob);
      return true;
    }
    if (a->broken() || b->broken()) return false;
  }
  return false;
}

// Shrinks reqs[0..last] to a short sequence whose last request (always reqs[last]) still gets
// differing outcomes (ddmin over the requests before it), within a time budget.
std::string Minimize(Impl a_impl, Impl b_impl, const std::vector<Request>& reqs, size_t last) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<Request> prefix(reqs.begin(), reqs.begin() + static_cast<long>(last));
  std::string what;
  auto with_last = [&](std::vector<Request> v) {
    v.push_back(reqs[last]);
    return v;
  };
  if (!LastDiffers(a_impl, b_impl, with_last(prefix), &what)) {
    return "  (does not reproduce on a fresh replay)\n";
  }
  size_t chunks = 2;
  while (prefix.size() >= 1 && std::chrono::steady_clock::now() < deadline) {
    const size_t size = std::max<size_t>(1, (prefix.size() + chunks - 1) / chunks);
    bool reduced = false;
    for (size_t start = 0; start < prefix.size(); start += size) {
      std::vector<Request> trial(prefix.begin(), prefix.begin() + static_cast<long>(start));
      trial.insert(trial.end(),
                   prefix.begin() + static_cast<long>(std::min(start + size, prefix.size())),
                   prefix.end());
      std::string w;
      if (LastDiffers(a_impl, b_impl, with_last(trial), &w)) {
        prefix = std::move(trial);
        what = std::move(w);
        chunks = std::max<size_t>(chunks - 1, 2);
        reduced = true;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    if (!reduced) {
      if (size == 1) break;
      chunks = std::min(prefix.size(), chunks * 2);
    }
  }
  std::string out = fmt::format("  minimal reproducer ({} requests before it, on fresh daemons):\n",
                                prefix.size());
  for (const auto& r : prefix) out += fmt::format("    {}\n", Describe(r));
  return out + what;
}

// Runs `ops` generated requests against `a_impl` (the reference, whose replies drive the
// generator's model) and `b_impl`; returns a report of the differences (empty when none), with the
// first one shrunk to a minimal reproducer when `minimize`.
std::string RunSeed(uint64_t seed, int ops, Impl a_impl, Impl b_impl, bool minimize) {
  TempDir tmp("xsdiff");
  auto a = Side::Start(a_impl, tmp.Sub("a"), 5000);
  auto b = Side::Start(b_impl, tmp.Sub("b"), 5000);
  if (!a || !b) return "a daemon did not start\n";
  Generator gen(seed);
  const bool trace = EnvInt("XPV_DIFF_TRACE", 0) != 0;  // print every request and a's replies
  std::vector<Request> reqs;
  std::string report;
  int differences = 0;
  std::optional<size_t> first;
  for (int i = 0; i < ops; ++i) {
    const Request req = gen.Next();
    reqs.push_back(req);
    Side::Outcome oa = a->Exchange(req);
    Side::Outcome ob = b->Exchange(req);
    gen.Observe(req, oa.reply ? &*oa.reply : nullptr, oa.conn_closed);
    if (trace)
      std::printf("op %d %s\n%s", i, Describe(req).c_str(), JoinLines(oa.lines, "    ").c_str());
    if (oa.lines != ob.lines) {
      if (!first) first = reqs.size() - 1;
      if (++differences <= kMaxReportedDifferences) {
        report += fmt::format("seed {} op {}:\n{}", seed, i,
                              DescribeDifference(a_impl, b_impl, req, oa, ob));
      }
    }
    if (a->broken() || b->broken()) {
      for (Side* s : {&*a, &*b}) {
        if (!s->broken()) continue;
        report += fmt::format(
            "seed {} stopped at op {}: {} {}; its log:\n{}\n", seed, i, ImplName(s->impl()),
            s->daemon().Alive() ? "stopped answering" : "died", s->daemon().LogTail(2000));
      }
      break;
    }
  }
  if (differences > kMaxReportedDifferences) {
    report += fmt::format("... and {} more differing requests in seed {}\n",
                          differences - kMaxReportedDifferences, seed);
  }
  // XPV_DIFF_MINIMIZE_OP=N shrinks the difference at op N instead of the first one.
  if (const int op = EnvInt("XPV_DIFF_MINIMIZE_OP", -1);
      op >= 0 && op < static_cast<int>(reqs.size())) {
    first = static_cast<size_t>(op);
  }
  if (first && minimize) {
    a.reset();
    b.reset();
    report += fmt::format("first difference (seed {} op {}) shrunk:\n{}", seed, *first,
                          Minimize(a_impl, b_impl, reqs, *first));
  }
  return report;
}

class Differential : public ::testing::TestWithParam<int> {};

// xpv-xenstored against Xen 4.17's C daemon, one seed per test.
TEST_P(Differential, XpvMatchesXenByteForByte) {
  if (std::string why = Unavailable(Impl::kXen); !why.empty()) GTEST_SKIP() << why;
  if (std::string why = Unavailable(Impl::kXpv); !why.empty()) FAIL() << why;
  const uint64_t seed = static_cast<uint64_t>(EnvInt("XPV_DIFF_SEED_BASE", 1) + GetParam());
  const std::string report = RunSeed(seed, EnvInt("XPV_DIFF_OPS", 400), Impl::kXen, Impl::kXpv,
                                     EnvInt("XPV_DIFF_MINIMIZE", 1) != 0);
  EXPECT_TRUE(report.empty()) << "xpv-xenstored differs from Xen's xenstored:\n" << report;
}

INSTANTIATE_TEST_SUITE_P(Seeds, Differential, ::testing::Range(0, kSeeds));

// The method itself: two fresh C daemons fed the same sequence must agree, or the differences the
// test above reports could be noise of the harness (timing, event collection) rather than xpv's.
TEST(DifferentialHarness, XenAgreesWithItself) {
  if (std::string why = Unavailable(Impl::kXen); !why.empty()) GTEST_SKIP() << why;
  const std::string report =
      RunSeed(EnvInt("XPV_DIFF_SEED_BASE", 1), 400, Impl::kXen, Impl::kXen, false);
  EXPECT_TRUE(report.empty()) << "the harness is not deterministic:\n" << report;
}

}  // namespace
}  // namespace xpv::xenstore::interop
