#include "xpv/xenstore/engine.h"

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "xpv/xenstore/path.h"
#include "xpv/xenstore/transaction.h"

namespace xpv::xenstore {

namespace {

constexpr std::string_view kIntroduceDomain = "@introduceDomain";
constexpr std::string_view kReleaseDomain = "@releaseDomain";
// Features this daemon offers on domain rings (xs_wire.h).
constexpr uint32_t kServerFeatures = XENSTORE_SERVER_FEATURE_RECONNECTION |
                                     XENSTORE_SERVER_FEATURE_ERROR |
                                     abi::XENSTORE_SERVER_FEATURE_WATCHDEPTH;

std::string Ack() {
  return std::string("OK", 3);
}

std::string WithNul(std::string_view s) {
  std::string out(s);
  out += '\0';
  return out;
}

bool ParseU32(std::string_view s, uint32_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

// Nodes with the read permission of neither list are hidden from a watcher.
bool CanSee(const Caller& caller, const PermsRef& a, const PermsRef& b) {
  if (caller.privileged) return true;
  if (a && (PermFor(caller, *a) & kPermRead)) return true;
  if (b && (PermFor(caller, *b) & kPermRead)) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Accessors: the committed tree as a request sees it, directly or through a transaction.

struct Engine::NodeView {
  bool exists = false;
  std::string_view value;
  PermsRef perms;
  uint64_t gen = 0;
};

class Engine::Accessor {
 public:
  virtual ~Accessor() = default;
  virtual NodeView Get(const std::string& path) = 0;
  virtual void ListChildren(const std::string& path, std::string& out) = 0;
  // The size of the node's child list, for quotas: not a read the transaction depends on.
  virtual size_t ChildrenBytes(const std::string& path) = 0;
  // Creates `path` and any missing parents (inheriting permissions); the node must not exist.
  virtual void Create(const Caller& caller, const std::string& path, std::string value) = 0;
  virtual void SetValue(const std::string& path, std::string value) = 0;
  virtual void SetPerms(const std::string& path, PermsRef perms) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Nodes owned by `domid` after this view's changes.
  virtual int64_t OwnedBy(DomId domid) = 0;
  // Distinct nodes this view has touched (transaction-nodes quota); 0 outside transactions.
  virtual size_t Touched() const { return 0; }

  // How many nodes creating `path` adds: the node and each missing ancestor. Xen charges each
  // against the nodes quota, so one deep WRITE cannot overshoot it.
  int64_t NodesToCreate(const std::string& path) {
    int64_t n = 1;
    for (std::string p(ParentPath(path)); p != "/" && !Get(p).exists;
         p = std::string(ParentPath(p))) {
      ++n;
    }
    return n;
  }

  // The nearest existing strict ancestor of `path` (at least "/").
  NodeView Nearest(const std::string& path) {
    std::string p(ParentPath(path));
    while (true) {
      NodeView v = Get(p);
      if (v.exists || p == "/") return v;
      p = std::string(ParentPath(p));
    }
  }
};

class Engine::DirectAccessor final : public Engine::Accessor {
 public:
  DirectAccessor(Engine& engine, std::vector<Change>& changes) : e_(engine), changes_(changes) {}

  NodeView Get(const std::string& path) override {
    const Node* n = e_.tree_.Find(path);
    if (!n) return {};
    return {true, n->value(), n->perms(), n->gen()};
  }
  void ListChildren(const std::string& path, std::string& out) override {
    if (const Node* n = e_.tree_.Find(path)) n->AppendChildrenTo(out);
  }
  size_t ChildrenBytes(const std::string& path) override {
    const Node* n = e_.tree_.Find(path);
    return n ? n->ChildrenBytes() : 0;
  }
  void Create(const Caller& caller, const std::string& path, std::string value) override {
    Node* n = e_.CreatePath(caller, path, std::move(value));
    changes_.push_back({path, false, n->perms(), nullptr});
  }
  void SetValue(const std::string& path, std::string value) override {
    Node* n = e_.tree_.Find(path);
    e_.SetNodeValue(n, path, std::move(value));
    changes_.push_back({path, false, n->perms(), nullptr});
  }
  void SetPerms(const std::string& path, PermsRef perms) override {
    Node* n = e_.tree_.Find(path);
    PermsRef old = n->perms();
    e_.SetNodePerms(n, path, std::move(perms));
    changes_.push_back({path, false, std::move(old), n->perms()});
  }
  Status Remove(const std::string& path) override {
    e_.RemovePath(e_.tree_.Find(path), path, &changes_);
    return Ok();
  }
  int64_t OwnedBy(DomId domid) override { return e_.DomainFor(domid).nodes; }

 private:
  Engine& e_;
  std::vector<Change>& changes_;
};

// Xen 4.17's model: a transaction's first access to a node copies it (value, permissions,
// children) and remembers the committed node's generations; later accesses see that copy, changed
// as the transaction changes it. Nodes it never touched are read live. Commit succeeds only if
// every node it touched is still as it first saw it.
class Engine::TxAccessor final : public Engine::Accessor {
 public:
  TxAccessor(Engine& engine, Transaction& tx) : e_(engine), tx_(tx) {}

  NodeView Get(const std::string& path) override {
    const Transaction::TxNode& t = Access(path);
    if (!t.exists) return {};
    return {true, t.value, t.perms, t.base_gen};
  }

  void ListChildren(const std::string& path, std::string& out) override {
    for (const auto& c : Access(path).children) {
      out += c;
      out += '\0';
    }
  }

  size_t ChildrenBytes(const std::string& path) override {
    size_t n = 0;
    for (const auto& c : Access(path).children) n += c.size() + 1;
    return n;
  }

  void Create(const Caller& caller, const std::string& path, std::string value) override {
    // Find the nearest existing ancestor, then create each missing level below it.
    std::vector<std::string> missing{path};
    std::string p(ParentPath(path));
    while (p != "/" && !Get(p).exists) {
      missing.push_back(p);
      p = std::string(ParentPath(p));
    }
    PermsRef perms = Access(p).perms;
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      perms = e_.InheritedPerms(caller, perms);
      Access(std::string(ParentPath(*it))).children.emplace_back(BaseName(*it));
      Transaction::TxNode& t = Access(*it);
      t.exists = true;
      t.perms = perms;
      t.children.clear();
      t.value = it + 1 == missing.rend() ? std::move(value) : std::string();
      if ((*perms)[0].domid == caller.domid) ++tx_.node_delta_;
    }
    tx_.ops_.push_back({Transaction::OpKind::kWrite, path, Access(path).value, nullptr});
  }

  void SetValue(const std::string& path, std::string value) override {
    Transaction::TxNode& t = Access(path);
    t.value = std::move(value);
    tx_.ops_.push_back({Transaction::OpKind::kWrite, path, t.value, nullptr});
  }

  void SetPerms(const std::string& path, PermsRef perms) override {
    Transaction::TxNode& t = Access(path);
    t.perms = perms;
    tx_.ops_.push_back({Transaction::OpKind::kSetPerms, path, {}, std::move(perms)});
  }

  Status Remove(const std::string& path) override {
    // Xen deletes the subtree node by node, children first, inside the transaction, so every node
    // removed is one the commit depends on: a concurrent change below is a conflict, never a lost
    // update. The transaction's copies can be inconsistent when other connections changed the
    // tree after it copied a parent; then, like Xen 4.17, the removal stops with EIO where it
    // found the inconsistency (a listed child that is gone, or a node its parent's copy does not
    // list), with what it had removed so far removed. The commit fails with EAGAIN either way.
    if (!Access(std::string(ParentPath(path))).exists) {
      return Err(EINVAL, "parent gone from the transaction's view");
    }
    struct Frame {
      std::string path;
      size_t next_child = 0;
    };
    std::vector<Frame> stack{{path}};
    while (!stack.empty()) {
      Frame& f = stack.back();
      Transaction::TxNode& t = Access(f.path);
      if (f.next_child < t.children.size()) {
        std::string child = f.path + "/" + t.children[f.next_child++];
        if (!Access(child).exists) return Err(EIO, "transaction's copy lists a vanished child");
        stack.push_back({std::move(child)});
        continue;
      }
      t.exists = false;
      t.children.clear();
      std::string done = std::move(f.path);
      stack.pop_back();
      if (!stack.empty()) continue;  // the parent's list is cleared when the parent goes
      Transaction::TxNode& parent = Access(std::string(ParentPath(done)));
      const std::string name(BaseName(done));
      auto listed = std::find(parent.children.begin(), parent.children.end(), name);
      if (!parent.exists || listed == parent.children.end()) {
        return Err(EIO, "node unknown to the transaction's copy of its parent");
      }
      parent.children.erase(listed);  // the first entry only, as Xen's delete_child()
    }
    tx_.ops_.push_back({Transaction::OpKind::kRm, path, {}, nullptr});
    return Ok();
  }

  int64_t OwnedBy(DomId domid) override {
    return static_cast<int64_t>(e_.DomainFor(domid).nodes) + tx_.node_delta_;
  }
  size_t Touched() const override { return tx_.nodes_.size(); }

 private:
  // The transaction's copy of `path`, made from the committed tree on first access (a node that
  // did not exist stays absent for the transaction, as in Xen 4.17).
  Transaction::TxNode& Access(const std::string& path) {
    auto [it, inserted] = tx_.nodes_.try_emplace(path);
    Transaction::TxNode& t = it->second;
    if (inserted) {
      if (const Node* n = e_.tree_.Find(path)) {
        t.base_exists = t.exists = true;
        t.base_gen = n->gen();
        t.value = n->value();
        t.perms = n->perms();
        t.children.reserve(n->children().size());
        for (const auto& c : n->children()) t.children.emplace_back(c->name());
      }
    }
    return t;
  }

  Engine& e_;
  Transaction& tx_;
};

// ---------------------------------------------------------------------------------------------
// Connections.

Conn::Conn(Engine& engine, Sink& sink, DomId domid, Privilege privilege)
    : engine_(engine), sink_(sink) {
  caller_.domid = domid;
  caller_.privileged = privilege == Privilege::kPrivileged;
  engine_.Register(this);
}

Conn::~Conn() {
  engine_.Unregister(this);
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {
  // Xen's daemon starts with "/", "/tool" and "/tool/xenstored", all "n0".
  Caller dom0{kDom0, true};
  CreatePath(dom0, "/tool/xenstored", "");
  special_.emplace(std::string(kIntroduceDomain), OwnerOnlyPerms(kDom0));
  special_.emplace(std::string(kReleaseDomain), OwnerOnlyPerms(kDom0));
  domains_[kDom0].introduced = true;
}

Engine::~Engine() = default;

void Engine::Register(Conn* conn) {
  conn->seq_ = next_conn_seq_++;
  conns_.push_back(conn);
}

void Engine::Unregister(Conn* conn) {
  std::erase(conns_, conn);
  std::erase(watchers_, conn);
  for (auto& [id, d] : domains_) {
    if (d.conn == conn) d.conn = nullptr;
  }
}

void Engine::AttachDomainConn(DomId domid, Conn* conn) {
  DomainFor(domid).conn = conn;
}

bool Engine::IsIntroduced(DomId domid) const {
  auto it = domains_.find(domid);
  return it != domains_.end() && it->second.introduced;
}

Engine::Domain& Engine::DomainFor(DomId domid) {
  auto [it, inserted] = domains_.try_emplace(domid);
  if (inserted) it->second.quotas = options_.quotas;
  return it->second;
}

bool Engine::DomainExists(DomId domid) const {
  // Without a platform, every domid below DOMID_FIRST_RESERVED may exist, as far as we can tell.
  return hooks_ ? hooks_->Exists(domid) : domid.value < kDomIdFirstReserved;
}

uint32_t Engine::Quota(const Conn& conn, QuotaKind kind) const {
  auto it = domains_.find(conn.domid());
  return it != domains_.end() ? it->second.quotas.get(kind) : options_.quotas.get(kind);
}

// ---------------------------------------------------------------------------------------------
// Committed-tree mutations.

PermsRef Engine::InheritedPerms(const Caller& caller, const PermsRef& parent) {
  // Xen: a new node inherits its parent's permissions; an unprivileged domain owns what it creates.
  if (caller.privileged || (*parent)[0].domid == caller.domid) return parent;
  PermList list = *parent;
  list[0].domid = caller.domid;
  return MakePerms(std::move(list));
}

size_t Engine::NodeBytes(const Node& n) {
  // An estimate of what Xen 4.17 charges a domain for a node: header, permissions, value, name.
  return 24 + 8 * n.perms()->size() + n.value().size() + n.name().size() + 1;
}

void Engine::CountOwner(const Node& n, int sign) {
  Domain& d = DomainFor(n.owner());
  d.nodes = static_cast<uint32_t>(static_cast<int64_t>(d.nodes) + sign);
  d.memory = static_cast<uint64_t>(static_cast<int64_t>(d.memory) +
                                   sign * static_cast<int64_t>(NodeBytes(n)));
}

Node* Engine::CreatePath(const Caller& caller, std::string_view path, std::string value) {
  Node* node = tree_.DeepestExisting(path);
  // The existing prefix of `path` is as long as the names on the chain up from `node`.
  size_t prefix = 0;
  for (const Node* n = node; n != &tree_.root(); n = n->parent()) prefix += n->name().size() + 1;
  std::string built;
  size_t pos = prefix + 1;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    const bool last = end == path.size();
    PermsRef perms = InheritedPerms(caller, node->perms());
    node = tree_.AddChild(node, path.substr(pos, end - pos),
                          last ? std::move(value) : std::string(), std::move(perms));
    built = std::string(path.substr(0, end));
    CountOwner(*node, +1);
    if (listener_) listener_({Mutation::Kind::kSet, built, node});
    pos = end + 1;
  }
  return node;
}

void Engine::SetNodeValue(Node* node, std::string_view path, std::string value) {
  CountOwner(*node, -1);
  tree_.SetValue(node, std::move(value));
  CountOwner(*node, +1);
  if (listener_) listener_({Mutation::Kind::kSet, path, node});
}

void Engine::SetNodePerms(Node* node, std::string_view path, PermsRef perms) {
  CountOwner(*node, -1);
  tree_.SetPerms(node, std::move(perms));
  CountOwner(*node, +1);
  if (listener_) listener_({Mutation::Kind::kSet, path, node});
}

void Engine::RemovePath(Node* node, std::string path, std::vector<Change>* changes) {
  const std::string top = path;
  tree_.Remove(node, path, [&](std::string_view p, const Node& n) {
    CountOwner(n, -1);
    // Xen's delete_node(): descendants fire watches on exactly their path, the top one as usual.
    changes->push_back({std::string(p), p != top, n.perms(), nullptr});
  });
  if (listener_) listener_({Mutation::Kind::kRemove, top, nullptr});
}

void Engine::RestoreNode(std::string_view path, std::string value, PermsRef perms) {
  auto saved = std::move(listener_);
  Node* n = tree_.Find(path);
  if (!n) n = CreatePath(Caller{kDom0, true}, path, std::string());
  SetNodeValue(n, path, std::move(value));
  SetNodePerms(n, path, std::move(perms));
  listener_ = std::move(saved);
}

void Engine::RestoreSpecialPerms(std::string_view name, PermsRef perms) {
  special_[std::string(name)] = std::move(perms);
}

void Engine::ForEachNode(const std::function<void(std::string_view, const Node&)>& fn) const {
  struct Frame {
    const Node* node;
    std::string path;
  };
  std::vector<Frame> stack{{&tree_.root(), "/"}};
  while (!stack.empty()) {
    Frame f = std::move(stack.back());
    stack.pop_back();
    fn(f.path, *f.node);
    const auto& kids = f.node->children();
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) {
      std::string p = f.path == "/" ? "/" : f.path + "/";
      p += (*it)->name();
      stack.push_back({it->get(), std::move(p)});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Watches.

std::string Engine::EventPayload(const Watch& watch, std::string_view path) {
  std::string payload;
  std::string_view shown = path;
  if (watch.strip > 0 && shown.size() >= watch.strip) {
    shown.remove_prefix(watch.strip);
    if (!shown.empty() && shown[0] == '/') shown.remove_prefix(1);
  }
  payload.reserve(shown.size() + watch.token.size() + 2);
  payload += shown;
  payload += '\0';
  payload += watch.token;
  payload += '\0';
  return payload;
}

void Engine::DeliverEvent(Conn& conn, std::string_view payload) {
  // Xen drops an event that would not fit in one message.
  if (payload.size() > kPayloadMax) return;
  if (!conn.sink_.Event(payload)) {
    if (conn.events_dropped_++ == 0) {
      spdlog::warn("domain {}: event queue full, dropping watch events", conn.domid().value);
    }
  }
}

void Engine::Fire(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  std::vector<std::string> sent;  // per connection and change: Xen sends each event once
  for (Conn* conn : watchers_) {
    for (const Change& ch : changes) {
      bool visible_known = false;
      bool visible = false;
      sent.clear();
      for (const Watch& w : conn->watches_) {
        const bool match = ch.exact ? w.path == ch.path : IsSelfOrDescendant(ch.path, w.path);
        if (!match) continue;
        if (w.depth != UINT32_MAX && DepthBelow(ch.path, w.path) > w.depth) continue;
        if (!visible_known) {
          visible = CanSee(conn->caller_, ch.perms, ch.perms2);
          visible_known = true;
        }
        if (!visible) break;
        std::string payload = EventPayload(w, ch.path);
        if (std::find(sent.begin(), sent.end(), payload) != sent.end()) continue;
        DeliverEvent(*conn, payload);
        sent.push_back(std::move(payload));
      }
    }
  }
}

void Engine::FireSpecial(std::string_view name) {
  const PermsRef& perms = special_.find(name)->second;
  for (Conn* conn : watchers_) {
    if (!(PermFor(conn->caller_, *perms) & kPermRead)) continue;
    for (const Watch& w : conn->watches_) {
      if (w.path == name) DeliverEvent(*conn, EventPayload(w, name));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dispatch.

namespace {
// Xen 4.17's wire_funcs[] flags: XS_FLAG_PRIV, and XS_FLAG_NOTID (only WATCH and UNWATCH ignore
// the header's tx_id; every other type with an unknown tx_id gets ENOENT).
enum Flags : uint8_t { kNone = 0, kPriv = 1, kNoTx = 2 };

struct Route {
  uint8_t flags;
  bool known;
};

Route RouteFor(uint32_t type) {
  switch (static_cast<MsgType>(type)) {
    case MsgType::kControl:
      return {kPriv, true};
    case MsgType::kDirectory:
    case MsgType::kDirectoryPart:
    case MsgType::kRead:
    case MsgType::kGetPerms:
    case MsgType::kWrite:
    case MsgType::kMkdir:
    case MsgType::kRm:
    case MsgType::kSetPerms:
    case MsgType::kTransactionStart:
    case MsgType::kTransactionEnd:
      return {kNone, true};
    case MsgType::kGetDomainPath:
    case MsgType::kResetWatches:
    case MsgType::kGetFeature:
      return {kNone, true};
    case MsgType::kWatch:
    case MsgType::kUnwatch:
      return {kNoTx, true};
    case MsgType::kIntroduce:
    case MsgType::kRelease:
    case MsgType::kIsDomainIntroduced:
    case MsgType::kResume:
    case MsgType::kSetTarget:
    case MsgType::kSetFeature:
    case MsgType::kGetQuota:
    case MsgType::kSetQuota:
      return {kPriv, true};
    default:
      return {kNone, false};
  }
}
}  // namespace

void Engine::Handle(Conn& conn, const Message& msg) {
  const Header& h = msg.header;
  const Route route = RouteFor(h.type);
  auto reply_error = [&](int code) {
    conn.sink_.Reply(MsgType::kError, h.req_id, h.tx_id, WithNul(ErrorString(code)));
  };
  if (!route.known) return reply_error(ENOSYS);
  if ((route.flags & kPriv) && !conn.caller_.privileged) return reply_error(EACCES);

  Transaction* tx = nullptr;
  if (!(route.flags & kNoTx) && h.tx_id != 0) {
    auto it = conn.transactions_.find(h.tx_id);
    if (it == conn.transactions_.end()) return reply_error(ENOENT);
    tx = it->second.get();
  }

  pending_.clear();
  MsgType reply_type = msg.type();
  Result<std::string> r = Dispatch(conn, tx, msg, &reply_type);
  if (!r) {
    pending_.clear();
    // Xen: a transaction that hit a quota is failed; its commit answers ENOMEM. TRANSACTION_END
    // has already ended (freed) the transaction, whatever its outcome.
    if (tx && r.error().code == ENOSPC && msg.type() != MsgType::kTransactionEnd) {
      tx->failed_ = true;
    }
    return reply_error(r.error().code);
  }
  // Xen fires watches before it acknowledges the change; WATCH's own first event follows its ack.
  Fire(pending_);
  pending_.clear();
  conn.sink_.Reply(reply_type, h.req_id, h.tx_id, *r);
  if (msg.type() == MsgType::kWatch) {
    const Watch& w = conn.watches_.back();
    DeliverEvent(conn, EventPayload(w, w.path));
  }
}

Result<std::string> Engine::Dispatch(Conn& conn, Transaction* tx, const Message& msg,
                                     MsgType* reply_type) {
  DirectAccessor direct(*this, pending_);
  std::unique_ptr<TxAccessor> txa;
  Accessor* acc = &direct;
  if (tx) {
    txa = std::make_unique<TxAccessor>(*this, *tx);
    acc = txa.get();
  }
  Result<std::string> r = Err(ENOSYS);
  switch (msg.type()) {
    case MsgType::kRead:
      r = DoRead(conn, *acc, msg);
      break;
    case MsgType::kDirectory:
      r = DoDirectory(conn, *acc, msg);
      break;
    case MsgType::kDirectoryPart:
      r = DoDirectoryPart(conn, *acc, msg);
      break;
    case MsgType::kGetPerms:
      r = DoGetPerms(conn, *acc, msg);
      break;
    case MsgType::kWrite:
      r = DoWrite(conn, *acc, msg);
      break;
    case MsgType::kMkdir:
      r = DoMkdir(conn, *acc, msg);
      break;
    case MsgType::kRm:
      r = DoRm(conn, *acc, msg);
      break;
    case MsgType::kSetPerms:
      r = DoSetPerms(conn, *acc, msg);
      break;
    case MsgType::kWatch:
      r = DoWatch(conn, msg);
      break;
    case MsgType::kUnwatch:
      r = DoUnwatch(conn, msg);
      break;
    case MsgType::kTransactionStart:
      r = DoTransactionStart(conn, tx);
      break;
    case MsgType::kTransactionEnd:
      r = DoTransactionEnd(conn, tx, msg);
      break;
    case MsgType::kIntroduce:
      r = DoIntroduce(conn, msg);
      break;
    case MsgType::kRelease:
      r = DoRelease(conn, msg);
      break;
    case MsgType::kResume:
      r = DoResume(conn, msg);
      break;
    case MsgType::kSetTarget:
      r = DoSetTarget(conn, msg);
      break;
    case MsgType::kIsDomainIntroduced:
      r = DoIsDomainIntroduced(conn, msg);
      break;
    case MsgType::kGetDomainPath:
      r = DoGetDomainPath(conn, msg);
      break;
    case MsgType::kResetWatches:
      r = DoResetWatches(conn);
      break;
    case MsgType::kControl:
      r = DoControl(conn, msg);
      break;
    case MsgType::kGetFeature:
      r = DoGetFeature(conn, msg);
      break;
    case MsgType::kSetFeature:
      r = DoSetFeature(conn, msg);
      break;
    case MsgType::kGetQuota:
      r = DoGetQuota(conn, msg);
      break;
    case MsgType::kSetQuota:
      r = DoSetQuota(conn, msg);
      break;
    default:
      break;
  }
  // Not after TRANSACTION_END: the transaction (and what `acc` refers to) is gone.
  if (r && tx && msg.type() != MsgType::kTransactionEnd && !conn.caller_.privileged &&
      acc->Touched() > Quota(conn, QuotaKind::kTransactionNodes)) {
    return Err(ENOSPC, "transaction touches too many nodes");
  }
  (void)reply_type;
  return r;
}

Result<std::string> Engine::Resolve(const Conn& conn, std::string_view raw, Special special) const {
  // Xen clamps path-max to XENSTORE_REL_PATH_MAX.
  const size_t path_max =
      std::min<size_t>(options_.quotas.get(QuotaKind::kPathMax), XENSTORE_REL_PATH_MAX);
  return Canonicalize(conn.domid(), raw, special, path_max);
}

// Xen's get_node(): the node if `caller` has `perm` on it; else EACCES, or ENOENT when the
// nearest existing ancestor grants the caller any of `perm` (so nothing leaks about hidden nodes).
Result<Engine::NodeView> Engine::GetNode(const Caller& caller, Accessor& acc,
                                         const std::string& path, uint8_t perm) {
  NodeView v = acc.Get(path);
  if (v.exists && (PermFor(caller, *v.perms) & perm) == perm) return v;
  const int err = v.exists ? EACCES : ENOENT;
  if (path == "/") return Err(err);
  NodeView parent = acc.Nearest(path);
  if (PermFor(caller, *parent.perms) & perm) return Err(err);
  return Err(EACCES);
}

Result<std::string> Engine::DoRead(Conn& conn, Accessor& acc, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, arg, Special::kReject));
  XPV_ASSIGN_OR_RETURN(NodeView v, GetNode(conn.caller_, acc, path, kPermRead));
  return std::string(v.value);
}

Result<std::string> Engine::DoDirectory(Conn& conn, Accessor& acc, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, arg, Special::kReject));
  XPV_TRY(GetNode(conn.caller_, acc, path, kPermRead));
  std::string out;
  acc.ListChildren(path, out);
  if (out.size() > kPayloadMax) return Err(E2BIG, "directory larger than a message");
  return out;
}

Result<std::string> Engine::DoDirectoryPart(Conn& conn, Accessor& acc, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.size() != 2) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, args[0], Special::kReject));
  XPV_ASSIGN_OR_RETURN(NodeView v, GetNode(conn.caller_, acc, path, kPermRead));
  const uint32_t off = XenAtoi(args[1]);
  std::string children;
  acc.ListChildren(path, children);
  // docs/misc/xenstore.txt: "<gencnt>|<child>|<child>|...|" ending in an empty string; the offset
  // counts bytes of the child list, as Xen's daemon does.
  std::string out = WithNul(fmt::format("{}", v.gen));
  if (off >= children.size()) {
    out += '\0';
    return out;
  }
  const size_t budget = kPayloadMax - out.size() - 1;
  size_t len = 0;
  while (off + len < children.size()) {
    const size_t name_len = children.find('\0', off + len) - (off + len);
    if (len + name_len >= budget) break;
    len += name_len + 1;
  }
  out.append(children, off, len);
  if (off + len == children.size()) out += '\0';  // the whole rest fitted: end marker
  return out;
}

Result<std::string> Engine::DoGetPerms(Conn& conn, Accessor& acc, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, arg, Special::kReject));
  XPV_ASSIGN_OR_RETURN(NodeView v, GetNode(conn.caller_, acc, path, kPermRead));
  return FormatPerms(*v.perms);
}

Result<std::string> Engine::DoWrite(Conn& conn, Accessor& acc, const Message& msg) {
  const size_t nul = msg.payload.find('\0');
  if (nul == std::string::npos) return Err(EINVAL);
  std::string_view raw(msg.payload.data(), nul);
  std::string value = msg.payload.substr(nul + 1);
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, raw, Special::kReject));
  Result<NodeView> v = GetNode(conn.caller_, acc, path, kPermWrite);
  if (!v && v.error().code != ENOENT) return v.error();
  if (!conn.caller_.privileged) {
    // Xen 4.17 charges a node's header, permissions, value and child list against node-size.
    size_t children = 0;
    size_t nperms = 0;
    if (v) {
      children = acc.ChildrenBytes(path);
      nperms = v->perms->size();
    } else {
      nperms = acc.Nearest(path).perms->size();
    }
    if (24 + 8 * nperms + value.size() + children >= Quota(conn, QuotaKind::kNodeSize)) {
      return Err(ENOSPC, "node larger than the node-size quota");
    }
    if (!v) {
      if (acc.OwnedBy(conn.domid()) + acc.NodesToCreate(path) > Quota(conn, QuotaKind::kNodes)) {
        return Err(ENOSPC);
      }
      if (DomainFor(conn.domid()).memory + value.size() + path.size() >
          Quota(conn, QuotaKind::kMemory)) {
        return Err(EIO, "memory quota");  // Xen 4.17 answers EIO for the memory quota
      }
    }
  }
  if (v) {
    acc.SetValue(path, std::move(value));
  } else {
    acc.Create(conn.caller_, path, std::move(value));
  }
  return Ack();
}

Result<std::string> Engine::DoMkdir(Conn& conn, Accessor& acc, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, arg, Special::kReject));
  Result<NodeView> v = GetNode(conn.caller_, acc, path, kPermWrite);
  if (v) return Ack();  // already there: fine, and no watch fires
  if (v.error().code != ENOENT) return v.error();
  if (!conn.caller_.privileged &&
      acc.OwnedBy(conn.domid()) + acc.NodesToCreate(path) > Quota(conn, QuotaKind::kNodes)) {
    return Err(ENOSPC);
  }
  acc.Create(conn.caller_, path, std::string());
  return Ack();
}

Result<std::string> Engine::DoRm(Conn& conn, Accessor& acc, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, arg, Special::kReject));
  Result<NodeView> v = GetNode(conn.caller_, acc, path, kPermWrite);
  if (!v) {
    // Removing what is not there is fine, if its parent is.
    if (v.error().code == ENOENT && acc.Get(std::string(ParentPath(path))).exists) return Ack();
    return v.error();
  }
  if (path == "/") return Err(EINVAL, "cannot remove the root");
  XPV_TRY(acc.Remove(path));
  return Ack();
}

Result<std::string> Engine::DoSetPerms(Conn& conn, Accessor& acc, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.size() < 2) return Err(EINVAL);
  const size_t count = args.size() - 1;
  if (!conn.caller_.privileged && count > Quota(conn, QuotaKind::kPermissions)) {
    return Err(ENOSPC);
  }
  XPV_ASSIGN_OR_RETURN(PermList perms,
                       ParsePerms(std::vector<std::string_view>(args.begin() + 1, args.end())));
  // Xen refuses an owner that does not exist (other entries for absent domains are kept, unused).
  if (!DomainExists(perms[0].domid)) return Err(ENOENT, "owner domain does not exist");
  if (IsSpecial(args[0])) {
    auto it = special_.find(args[0]);
    if (it == special_.end()) return Err(ENOENT, "no such special node");
    if (!conn.caller_.privileged) return Err(EACCES);
    it->second = MakePerms(std::move(perms));
    return Ack();
  }
  XPV_ASSIGN_OR_RETURN(std::string path, Resolve(conn, args[0], Special::kReject));
  XPV_ASSIGN_OR_RETURN(NodeView v, GetNode(conn.caller_, acc, path, kPermWrite | kPermOwner));
  if (!conn.caller_.privileged && perms[0].domid != (*v.perms)[0].domid) {
    return Err(EPERM, "only the privileged may change a node's owner");
  }
  acc.SetPerms(path, MakePerms(std::move(perms)));
  return Ack();
}

Result<std::string> Engine::DoWatch(Conn& conn, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.size() != 2 && args.size() != 3) return Err(EINVAL);
  Watch w;
  w.token = std::string(args[1]);
  if (args.size() == 3) {
    if (!ParseU32(args[2], &w.depth)) return Err(EINVAL, "bad watch depth");
  }
  XPV_ASSIGN_OR_RETURN(w.path, Resolve(conn, args[0], Special::kAllow));
  if (!IsSpecial(args[0]) && args[0].substr(0, 1) != "/") {
    w.strip = DomainPath(conn.domid().value).size();
  }
  for (const Watch& x : conn.watches_) {
    if (x.path == w.path && x.token == w.token) return Err(EEXIST);
  }
  if (!conn.caller_.privileged && conn.watches_.size() > Quota(conn, QuotaKind::kWatches)) {
    return Err(E2BIG);
  }
  conn.watches_.push_back(std::move(w));
  UpdateWatching(conn);
  return Ack();
}

Result<std::string> Engine::DoUnwatch(Conn& conn, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.size() != 2) return Err(EINVAL);
  // Xen does not validate an UNWATCH path: one that cannot match simply is not found.
  std::string path(args[0]);
  if (!IsSpecial(path) && (path.empty() || path[0] != '/')) {
    path = DomainPath(conn.domid().value) + "/" + path;
  }
  auto it = std::find_if(conn.watches_.begin(), conn.watches_.end(),
                         [&](const Watch& w) { return w.path == path && w.token == args[1]; });
  if (it == conn.watches_.end()) return Err(ENOENT);
  conn.watches_.erase(it);
  UpdateWatching(conn);
  return Ack();
}

Result<std::string> Engine::DoTransactionStart(Conn& conn, Transaction* tx) {
  if (tx) return Err(EBUSY, "transaction inside a transaction");
  if (!conn.caller_.privileged &&
      conn.transactions_.size() > Quota(conn, QuotaKind::kTransactions)) {
    return Err(ENOSPC);
  }
  // Pick an unused id, as Xen does, never 0.
  uint32_t id = conn.next_tx_id_;
  while (id == 0 || conn.transactions_.contains(id)) ++id;
  conn.next_tx_id_ = id + 1;
  conn.transactions_.emplace(id, std::make_unique<Transaction>(id));
  return WithNul(fmt::format("{}", id));
}

Result<std::string> Engine::DoTransactionEnd(Conn& conn, Transaction* tx, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg) || (arg != "T" && arg != "F")) return Err(EINVAL);
  if (!tx) return Err(ENOENT);
  std::unique_ptr<Transaction> owned = std::move(conn.transactions_[tx->id()]);
  conn.transactions_.erase(tx->id());
  if (arg == "F") return Ack();
  if (tx->failed_) return Err(ENOMEM, "transaction failed earlier");

  // Commit only if every node the transaction touched is as it first saw it.
  for (const auto& [path, t] : tx->nodes_) {
    const Node* n = tree_.Find(path);
    if ((n != nullptr) != t.base_exists) return Err(EAGAIN);
    if (n && n->gen() != t.base_gen) return Err(EAGAIN);
  }
  if (!conn.caller_.privileged && tx->node_delta_ > 0 &&
      DomainFor(conn.domid()).nodes + tx->node_delta_ > Quota(conn, QuotaKind::kNodes)) {
    return Err(ENOSPC);
  }
  // Replay the operations onto the committed tree, firing each changed node's watches once.
  std::vector<Change> changes;
  DirectAccessor direct(*this, changes);
  std::unordered_map<std::string_view, bool> existed;  // before the commit, per target
  for (auto& op : tx->ops_) {
    const bool exists = tree_.Find(op.path) != nullptr;
    existed.try_emplace(op.path, exists);
    switch (op.kind) {
      case Transaction::OpKind::kWrite:
        if (exists) {
          direct.SetValue(op.path, std::move(op.value));
        } else {
          direct.Create(conn.caller_, op.path, std::move(op.value));
        }
        break;
      case Transaction::OpKind::kRm:
        if (exists) (void)direct.Remove(op.path);
        break;
      case Transaction::OpKind::kSetPerms:
        if (exists) direct.SetPerms(op.path, op.perms);
        break;
    }
  }
  // One event per changed node, in first-change order, and none for a node the transaction both
  // created and removed.
  std::unordered_map<std::string, size_t> index;
  for (auto& ch : changes) {
    auto was = existed.find(ch.path);
    if (was != existed.end() && !was->second && !tree_.Find(ch.path)) continue;
    auto [it, fresh] = index.try_emplace(ch.path, pending_.size());
    if (!fresh) {
      pending_[it->second].exact = pending_[it->second].exact && ch.exact;
      continue;
    }
    pending_.push_back(std::move(ch));
  }
  return Ack();
}

Result<Engine::Domain*> Engine::ConnectedDomain(std::string_view domid_text) {
  const DomId domid(XenAtoi(domid_text));
  if (domid == kDom0) return Err(EINVAL);
  auto it = domains_.find(domid);
  if (it == domains_.end() || !it->second.introduced) return Err(ENOENT);
  return &it->second;
}

Result<std::string> Engine::DoIntroduce(Conn& conn, const Message& msg) {
  (void)conn;
  auto args = SplitStrings(msg.payload);
  if (args.size() < 3) return Err(EINVAL);
  const DomId domid(XenAtoi(args[0]));
  const uint64_t gfn = std::strtoull(std::string(args[1]).c_str(), nullptr, 10);
  const uint32_t port = XenAtoi(args[2]);  // Xen: unsigned, and `port <= 0` refuses only 0
  if (port == 0) return Err(EINVAL);
  Domain& d = DomainFor(domid);
  if (hooks_) XPV_TRY(hooks_->Introduce(domid, gfn, port));
  const bool fresh = !d.introduced;
  d.introduced = true;
  d.shutdown = false;
  if (fresh) FireSpecial(kIntroduceDomain);
  return Ack();
}

Result<std::string> Engine::DoRelease(Conn&, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(Domain * d, ConnectedDomain(arg));
  (void)d;
  ForgetDomain(DomId(XenAtoi(arg)));
  return Ack();
}

void Engine::DomainGone(DomId domid) {
  if (!IsIntroduced(domid) || domid == kDom0) return;
  ForgetDomain(domid);
}

void Engine::DomainShutdown(DomId domid) {
  auto it = domains_.find(domid);
  if (it == domains_.end() || !it->second.introduced || domid == kDom0 || it->second.shutdown)
    return;
  it->second.shutdown = true;
  FireSpecial(kReleaseDomain);
}

void Engine::ResetConnection(Conn& conn) {
  conn.watches_.clear();
  conn.transactions_.clear();
  UpdateWatching(conn);
}

void Engine::UpdateWatching(Conn& conn) {
  // Keep watchers_ in connection order: events go out in the order Xen's daemon sends them.
  auto it = std::lower_bound(watchers_.begin(), watchers_.end(), &conn,
                             [](const Conn* a, const Conn* b) { return a->seq_ < b->seq_; });
  const bool listed = it != watchers_.end() && *it == &conn;
  if (conn.watches_.empty() && listed) watchers_.erase(it);
  if (!conn.watches_.empty() && !listed) watchers_.insert(it, &conn);
}

void Engine::ForgetDomain(DomId domid) {
  if (hooks_) hooks_->Release(domid);
  // Xen 4.17 removes every node the released domain owns (with its subtree), then fires
  // @releaseDomain. Collect the topmost owned nodes first: removal invalidates the walk.
  std::vector<std::string> owned;
  ForEachNode([&](std::string_view path, const Node& n) {
    if (&n == &tree_.root() || n.owner() != domid) return;
    if (!owned.empty() && IsSelfOrDescendant(path, owned.back())) return;
    owned.emplace_back(path);
  });
  std::vector<Change> removed;
  for (const std::string& path : owned) {
    if (Node* n = tree_.Find(path)) RemovePath(n, path, &removed);
  }
  // The root cannot go: give it back to dom0, as Xen's domain_adjust_node_perms() treats a node
  // whose owner is gone, so that no node stays charged to a forgotten domain.
  if (tree_.root().owner() == domid) {
    PermList perms = *tree_.root().perms();
    perms[0].domid = kDom0;
    SetNodePerms(&tree_.root(), "/", MakePerms(std::move(perms)));
  }
  domains_.erase(domid);
  Fire(removed);
  FireSpecial(kReleaseDomain);
}

Result<std::string> Engine::DoResume(Conn&, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  XPV_ASSIGN_OR_RETURN(Domain * d, ConnectedDomain(arg));
  d->shutdown = false;
  return Ack();
}

Result<std::string> Engine::DoSetTarget(Conn&, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.size() < 2) return Err(EINVAL);
  const DomId domid(XenAtoi(args[0]));
  const DomId target(XenAtoi(args[1]));
  if (!IsIntroduced(domid) || !IsIntroduced(target)) return Err(ENOENT);
  Domain* d = &domains_[domid];
  if (d->conn) {
    d->conn->caller_.has_target = true;
    d->conn->caller_.target = target;
  }
  return Ack();
}

Result<std::string> Engine::DoIsDomainIntroduced(Conn&, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  const DomId domid(XenAtoi(arg));
  // DOMID_SELF: the caller itself, which is introduced by definition.
  return std::string(domid == kDomIdSelf || IsIntroduced(domid) ? "T" : "F", 2);
}

Result<std::string> Engine::DoGetDomainPath(Conn&, const Message& msg) {
  std::string_view arg;
  if (!OneArg(msg.payload, &arg)) return Err(EINVAL);
  return WithNul(DomainPath(XenAtoi(arg)));
}

Result<std::string> Engine::DoResetWatches(Conn& conn) {
  ResetConnection(conn);
  return Ack();
}

// CONTROL (xenstore-control): the commands of Xen 4.17's daemon that make sense here, with its
// argument rules and output formats. live-update is not offered.
Result<std::string> Engine::DoControl(Conn&, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.empty()) return Err(EINVAL);
  const std::string_view cmd = args[0];
  const size_t nargs = args.size() - 1;
  if (cmd == "check") {
    if (nargs != 0) return Err(EINVAL);
    return Ack();
  }
  if (cmd == "help") {
    if (nargs != 0) return Err(EINVAL);
    return WithNul(
        "check\t\nlog\ton|off\nlogfile\t<file>\nmemreport\t[<file>]\nprint\t<string>\n"
        "quota\t[set <name> <val>|<domid>]\nquota-soft\t[set <name> <val>]\nhelp\t\n");
  }
  if (cmd == "log") {
    if (nargs != 1 || (args[1] != "on" && args[1] != "off")) return Err(EINVAL);
    spdlog::set_level(args[1] == "on" ? spdlog::level::debug : spdlog::level::info);
    return Ack();
  }
  if (cmd == "logfile") {
    if (nargs != 1) return Err(EINVAL);
    try {
      spdlog::default_logger()->sinks().push_back(
          std::make_shared<spdlog::sinks::basic_file_sink_mt>(std::string(args[1])));
    } catch (const spdlog::spdlog_ex&) {
      return Err(EINVAL, "cannot open log file");
    }
    return Ack();
  }
  if (cmd == "print") {
    if (nargs != 1) return Err(EINVAL);
    spdlog::info("control: {}", args[1]);
    return Ack();
  }
  if (cmd == "memreport") {
    if (nargs > 1) return Err(EINVAL);
    const std::string report = MemReport();
    if (nargs == 0) {
      spdlog::info("memreport:\n{}", report);
    } else if (std::FILE* f = std::fopen(std::string(args[1]).c_str(), "w")) {
      std::fputs(report.c_str(), f);
      std::fclose(f);
    } else {
      return Err(EINVAL, "cannot open report file");
    }
    return Ack();
  }
  if (cmd == "quota" || cmd == "quota-soft") {
    const bool soft = cmd == "quota-soft";
    if (nargs == 0) {
      if (!soft) return WithNul(options_.quotas.Report());
      return WithNul(fmt::format("Quota settings:\n{:<17}: {:8} {}\n", "memory", soft_memory_,
                                 "Total Xenstore memory per domain (warning level)"));
    }
    if (args[1] == "set") {
      uint32_t v = 0;
      if (nargs != 3 || !ParseU32(args[3], &v)) return Err(EINVAL);
      if (soft) {
        if (args[2] != "memory") return Err(EINVAL);
        soft_memory_ = v;
        return Ack();
      }
      auto kind = Quotas::Find(args[2]);
      if (!kind) return Err(EINVAL);
      options_.quotas.set(*kind, v);
      for (auto& [id, d] : domains_) d.quotas.set(*kind, v);
      return Ack();
    }
    if (nargs != 1 || soft) return Err(EINVAL);
    const DomId domid(XenAtoi(args[1]));
    if (!IsIntroduced(domid)) return Err(ENOENT);
    const Domain& d = domains_[domid];
    size_t watches = 0;
    size_t txs = 0;
    for (const Conn* c : conns_) {
      if (c->domid() == domid) {
        watches += c->watches_.size();
        txs += c->transactions_.size();
      }
    }
    std::string out = fmt::format("Domain {}:\n", domid.value);
    const std::pair<std::string_view, uint64_t> rows[] = {{"nodes", d.nodes},
                                                          {"watches", watches},
                                                          {"transactions", txs},
                                                          {"outstanding", 0},
                                                          {"memory", d.memory}};
    for (const auto& [name, value] : rows) {
      fmt::format_to(std::back_inserter(out), "{:<16}: {:8}\n", name, value);
    }
    return WithNul(out);
  }
  return Err(EINVAL, "unknown control command");
}

std::string Engine::MemReport() const {
  size_t watches = 0;
  size_t txs = 0;
  for (const Conn* c : conns_) {
    watches += c->watches_.size();
    txs += c->transactions_.size();
  }
  std::string out = fmt::format("nodes: {}\nconnections: {}\nwatches: {}\ntransactions: {}\n",
                                tree_.node_count(), conns_.size(), watches, txs);
  for (const auto& [id, d] : domains_) {
    fmt::format_to(std::back_inserter(out), "domain {}: nodes {} memory {}{}\n", id.value, d.nodes,
                   d.memory, d.introduced ? "" : " (not introduced)");
  }
  return out;
}

Result<std::string> Engine::DoGetFeature(Conn& conn, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.empty()) return WithNul(fmt::format("{}", kServerFeatures));
  if (args.size() != 1 || !conn.caller_.privileged) return Err(args.size() != 1 ? EINVAL : EACCES);
  uint32_t id = 0;
  if (!ParseU32(args[0], &id)) return Err(EINVAL);
  auto it = domains_.find(DomId(id));
  if (it == domains_.end() || !it->second.introduced) return Err(ENOENT);
  return WithNul(fmt::format("{}", it->second.features ? it->second.features : kServerFeatures));
}

Result<std::string> Engine::DoSetFeature(Conn&, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  uint32_t id = 0;
  uint32_t features = 0;
  if (args.size() != 2 || !ParseU32(args[0], &id) || !ParseU32(args[1], &features)) {
    return Err(EINVAL);
  }
  if (features & ~kServerFeatures) return Err(EINVAL, "feature not offered by this server");
  auto it = domains_.find(DomId(id));
  if (it == domains_.end() || !it->second.introduced) return Err(ENOENT);
  it->second.features = features;
  return Ack();
}

Result<std::string> Engine::DoGetQuota(Conn&, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.empty()) {
    std::string names;
    for (const auto& q : kQuotaTable) {
      if (!names.empty()) names += ' ';
      names += q.name;
    }
    return WithNul(names);
  }
  if (args.size() > 2) return Err(EINVAL);
  const Quotas* quotas = &options_.quotas;
  if (args.size() == 2) {
    uint32_t id = 0;
    if (!ParseU32(args[0], &id)) return Err(EINVAL);
    auto it = domains_.find(DomId(id));
    if (it == domains_.end() || !it->second.introduced) return Err(ENOENT);
    quotas = &it->second.quotas;
  }
  auto kind = Quotas::Find(args.back());
  if (!kind) return Err(EINVAL);
  return WithNul(fmt::format("{}", quotas->get(*kind)));
}

Result<std::string> Engine::DoSetQuota(Conn&, const Message& msg) {
  auto args = SplitStrings(msg.payload);
  if (args.size() != 2 && args.size() != 3) return Err(EINVAL);
  uint32_t value = 0;
  auto kind = Quotas::Find(args[args.size() - 2]);
  if (!kind || !ParseU32(args.back(), &value)) return Err(EINVAL);
  if (args.size() == 2) {
    options_.quotas.set(*kind, value);
    return Ack();
  }
  uint32_t id = 0;
  if (!ParseU32(args[0], &id)) return Err(EINVAL);
  auto it = domains_.find(DomId(id));
  if (it == domains_.end() || !it->second.introduced) return Err(ENOENT);
  it->second.quotas.set(*kind, value);
  return Ack();
}

}  // namespace xpv::xenstore
