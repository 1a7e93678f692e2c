// kill -9 under write load: xpv-xenstored --state-dir DIR is SIGKILLed at a random moment while
// writers record every write the daemon acknowledged; restarted on the same DIR it must hold every
// acknowledged write with its value. A write in flight at the kill may or may not have landed; a
// transaction in flight must have landed whole or not at all.
//
// Environment: XPV_CRASH_SEED (default: time-based, printed so a failure can be replayed).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "tests/xenstore/harness.h"

namespace xpv::xenstore::interop {
namespace {

using std::chrono::milliseconds;

constexpr int kRounds = 4;
constexpr int kKeysPerWriter = 64;
constexpr int kTxKeys = 3;  // keys written per transaction

// What one writer knows about its own keys: the value last acknowledged, and the values of the
// request in flight when the daemon died (which may or may not have landed).
struct Ledger {
  std::map<std::string, std::string> acked;
  std::map<std::string, std::string> in_flight;  // for a transaction: all of its keys
  uint64_t acked_writes = 0;
};

// Plain writes to /crash/w<id>/k<n>, values unique across rounds.
void PlainWriter(const std::string& socket, int id, int round, std::atomic<bool>& stop,
                 Ledger& ledger) {
  auto c = RawConn::Connect(socket);
  if (!c) return;
  for (uint64_t i = 0; !stop; ++i) {
    const std::string key = fmt::format("/crash/w{}/k{}", id, i % kKeysPerWriter);
    const std::string value = fmt::format("r{}-w{}-i{}", round, id, i);
    ledger.in_flight = {{key, value}};
    auto m = c->Call(XS_WRITE, 0, Z(key) + value, nullptr, 3000);
    if (!m) return;  // the daemon died: `value` stays in flight
    if (m->header.type != XS_WRITE) {
      ADD_FAILURE() << "WRITE refused: " << Render(*m);
      return;
    }
    ledger.acked[key] = value;
    ledger.in_flight.clear();
    ++ledger.acked_writes;
  }
}

// Transactions of kTxKeys writes each to /crash/t<id>/k<n>; acknowledged when the commit is.
void TxWriter(const std::string& socket, int id, int round, std::atomic<bool>& stop,
              Ledger& ledger) {
  auto c = RawConn::Connect(socket);
  if (!c) return;
  for (uint64_t i = 0; !stop; ++i) {
    auto ts = c->Call(XS_TRANSACTION_START, 0, Z(""), nullptr, 3000);
    if (!ts) return;
    if (ts->header.type != XS_TRANSACTION_START) {
      ADD_FAILURE() << "TRANSACTION_START refused: " << Render(*ts);
      return;
    }
    const uint32_t tx = static_cast<uint32_t>(std::strtoul(ts->payload.c_str(), nullptr, 10));
    std::map<std::string, std::string> batch;
    for (int k = 0; k < kTxKeys; ++k) {
      const std::string key = fmt::format("/crash/t{}/k{}", id, (i * kTxKeys + k) % kKeysPerWriter);
      const std::string value = fmt::format("r{}-t{}-i{}-k{}", round, id, i, k);
      auto m = c->Call(XS_WRITE, tx, Z(key) + value, nullptr, 3000);
      if (!m) return;  // died before the commit was sent: nothing of it may land
      if (m->header.type != XS_WRITE) {
        ADD_FAILURE() << "WRITE in transaction refused: " << Render(*m);
        return;
      }
      batch[key] = value;
    }
    ledger.in_flight = batch;
    auto end = c->Call(XS_TRANSACTION_END, tx, Z("T"), nullptr, 3000);
    if (!end) return;
    if (end->header.type == XS_ERROR && end->payload == Z("EAGAIN")) {
      // Another writer created its own /crash/t<id> meanwhile, changing /crash, which this
      // transaction's first commit depends on (Xen's model): retry, as libxenstore users do.
      ledger.in_flight.clear();
      continue;
    }
    if (end->header.type != XS_TRANSACTION_END) {
      ADD_FAILURE() << "commit refused: " << Render(*end);
      return;
    }
    for (auto& [k, v] : batch) ledger.acked[k] = v;
    ledger.in_flight.clear();
    ledger.acked_writes += kTxKeys;
  }
}

// Checks `ledger` against the restarted daemon; returns the problems found.
std::string Verify(RawConn& c, const Ledger& ledger, bool transactional) {
  std::string problems;
  std::map<std::string, std::string> seen;
  for (const auto& [key, value] : ledger.acked) {
    auto m = c.Call(XS_READ, 0, Z(key));
    if (!m) return fmt::format("READ {}: {}\n", key, std::strerror(m.error().code));
    seen[key] = m->header.type == XS_READ ? m->payload : "<" + Render(*m) + ">";
  }
  for (const auto& [key, value] : ledger.in_flight) {
    if (seen.contains(key)) continue;
    auto m = c.Call(XS_READ, 0, Z(key));
    if (!m) return fmt::format("READ {}: {}\n", key, std::strerror(m.error().code));
    seen[key] = m->header.type == XS_READ ? m->payload : "<absent>";
  }
  int landed = 0;  // keys of the in-flight request that hold its value
  int wrong = 0;
  for (const auto& [key, value] : ledger.in_flight) landed += seen[key] == value;
  for (const auto& [key, got] : seen) {
    auto acked = ledger.acked.find(key);
    auto flying = ledger.in_flight.find(key);
    const bool ok = (acked != ledger.acked.end() && got == acked->second) ||
                    (flying != ledger.in_flight.end() && got == flying->second) ||
                    (acked == ledger.acked.end() && got == "<absent>");
    if (!ok && ++wrong <= 10) {
      problems += fmt::format("  {}: got \"{}\", acknowledged \"{}\"{}\n", key, Escape(got),
                              acked == ledger.acked.end() ? "(none)" : acked->second,
                              flying == ledger.in_flight.end()
                                  ? ""
                                  : fmt::format(", in flight \"{}\"", flying->second));
    }
  }
  if (wrong > 10) problems += fmt::format("  ... {} keys wrong in all\n", wrong);
  if (transactional && landed != 0 && landed != static_cast<int>(ledger.in_flight.size())) {
    problems += fmt::format("  the transaction in flight landed partly ({} of {} keys)\n", landed,
                            ledger.in_flight.size());
  }
  return problems;
}

TEST(CrashRecovery, KillDashNineLosesNoAcknowledgedWrite) {
  if (std::string why = Unavailable(Impl::kXpv); !why.empty()) FAIL() << why;
  const char* env_seed = std::getenv("XPV_CRASH_SEED");
  const uint64_t seed =
      env_seed && *env_seed
          ? std::strtoull(env_seed, nullptr, 10)
          : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  SCOPED_TRACE(fmt::format("XPV_CRASH_SEED={}", seed));

  TempDir tmp("xscrash");
  const std::string state = tmp.Sub("state");
  const std::vector<std::string> args = {"--state-dir", state};
  Ledger ledgers[4];  // writers 0, 1 plain; 2, 3 transactional; kept across rounds
  uint64_t total_acked = 0;

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    auto d = Daemon::Start(Impl::kXpv, tmp.path(), args);
    ASSERT_TRUE(d) << "xpv-xenstored did not (re)start on its state dir";
    {  // Everything acknowledged in earlier rounds survived the previous kill.
      auto c = RawConn::Connect(d->socket());
      ASSERT_TRUE(c);
      for (int w = 0; w < 4; ++w) {
        const std::string problems = Verify(*c, ledgers[w], w >= 2);
        EXPECT_EQ(problems, "") << "writer " << w << " after restart:\n" << problems;
        // What landed of the in-flight request is now simply the state; forget the alternative.
        for (const auto& [key, value] : ledgers[w].in_flight) {
          auto m = c->Call(XS_READ, 0, Z(key));
          if (m && m->header.type == XS_READ && m->payload == value) ledgers[w].acked[key] = value;
        }
        ledgers[w].in_flight.clear();
      }
    }
    if (round == kRounds - 1) break;  // the last round only checks

    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        if (w < 2) {
          PlainWriter(d->socket(), w, round, stop, ledgers[w]);
        } else {
          TxWriter(d->socket(), w, round, stop, ledgers[w]);
        }
      });
    }
    const int delay_ms = 150 + static_cast<int>(rng() % 600);
    std::this_thread::sleep_for(milliseconds(delay_ms));
    ASSERT_TRUE(d->Kill(SIGKILL)) << "daemon did not die";
    stop = true;
    for (auto& t : writers) t.join();
    uint64_t acked = 0;
    for (const auto& l : ledgers) acked += l.acked_writes;
    std::printf("round %d: SIGKILL after %d ms, %llu writes acknowledged so far\n", round, delay_ms,
                static_cast<unsigned long long>(acked));
    total_acked = acked;
  }
  EXPECT_GT(total_acked, 100u) << "too few writes to prove anything";
}

// A clean stop (SIGTERM) and restart keeps the store, including permissions and empty values.
TEST(CrashRecovery, CleanRestartKeepsStore) {
  if (std::string why = Unavailable(Impl::kXpv); !why.empty()) FAIL() << why;
  TempDir tmp("xsrestart");
  const std::vector<std::string> args = {"--state-dir", tmp.Sub("state")};
  const std::vector<std::pair<uint32_t, std::string>> setup = {
      {XS_WRITE, Z("/keep/a") + "1"},
      {XS_WRITE, Z("/keep/b") + ""},
      {XS_MKDIR, Z("/keep/c/d")},
      {XS_WRITE, Z("/keep/bin") + std::string("\0\x01\xff", 3)},
      {XS_SET_PERMS, Strings({"/keep/a", "b3", "r0", "w5"})},
      {XS_WRITE, Z("/gone") + "x"},
      {XS_RM, Z("/gone")},
  };
  const std::vector<std::pair<uint32_t, std::string>> probes = {
      {XS_READ, Z("/keep/a")},        {XS_READ, Z("/keep/b")},      {XS_READ, Z("/keep/bin")},
      {XS_DIRECTORY, Z("/keep")},     {XS_DIRECTORY, Z("/keep/c")}, {XS_GET_PERMS, Z("/keep/a")},
      {XS_GET_PERMS, Z("/keep/c/d")}, {XS_READ, Z("/gone")}};
  std::vector<std::string> before;
  {
    auto d = Daemon::Start(Impl::kXpv, tmp.path(), args);
    ASSERT_TRUE(d);
    auto c = RawConn::Connect(d->socket());
    ASSERT_TRUE(c);
    for (const auto& [type, payload] : setup) {
      auto m = c->Call(type, 0, payload);
      ASSERT_TRUE(m && m->header.type == type) << (m ? Render(*m) : "no reply");
    }
    for (const auto& [type, payload] : probes) {
      auto m = c->Call(type, 0, payload);
      ASSERT_TRUE(m);
      m->header.req_id = 0;
      before.push_back(Render(*m));
    }
    ASSERT_TRUE(d->Kill(SIGTERM));
  }
  auto d = Daemon::Start(Impl::kXpv, tmp.path(), args);
  ASSERT_TRUE(d);
  auto c = RawConn::Connect(d->socket());
  ASSERT_TRUE(c);
  for (size_t i = 0; i < probes.size(); ++i) {
    auto m = c->Call(probes[i].first, 0, probes[i].second);
    ASSERT_TRUE(m);
    m->header.req_id = 0;
    EXPECT_EQ(Render(*m), before[i]);
  }
}

}  // namespace
}  // namespace xpv::xenstore::interop
