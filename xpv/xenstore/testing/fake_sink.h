// Test-only fakes for driving the engine in-process: a Sink that records what a connection was
// sent, and a FakeClient (a Sink plus a Conn) with one call per xs_wire.h request, so tests read
// like the protocol. Nothing here is linked into the daemon.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/types.h"
#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/wire.h"

namespace xpv::xenstore::testing {

struct RecordedReply {
  MsgType type;
  uint32_t req_id;
  uint32_t tx_id;
  std::string payload;
  uint64_t seq;  // position among everything this sink received
};

struct RecordedEvent {
  std::string path;
  std::string token;
  uint64_t seq;
  friend bool operator==(const RecordedEvent& a, const RecordedEvent& b) {
    return a.path == b.path && a.token == b.token;
  }
};

// Records replies and watch events in arrival order. `event_capacity` bounds the events it accepts
// (as a transport with a full event queue would); later events are refused and Event returns false.
class FakeSink final : public Sink {
 public:
  void Reply(MsgType type, uint32_t req_id, uint32_t tx_id, std::string_view payload) override;
  bool Event(std::string_view payload) override;

  std::vector<RecordedReply> replies;
  std::vector<RecordedEvent> events;
  // Raw event payloads exactly as the engine queued them ("path\0token\0").
  std::vector<std::string> raw_events;
  size_t event_capacity = SIZE_MAX;
  size_t events_refused = 0;

 private:
  uint64_t next_seq_ = 0;
};

// "a\0b\0": nul-terminated strings, the shape of most request payloads.
std::string Strings(std::initializer_list<std::string_view> parts);

// "OK" for a value, else the xenstore error name ("EACCES"): readable gtest failures.
template <typename T>
std::string Outcome(const Result<T>& r) {
  return r ? std::string("OK") : std::string(ErrorString(r.error().code));
}

// One client connection of the engine with its own recording sink.
class FakeClient {
 public:
  FakeClient(Engine& engine, DomId domid, Privilege privilege);
  FakeClient(const FakeClient&) = delete;
  FakeClient& operator=(const FakeClient&) = delete;

  // Sends one request and returns its reply; the engine must answer every request exactly once.
  RecordedReply Send(MsgType type, std::string_view payload, uint32_t tx_id = 0);
  // Like Send, with a header type that need not be a MsgType (unknown and reserved types).
  RecordedReply SendRaw(uint32_t type, std::string_view payload, uint32_t tx_id = 0);
  // The reply payload, or the Error an XS_ERROR reply names.
  Result<std::string> Call(MsgType type, std::string_view payload, uint32_t tx_id = 0);

  Result<std::string> Read(std::string_view path, uint32_t tx = 0);
  Status Write(std::string_view path, std::string_view value, uint32_t tx = 0);
  Status Mkdir(std::string_view path, uint32_t tx = 0);
  Status Rm(std::string_view path, uint32_t tx = 0);
  Result<std::vector<std::string>> Directory(std::string_view path, uint32_t tx = 0);
  Result<std::string> GetPerms(std::string_view path, uint32_t tx = 0);
  Status SetPerms(std::string_view path, std::initializer_list<std::string_view> perms,
                  uint32_t tx = 0);
  Status Watch(std::string_view path, std::string_view token);
  Status WatchDepth(std::string_view path, std::string_view token, std::string_view depth);
  Status Unwatch(std::string_view path, std::string_view token);
  Result<uint32_t> TxStart();
  Status TxEnd(uint32_t tx, bool commit);
  // CONTROL <args>: the reply payload ("OK\0" for most commands) or the error.
  Result<std::string> Control(std::initializer_list<std::string_view> args);

  // Events received since the last call, oldest first.
  std::vector<RecordedEvent> TakeEvents();
  // Forgets everything recorded so far (long scripts keep memory flat).
  void ClearRecorded();

  Conn& conn() { return conn_; }
  FakeSink& sink() { return sink_; }
  DomId domid() const { return conn_.domid(); }

 private:
  Engine& engine_;
  FakeSink sink_;  // before conn_: the Conn keeps a reference to it
  Conn conn_;
  uint32_t next_req_id_ = 1;
  size_t events_taken_ = 0;
};

// The value of row `name` ("nodes", "watches", ...) in CONTROL "quota <domid>"'s report, which has
// one "<name> : <value>" line per row; -1 when the request fails or the row is missing.
long long QuotaRow(FakeClient& dom0, DomId domid, std::string_view name);

// What a toolstack does for a new guest, through dom0's connection: INTRODUCE `domid` (no
// DomainHooks needed) and create its home /local/domain/<domid> owned by it ("n<domid>").
void IntroduceWithHome(FakeClient& dom0, DomId domid);

// A client for each of dom0 (privileged) and domains 5 and 6 (unprivileged, introduced, homes
// made).
struct World {
  Engine engine;
  FakeClient dom0{engine, kDom0, Privilege::kPrivileged};
  std::unique_ptr<FakeClient> dom5;
  std::unique_ptr<FakeClient> dom6;
  World();
};

}  // namespace xpv::xenstore::testing
