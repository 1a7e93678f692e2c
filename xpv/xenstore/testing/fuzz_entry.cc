#include "xpv/xenstore/testing/fuzz_entry.h"

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xpv/base/check.h"
#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/path.h"
#include "xpv/xenstore/perms.h"
#include "xpv/xenstore/testing/fake_sink.h"
#include "xpv/xenstore/wire.h"

namespace xpv::xenstore::testing {

namespace {

std::string_view AsChars(std::span<const uint8_t> data) {
  // SAFETY: uint8_t and char have the same size and alignment; the bytes are only read.
  return std::string_view(reinterpret_cast<const char*>(data.data()), data.size());
}

void CheckStrings(std::string_view payload) {
  const auto parts = SplitStrings(payload);
  size_t used = 0;
  for (std::string_view p : parts) {
    XPV_CHECK(p.find('\0') == std::string_view::npos);
    used += p.size() + 1;
  }
  XPV_CHECK(used <= payload.size());
  // Only a tail without a nul is left over.
  XPV_CHECK(payload.substr(used).find('\0') == std::string_view::npos);

  std::string_view one;
  if (OneArg(payload, &one)) {
    XPV_CHECK(parts.size() == 1 && parts[0] == one && used == payload.size());
  }

  if (auto perms = ParsePerms(parts)) {
    const std::string text = FormatPerms(*perms);
    auto again = ParsePerms(SplitStrings(text));
    XPV_CHECK(again.has_value() && *again == *perms);
  }

  for (std::string_view p : parts) {
    (void)XenAtoi(p);
    (void)ErrorString(ErrnoFromString(p));
    for (Special special : {Special::kReject, Special::kAllow}) {
      auto path = Canonicalize(DomId(5), p, special, kDefaultPathMax);
      if (!path) continue;
      XPV_CHECK(!path->empty() && ((*path)[0] == '/' || (*path)[0] == '@'));
      if (special == Special::kReject) XPV_CHECK(!IsSpecial(*path));
      // Canonical paths are fixed points, whoever asks.
      auto again = Canonicalize(DomId(9), *path, Special::kAllow, kDefaultPathMax);
      XPV_CHECK(again.has_value() && *again == *path);
      if ((*path)[0] == '/') {
        XPV_CHECK(path->find("//") == std::string::npos);
        XPV_CHECK(*path == "/" || path->back() != '/');
        XPV_CHECK(IsSelfOrDescendant(*path, ParentPath(*path)));
      }
    }
  }
}

}  // namespace

void WireFuzzOneInput(std::span<const uint8_t> data) {
  if (data.empty()) return;
  const size_t chunk = 1 + data[0] % 64;
  std::string_view stream = AsChars(data.subspan(1));
  StreamDecoder decoder;
  size_t messages = 0;
  while (!stream.empty()) {
    const size_t n = std::min(chunk, stream.size());
    auto used = decoder.Feed(stream.substr(0, n));
    if (!used) {
      XPV_CHECK(used.error().code == E2BIG);
      return;  // a transport drops the connection
    }
    XPV_CHECK(*used <= n);
    // A decoder holding a whole message takes no more bytes until it is taken.
    XPV_CHECK(*used > 0 || decoder.HasMessage());
    stream.remove_prefix(*used);
    if (!decoder.HasMessage()) continue;
    Message m = decoder.TakeMessage();
    ++messages;
    XPV_CHECK(m.header.len == m.payload.size() && m.payload.size() <= kPayloadMax);
    XPV_CHECK(!MsgTypeName(m.header.type).empty());

    // Encoding what was decoded gives the same message back.
    std::string wire;
    AppendMessage(wire, m.type(), m.header.req_id, m.header.tx_id, m.payload);
    StreamDecoder again;
    auto all = again.Feed(wire);
    XPV_CHECK(all.has_value() && *all == wire.size() && again.HasMessage());
    Message m2 = again.TakeMessage();
    XPV_CHECK(m2.header.type == m.header.type && m2.header.req_id == m.header.req_id &&
              m2.header.tx_id == m.header.tx_id && m2.payload == m.payload);

    CheckStrings(m.payload);
  }
  (void)messages;
}

// ---------------------------------------------------------------------------------------------

std::string EncodeEngineFuzzRequest(uint8_t conn, uint32_t type, uint32_t tx_id,
                                    std::string_view payload) {
  payload = payload.substr(0, kPayloadMax);
  std::string out;
  out += static_cast<char>(conn);
  out += static_cast<char>(type & 0xFF);
  out += static_cast<char>(tx_id & 0xFF);
  out += static_cast<char>(payload.size() & 0xFF);
  out += static_cast<char>(payload.size() >> 8);
  out += payload;
  return out;
}

namespace {

struct ShadowNode {
  std::string value;
  std::string perms;
  friend bool operator==(const ShadowNode&, const ShadowNode&) = default;
};
using Shadow = std::map<std::string, ShadowNode>;

Shadow Snapshot(const Engine& engine) {
  Shadow out;
  engine.ForEachNode([&](std::string_view path, const Node& n) {
    out[std::string(path)] = {n.value(), FormatPerms(*n.perms())};
  });
  return out;
}

void CheckReply(const RecordedReply& r, uint32_t type, uint32_t tx_id) {
  // Xen's send_reply(): nothing larger than XENSTORE_PAYLOAD_MAX goes out.
  XPV_CHECK(r.payload.size() <= kPayloadMax);
  XPV_CHECK(r.tx_id == tx_id);
  if (r.type == MsgType::kError) {
    XPV_CHECK(!r.payload.empty() && r.payload.back() == '\0');
    const std::string_view name(r.payload.data(), r.payload.size() - 1);
    XPV_CHECK(ErrorString(ErrnoFromString(name)) == name);
    return;
  }
  XPV_CHECK(static_cast<uint32_t>(r.type) == type);
}

}  // namespace

void EngineFuzzOneInput(std::span<const uint8_t> data) {
  Engine engine;
  FakeClient dom0(engine, kDom0, Privilege::kPrivileged);
  IntroduceWithHome(dom0, DomId(5));
  IntroduceWithHome(dom0, DomId(6));

  // The journal's view: replaying the mutation stream must rebuild the tree.
  Shadow shadow = Snapshot(engine);
  engine.set_mutation_listener([&](const Mutation& m) {
    const std::string path(m.path);
    if (m.kind == Mutation::Kind::kSet) {
      XPV_CHECK(m.node != nullptr);
      XPV_CHECK(path == "/" || shadow.contains(std::string(ParentPath(path))));
      shadow[path] = {m.node->value(), FormatPerms(*m.node->perms())};
      return;
    }
    XPV_CHECK(path != "/" && shadow.contains(path));
    std::erase_if(shadow, [&](const auto& kv) { return IsSelfOrDescendant(kv.first, path); });
  });

  FakeClient tools(engine, kDom0, Privilege::kPrivileged);
  FakeClient dom5(engine, DomId(5), Privilege::kUnprivileged);
  FakeClient dom6(engine, DomId(6), Privilege::kUnprivileged);
  engine.AttachDomainConn(DomId(5), &dom5.conn());
  engine.AttachDomainConn(DomId(6), &dom6.conn());
  const std::array<FakeClient*, 4> clients = {&dom0, &tools, &dom5, &dom6};

  std::string_view script = AsChars(data);
  while (script.size() >= 5) {
    FakeClient& c = *clients[static_cast<uint8_t>(script[0]) % clients.size()];
    const uint32_t type = static_cast<uint8_t>(script[1]);
    const uint32_t tx_id = static_cast<uint8_t>(script[2]);
    const size_t len =
        std::min<size_t>(static_cast<uint8_t>(script[3]) |
                             (static_cast<size_t>(static_cast<uint8_t>(script[4])) << 8),
                         kPayloadMax);
    script.remove_prefix(5);
    const std::string_view payload = script.substr(0, len);
    script.remove_prefix(payload.size());

    CheckReply(c.SendRaw(type, payload, tx_id), type, tx_id);
    for (FakeClient* x : clients) x->ClearRecorded();
  }

  // The tree agrees with itself and with the mutation stream.
  size_t nodes = 0;
  engine.ForEachNode([&](std::string_view, const Node&) { ++nodes; });
  XPV_CHECK(nodes == engine.tree().node_count());
  XPV_CHECK(Snapshot(engine) == shadow);

  // Quota accounting matches ownership, whatever was introduced, released or re-introduced.
  for (uint32_t id = 1; id < 10; ++id) {
    const DomId d(id);
    if (!engine.IsIntroduced(d)) continue;
    long long owned = 0;
    engine.ForEachNode([&](std::string_view, const Node& n) { owned += n.owner() == d; });
    XPV_CHECK(QuotaRow(dom0, d, "nodes") == owned);
  }
  engine.set_mutation_listener(nullptr);
}

}  // namespace xpv::xenstore::testing
