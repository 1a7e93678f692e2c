// The store engine: the node tree, permissions, transactions, watches, quotas and domains, and the
// handling of every xs_wire.h request. Transport-free: a connection reaches the engine as a Conn
// with a Sink for its output, so the socket, the domain ring and tests all drive the same code.
//
// Semantics follow docs/misc/xenstore.txt, and Xen 4.17's C daemon where the text is silent;
// docs/xenstored.md lists where xpv deliberately differs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/types.h"
#include "xpv/xenstore/path.h"
#include "xpv/xenstore/perms.h"
#include "xpv/xenstore/quota.h"
#include "xpv/xenstore/tree.h"
#include "xpv/xenstore/wire.h"

namespace xpv::xenstore {

class Engine;
class Transaction;

// Where a connection's output goes. Implemented by each transport.
class Sink {
 public:
  virtual ~Sink() = default;
  // Queues a reply. Replies are never dropped: a transport stops reading a client whose replies
  // pile up, so a client that never reads cannot make the daemon grow.
  virtual void Reply(MsgType type, uint32_t req_id, uint32_t tx_id, std::string_view payload) = 0;
  // Queues a watch event ("path\0token\0"). Returns false when the transport dropped it because
  // the client's queue of events is full.
  virtual bool Event(std::string_view payload) = 0;
};

struct Watch {
  std::string path;  // canonical: absolute or @special
  std::string token;
  size_t strip = 0;  // bytes stripped from event paths (relative watches)
  uint32_t depth = UINT32_MAX;
};

enum class Privilege { kUnprivileged, kPrivileged };

// One client of the store: a socket client (dom0) or a domain's ring.
class Conn {
 public:
  Conn(Engine& engine, Sink& sink, DomId domid, Privilege privilege);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  DomId domid() const { return caller_.domid; }
  const Caller& caller() const { return caller_; }
  Sink& sink() { return sink_; }
  size_t watch_count() const { return watches_.size(); }
  size_t transaction_count() const { return transactions_.size(); }
  uint64_t events_dropped() const { return events_dropped_; }

 private:
  friend class Engine;
  Engine& engine_;
  Sink& sink_;
  Caller caller_;
  uint64_t seq_;  // connection order, for the order in which watches fire
  std::vector<Watch> watches_;
  std::map<uint32_t, std::unique_ptr<Transaction>> transactions_;
  uint32_t next_tx_id_ = 1;
  uint64_t events_dropped_ = 0;
};

// Platform side of INTRODUCE / RELEASE: maps a domain's ring page and binds its event channel,
// producing a Conn; the socket-only daemon uses DetachedDomains below.
class DomainHooks {
 public:
  virtual ~DomainHooks() = default;
  // Creates or re-binds the ring connection of `domid`. The engine records the domain as
  // introduced.
  virtual Status Introduce(DomId domid, uint64_t gfn, uint32_t port) = 0;
  // Drops the ring connection of `domid`, if any.
  virtual void Release(DomId domid) = 0;
  // Whether `domid` exists on this host (SET_PERMS refuses owners that do not).
  virtual bool Exists(DomId domid) = 0;
};

// A change committed to the tree, for the journal.
struct Mutation {
  enum class Kind { kSet, kRemove } kind;
  std::string_view path;
  const Node* node;  // kSet: the node after the change
};

struct EngineOptions {
  Quotas quotas;
  // Per-connection bound on queued watch events is the transport's; the engine only counts drops.
};

class Engine {
 public:
  explicit Engine(EngineOptions options = {});
  ~Engine();

  void set_domain_hooks(DomainHooks* hooks) { hooks_ = hooks; }
  // Called for every change to the committed tree, after it is made and before any reply.
  void set_mutation_listener(std::function<void(const Mutation&)> fn) { listener_ = std::move(fn); }

  // Handles one request and queues its reply (and any watch events) on the sinks.
  void Handle(Conn& conn, const Message& msg);

  // A ring connection of an introduced domain attaches itself here (and detaches on destruction).
  void AttachDomainConn(DomId domid, Conn* conn);
  // The platform saw `domid` die: removes the nodes it owns, fires @releaseDomain and forgets it,
  // as Xen's daemon does for a domain that died (VIRQ_DOM_EXC).
  void DomainGone(DomId domid);
  // The platform saw `domid` shut down (stopped or crashed, not yet destroyed): fires
  // @releaseDomain once, so that a toolstack applies on_poweroff/on_crash, as Xen's
  // check_domains() does. XS_RESUME re-arms it.
  void DomainShutdown(DomId domid);
  // A ring reconnected (xenstore-ring.txt): drops the connection's watches and transactions.
  void ResetConnection(Conn& conn);

  // Loads a node while restoring saved state: no permissions, quotas, watches or journal.
  void RestoreNode(std::string_view path, std::string value, PermsRef perms);
  void RestoreSpecialPerms(std::string_view name, PermsRef perms);

  Tree& tree() { return tree_; }
  const Quotas& quotas() const { return options_.quotas; }
  Quotas& mutable_quotas() { return options_.quotas; }
  size_t connection_count() const { return conns_.size(); }
  bool IsIntroduced(DomId domid) const;

  // Walks the committed tree: calls fn(path, node) parents first.
  void ForEachNode(const std::function<void(std::string_view, const Node&)>& fn) const;
  // The special nodes' permissions (@introduceDomain, @releaseDomain).
  const std::map<std::string, PermsRef, std::less<>>& special_perms() const { return special_; }

 private:
  friend class Conn;
  friend class Transaction;
  class Accessor;
  class DirectAccessor;
  class TxAccessor;

  struct Domain {
    bool introduced = false;
    Conn* conn = nullptr;
    uint32_t nodes = 0;   // nodes it owns
    uint64_t memory = 0;  // bytes of those nodes, as NodeBytes() estimates them
    bool shutdown = false;
    uint32_t features = 0;
    Quotas quotas;
  };

  struct Change {
    std::string path;
    bool exact;       // removed descendants: fire only watches on exactly this path
    PermsRef perms;   // the node's permissions for filtering (old ones for a removed node)
    PermsRef perms2;  // SET_PERMS: the new permissions; either allows delivery
  };

  using Handler = Result<std::string> (Engine::*)(Conn&, Accessor&, const Message&);

  void Register(Conn* conn);
  void Unregister(Conn* conn);

  Result<std::string> Dispatch(Conn& conn, Transaction* tx, const Message& msg,
                               MsgType* reply_type);

  Result<std::string> DoRead(Conn&, Accessor&, const Message&);
  Result<std::string> DoDirectory(Conn&, Accessor&, const Message&);
  Result<std::string> DoDirectoryPart(Conn&, Accessor&, const Message&);
  Result<std::string> DoGetPerms(Conn&, Accessor&, const Message&);
  Result<std::string> DoWrite(Conn&, Accessor&, const Message&);
  Result<std::string> DoMkdir(Conn&, Accessor&, const Message&);
  Result<std::string> DoRm(Conn&, Accessor&, const Message&);
  Result<std::string> DoSetPerms(Conn&, Accessor&, const Message&);
  Result<std::string> DoWatch(Conn&, const Message&);
  Result<std::string> DoUnwatch(Conn&, const Message&);
  Result<std::string> DoTransactionStart(Conn&, Transaction* tx);
  Result<std::string> DoTransactionEnd(Conn&, Transaction* tx, const Message&);
  Result<std::string> DoIntroduce(Conn&, const Message&);
  Result<std::string> DoRelease(Conn&, const Message&);
  Result<std::string> DoResume(Conn&, const Message&);
  Result<std::string> DoSetTarget(Conn&, const Message&);
  Result<std::string> DoIsDomainIntroduced(Conn&, const Message&);
  Result<std::string> DoGetDomainPath(Conn&, const Message&);
  Result<std::string> DoResetWatches(Conn&);
  Result<std::string> DoControl(Conn&, const Message&);
  Result<std::string> DoGetFeature(Conn&, const Message&);
  Result<std::string> DoSetFeature(Conn&, const Message&);
  Result<std::string> DoGetQuota(Conn&, const Message&);
  Result<std::string> DoSetQuota(Conn&, const Message&);

  struct NodeView;
  static Result<NodeView> GetNode(const Caller& caller, Accessor& acc, const std::string& path,
                                  uint8_t perm);
  static PermsRef InheritedPerms(const Caller& caller, const PermsRef& parent);
  Result<std::string> Resolve(const Conn& conn, std::string_view raw, Special special) const;
  Result<Domain*> ConnectedDomain(std::string_view domid_text);
  bool DomainExists(DomId domid) const;
  void ForgetDomain(DomId domid);
  void UpdateWatching(Conn& conn);
  Domain& DomainFor(DomId domid);
  uint32_t Quota(const Conn& conn, QuotaKind kind) const;

  // Committed-tree mutations shared by direct requests and transaction commit.
  Node* CreatePath(const Caller& caller, std::string_view path, std::string value);
  void SetNodeValue(Node* node, std::string_view path, std::string value);
  void SetNodePerms(Node* node, std::string_view path, PermsRef perms);
  void RemovePath(Node* node, std::string path, std::vector<Change>* changes);
  static size_t NodeBytes(const Node& n);
  std::string MemReport() const;
  // Charges (+1) or refunds (-1) a node to its owner's node count and memory.
  void CountOwner(const Node& n, int sign);

  void Fire(const std::vector<Change>& changes);
  void FireSpecial(std::string_view name);
  // "path\0token\0", the path shown relative for a relative watch.
  static std::string EventPayload(const Watch& watch, std::string_view path);
  void DeliverEvent(Conn& conn, std::string_view payload);

  EngineOptions options_;
  Tree tree_;
  DomainHooks* hooks_ = nullptr;
  std::function<void(const Mutation&)> listener_;
  std::vector<Conn*> conns_;     // in connection order
  std::vector<Conn*> watchers_;  // those with watches, in connection order: what Fire() visits
  uint64_t next_conn_seq_ = 0;
  std::unordered_map<DomId, Domain> domains_;
  std::map<std::string, PermsRef, std::less<>> special_;
  std::vector<Change> pending_;     // changes of the request being handled, fired before its reply
  uint32_t soft_memory_ = 2097152;  // "quota-soft" memory: Xen 4.17's default
};

}  // namespace xpv::xenstore
