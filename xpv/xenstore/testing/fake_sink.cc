#include "xpv/xenstore/testing/fake_sink.h"

#include <fmt/format.h>

#include "xpv/base/check.h"

namespace xpv::xenstore::testing {

void FakeSink::Reply(MsgType type, uint32_t req_id, uint32_t tx_id, std::string_view payload) {
  replies.push_back({type, req_id, tx_id, std::string(payload), next_seq_++});
}

bool FakeSink::Event(std::string_view payload) {
  if (events.size() >= event_capacity) {
    ++events_refused;
    return false;
  }
  raw_events.emplace_back(payload);
  // xenstore.txt: WATCH_EVENT <epath>|<token>|
  auto parts = SplitStrings(payload);
  XPV_CHECK(parts.size() == 2 && payload.back() == '\0');
  events.push_back({std::string(parts[0]), std::string(parts[1]), next_seq_++});
  return true;
}

std::string Strings(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) {
    out += p;
    out += '\0';
  }
  return out;
}

FakeClient::FakeClient(Engine& engine, DomId domid, Privilege privilege)
    : engine_(engine), conn_(engine, sink_, domid, privilege) {}

RecordedReply FakeClient::SendRaw(uint32_t type, std::string_view payload, uint32_t tx_id) {
  Message msg;
  msg.header = Header{type, next_req_id_++, tx_id, static_cast<uint32_t>(payload.size())};
  msg.payload = std::string(payload);
  const size_t before = sink_.replies.size();
  engine_.Handle(conn_, msg);
  XPV_CHECK(sink_.replies.size() == before + 1);
  const RecordedReply& r = sink_.replies.back();
  XPV_CHECK(r.req_id == msg.header.req_id);
  return r;
}

RecordedReply FakeClient::Send(MsgType type, std::string_view payload, uint32_t tx_id) {
  return SendRaw(static_cast<uint32_t>(type), payload, tx_id);
}

Result<std::string> FakeClient::Call(MsgType type, std::string_view payload, uint32_t tx_id) {
  RecordedReply r = Send(type, payload, tx_id);
  if (r.type == MsgType::kError) {
    // xenstore.txt: an error reply is the errno name, nul-terminated.
    XPV_CHECK(!r.payload.empty() && r.payload.back() == '\0');
    return Err(ErrnoFromString(std::string_view(r.payload).substr(0, r.payload.size() - 1)));
  }
  XPV_CHECK(r.type == type);
  return std::move(r.payload);
}

namespace {
// Every request that only acknowledges answers "OK\0".
Status ExpectAck(Result<std::string> r) {
  if (!r) return r.error();
  XPV_CHECK(*r == std::string_view("OK\0", 3));
  return Ok();
}
}  // namespace

Result<std::string> FakeClient::Read(std::string_view path, uint32_t tx) {
  return Call(MsgType::kRead, Strings({path}), tx);
}

Status FakeClient::Write(std::string_view path, std::string_view value, uint32_t tx) {
  std::string payload(path);
  payload += '\0';
  payload += value;  // xenstore.txt: WRITE <path>|<value|>, the value not nul-terminated
  return ExpectAck(Call(MsgType::kWrite, payload, tx));
}

Status FakeClient::Mkdir(std::string_view path, uint32_t tx) {
  return ExpectAck(Call(MsgType::kMkdir, Strings({path}), tx));
}

Status FakeClient::Rm(std::string_view path, uint32_t tx) {
  return ExpectAck(Call(MsgType::kRm, Strings({path}), tx));
}

Result<std::vector<std::string>> FakeClient::Directory(std::string_view path, uint32_t tx) {
  XPV_ASSIGN_OR_RETURN(std::string payload, Call(MsgType::kDirectory, Strings({path}), tx));
  // Every name is nul-terminated: no trailing partial string.
  XPV_CHECK(payload.empty() || payload.back() == '\0');
  std::vector<std::string> out;
  for (std::string_view s : SplitStrings(payload)) out.emplace_back(s);
  return out;
}

Result<std::string> FakeClient::GetPerms(std::string_view path, uint32_t tx) {
  return Call(MsgType::kGetPerms, Strings({path}), tx);
}

Status FakeClient::SetPerms(std::string_view path, std::initializer_list<std::string_view> perms,
                            uint32_t tx) {
  std::string payload = Strings({path});
  for (std::string_view p : perms) {
    payload += p;
    payload += '\0';
  }
  return ExpectAck(Call(MsgType::kSetPerms, payload, tx));
}

Status FakeClient::Watch(std::string_view path, std::string_view token) {
  return ExpectAck(Call(MsgType::kWatch, Strings({path, token})));
}

Status FakeClient::WatchDepth(std::string_view path, std::string_view token,
                              std::string_view depth) {
  return ExpectAck(Call(MsgType::kWatch, Strings({path, token, depth})));
}

Status FakeClient::Unwatch(std::string_view path, std::string_view token) {
  return ExpectAck(Call(MsgType::kUnwatch, Strings({path, token})));
}

Result<uint32_t> FakeClient::TxStart() {
  XPV_ASSIGN_OR_RETURN(std::string id, Call(MsgType::kTransactionStart, Strings({""})));
  XPV_CHECK(!id.empty() && id.back() == '\0');
  return static_cast<uint32_t>(std::stoul(id));
}

Status FakeClient::TxEnd(uint32_t tx, bool commit) {
  return ExpectAck(Call(MsgType::kTransactionEnd, Strings({commit ? "T" : "F"}), tx));
}

Result<std::string> FakeClient::Control(std::initializer_list<std::string_view> args) {
  return Call(MsgType::kControl, Strings(args));
}

std::vector<RecordedEvent> FakeClient::TakeEvents() {
  std::vector<RecordedEvent> out(sink_.events.begin() + static_cast<ptrdiff_t>(events_taken_),
                                 sink_.events.end());
  events_taken_ = sink_.events.size();
  return out;
}

void FakeClient::ClearRecorded() {
  sink_.replies.clear();
  sink_.events.clear();
  sink_.raw_events.clear();
  events_taken_ = 0;
}

long long QuotaRow(FakeClient& dom0, DomId domid, std::string_view name) {
  auto r = dom0.Call(MsgType::kControl, Strings({"quota", fmt::format("{}", domid.value)}));
  if (!r) return -1;
  for (std::string_view rest = *r; !rest.empty();) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    if (key != name) continue;
    return std::stoll(std::string(line.substr(colon + 1)));
  }
  return -1;
}

void IntroduceWithHome(FakeClient& dom0, DomId domid) {
  const std::string id = fmt::format("{}", domid.value);
  // xenstore.txt: INTRODUCE <domid>|<gfn>|<evtchn>|
  XPV_CHECK(dom0.Call(MsgType::kIntroduce, Strings({id, "4096", "7"})).has_value());
  const std::string home = DomainPath(domid.value);
  XPV_CHECK(dom0.Mkdir(home).has_value());
  XPV_CHECK(dom0.SetPerms(home, {"n" + id}).has_value());
}

World::World() {
  IntroduceWithHome(dom0, DomId(5));
  IntroduceWithHome(dom0, DomId(6));
  dom5 = std::make_unique<FakeClient>(engine, DomId(5), Privilege::kUnprivileged);
  dom6 = std::make_unique<FakeClient>(engine, DomId(6), Privilege::kUnprivileged);
  engine.AttachDomainConn(DomId(5), &dom5->conn());
  engine.AttachDomainConn(DomId(6), &dom6->conn());
  dom0.TakeEvents();
}

}  // namespace xpv::xenstore::testing
