// The xpv-hv wire protocol: fixed-layout, versioned request and reply structs over a Unix
// SOCK_SEQPACKET socket (one message per request, one per reply, in order), file descriptors
// passed with SCM_RIGHTS in replies only. docs/xpv-hv.md describes each message.
//
// Every message starts with a Header; every reply with a Reply (a Header whose `op` and `seq`
// echo the request, an errno in `error`, and the number of fds attached). Batched requests carry
// a count and an array; their replies carry per-entry GNTST_* statuses. Sizes are checked to the
// byte: a message is exactly the size its header and counts say, or it is refused with EINVAL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "xpv/abi/grant_table.h"
#include "xpv/base/check.h"
#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/platform/sim/config.h"

namespace xpv::platform::sim::wire {

inline constexpr uint32_t kMagic = 0x48565058;  // "XPVH"
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kMaxMessage = 64 * 1024;
inline constexpr size_t kMaxReplyFds = kMaxBatch + 4;  // < SCM_MAX_FD (253)
inline constexpr size_t kNameSize = 64;
inline constexpr uint32_t kMaxArgs = 64;
inline constexpr uint32_t kMaxArgvBytes = 16 * 1024;
inline constexpr uint32_t kMaxListEntries = 64;
inline constexpr uint32_t kMaxDeadEntries = 256;
inline constexpr uint32_t kMaxDrops = 8;

enum class Op : uint16_t {
  kHello = 1,
  kGrantMap = 10,
  kGrantUnmap = 11,
  kGrantCopy = 12,
  kEvtchnAllocUnbound = 20,
  kEvtchnBindInterdomain = 21,
  kEvtchnSend = 22,
  kEvtchnClose = 23,
  kEvtchnStatus = 24,
  kDomainCreate = 30,
  kDomainDestroy = 31,
  kDomainList = 32,
  kMapForeign = 33,
  kTakeDead = 34,
};

struct Header {
  uint32_t magic;
  uint16_t version;
  uint16_t op;
  uint32_t length;  // the whole message, header included
  uint32_t seq;     // chosen by the client, echoed in the reply
};
static_assert(sizeof(Header) == 16);

struct Reply {
  Header h;
  int32_t error;  // 0, or an errno for the request as a whole
  uint32_t nfds;  // fds attached to this reply
};
static_assert(sizeof(Reply) == 24);

// --- kHello: the first request on every connection -----------------------------------------
enum class Role : uint32_t {
  kDomain = 1,   // on a connection the hypervisor made for a domain (XPV_HV_FD)
  kDom0 = 2,     // on the listening socket: a toolstack session of domain 0
  kService = 3,  // on the listening socket: a new privileged service domain (e.g. xenstored)
};

struct HelloRequest {
  Header h;
  uint32_t role;
  int32_t pid;          // informational
  uint64_t memory_mib;  // kService: RAM of the new domain
  uint8_t mode;         // kService: MappingMode
  uint8_t pad[7];
  char name[kNameSize];  // kService: the domain's name, NUL-terminated
};
static_assert(sizeof(HelloRequest) == 104);

inline constexpr uint32_t kHelloHasStorePort = 1;
inline constexpr uint32_t kHelloHasDeathFd = 2;

// fds: RAM memfd, shared memfd (grant table + port generations), then the store port's receive
// end if kHelloHasStorePort, then the death doorbell if kHelloHasDeathFd.
struct HelloReply {
  Reply r;
  uint32_t domid;
  uint8_t privilege;
  uint8_t mode;
  uint16_t pad;
  uint64_t incarnation;
  uint64_t ram_pages;
  uint32_t grant_frames;
  uint32_t max_ports;
  uint32_t ref_first, ref_end;
  uint64_t gfn_first, gfn_end;
  uint64_t store_gfn;
  uint32_t store_port;
  uint32_t flags;  // kHello*
};
static_assert(sizeof(HelloReply) == 96);

// --- Batches: kGrantMap, kGrantUnmap, kGrantCopy ----------------------------------------------
struct BatchRequest {
  Header h;
  uint32_t count;  // 1..kMaxBatch entries follow
  uint32_t pad;
};
static_assert(sizeof(BatchRequest) == 24);

struct MapEntry {
  uint32_t domid;
  uint32_t ref;
  uint32_t flags;  // GNTMAP_readonly or 0
  uint32_t pad;
};
static_assert(sizeof(MapEntry) == 16);
// kGrantUnmap entries: uint32_t handles. kGrantCopy entries: Xen's own gnttab_copy_t.

// RAM a session may now let go of (its domain is gone): the client closes those fds.
struct DropList {
  uint32_t count;
  uint32_t pad;
  uint64_t incarnations[kMaxDrops];
};
static_assert(sizeof(DropList) == 72);

struct MapResultEntry {
  int16_t status;  // GNTST_*
  uint16_t pad;
  uint32_t handle;
  uint64_t gfn;
  uint64_t incarnation;
  uint64_t ram_pages;
  int32_t fd_index;  // index among this reply's fds of the granter's RAM, or -1
  uint32_t pad2;
};
static_assert(sizeof(MapResultEntry) == 40);

struct BatchReply {
  Reply r;
  DropList drops;  // kGrantMap and kGrantUnmap
  uint32_t count;
  uint32_t pad;
  // then count x MapResultEntry (map) or int16_t status (unmap, copy)
};
static_assert(sizeof(BatchReply) == 104);

// --- Event channels ------------------------------------------------------------------------
// alloc_unbound: domid = remote. bind_interdomain: domid, port = the remote's. send, close,
// status: port.
struct EvtchnRequest {
  Header h;
  uint32_t domid;
  uint32_t port;
};
static_assert(sizeof(EvtchnRequest) == 24);

inline constexpr uint32_t kEvtchnHasRecv = 1;  // fd: the new port's receive end
inline constexpr uint32_t kEvtchnHasPeer = 2;  // fd: the peer port's send end (after recv)

struct EvtchnReply {
  Reply r;
  uint32_t port;
  uint32_t gen;
  uint32_t status;  // kEvtchnStatus: EVTCHNSTAT_*
  uint32_t remote_domid;
  uint32_t remote_port;
  uint32_t flags;  // kEvtchnHas*
};
static_assert(sizeof(EvtchnReply) == 48);

// --- Domains (privileged) ---------------------------------------------------------------------
struct CreateRequest {
  Header h;
  uint64_t memory_mib;
  uint32_t grant_frames;
  uint32_t store_domid;
  uint8_t mode;
  uint8_t privilege;
  uint16_t pad;
  uint32_t argc;        // 0: no process; the reply carries the domain's connection
  uint32_t argv_bytes;  // argc NUL-terminated strings follow
  uint32_t vcpus;       // 1..kMaxVcpus; 0 (a client from before the field: it was padding) is 1
  char name[kNameSize];
};
static_assert(sizeof(CreateRequest) == 112);

struct CreateReply {
  Reply r;
  uint32_t domid;
  uint32_t store_port;
  uint64_t store_gfn;
  uint64_t incarnation;
  int32_t pid;
  uint32_t pad;
};  // fds: the domain's connection when argc was 0
static_assert(sizeof(CreateReply) == 56);

// destroy: domid. list: domid = first to list. map_foreign: domid, gfn. take_dead: nothing.
struct DomainRequest {
  Header h;
  uint32_t domid;
  uint32_t pad;
  uint64_t gfn;
};
static_assert(sizeof(DomainRequest) == 32);

struct DomainEntry {
  uint32_t domid;
  uint8_t dying;
  uint8_t mode;
  uint8_t privilege;
  uint8_t pad;
  uint64_t memory_kib;
  int32_t pid;
  uint32_t vcpus;  // was padding: 0 from a daemon before the field, which means 1
  char name[kNameSize];
};
static_assert(sizeof(DomainEntry) == 88);

struct ListReply {
  Reply r;
  uint32_t count;
  uint32_t more;
  // then count x DomainEntry
};
static_assert(sizeof(ListReply) == 32);

struct ForeignReply {
  Reply r;
  uint64_t pages;
};  // fds: the domain's RAM
static_assert(sizeof(ForeignReply) == 32);

struct DeadReply {
  Reply r;
  uint32_t count;
  uint32_t more;
  uint32_t domids[kMaxDeadEntries];
};
static_assert(sizeof(DeadReply) == 32 + 4 * kMaxDeadEntries);

// ---------------------------------------------------------------------------------------------
// Building and reading messages. Structs are copied in and out with memcpy: a received buffer
// is never reinterpreted in place.

// A message under construction: a fixed struct, then optional arrays.
class MessageBuilder {
 public:
  template <typename T>
  explicit MessageBuilder(const T& fixed) {
    Append(&fixed, sizeof fixed);
  }
  void Append(const void* p, size_t n);
  template <typename T>
  void AppendArray(std::span<const T> items) {
    Append(items.data(), items.size_bytes());
  }
  // Fills in the header's length; returns the bytes.
  std::vector<uint8_t>& Finish();

 private:
  std::vector<uint8_t> bytes_;
};

template <typename T>
T ReadStruct(std::span<const uint8_t> bytes, size_t offset = 0);

struct Received {
  std::vector<uint8_t> bytes;  // exactly the message
  std::vector<UniqueFd> fds;
  bool truncated = false;  // longer than the buffer, or its fds did not fit
  // Only the fds did not fit (MSG_CTRUNC: this process ran out of descriptors); the bytes are
  // whole.
  bool fds_lost = false;
};

// Receives one message. Err(EAGAIN) when none is waiting (nonblocking), Err(ECONNRESET) at the
// end of the connection. Fds are received close-on-exec.
Result<Received> ReceiveMessage(int fd, size_t max_bytes, size_t max_fds, bool nonblocking);
// Sends one message with `fds` attached, never raising SIGPIPE.
Status SendMessage(int fd, std::span<const uint8_t> bytes, std::span<const int> fds,
                   bool nonblocking);

// Copies a NUL-terminated name out of a fixed field; empty if the field holds no NUL.
std::string_view NameField(const char (&field)[kNameSize]);
void SetNameField(char (&field)[kNameSize], std::string_view name);

}  // namespace xpv::platform::sim::wire

// ---------------------------------------------------------------------------------------------
namespace xpv::platform::sim::wire {
template <typename T>
T ReadStruct(std::span<const uint8_t> bytes, size_t offset) {
  static_assert(std::is_trivially_copyable_v<T>);
  T out{};
  XPV_CHECK(offset + sizeof(T) <= bytes.size());
  std::memcpy(&out, bytes.data() + offset, sizeof(T));
  return out;
}
}  // namespace xpv::platform::sim::wire
