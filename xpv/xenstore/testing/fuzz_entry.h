// The bodies of the xenstore fuzz targets, shared with a GoogleTest that replays a built-in corpus
// through them, so every build (not only the clang fuzz preset) exercises the same code and checks.
// Each aborts (XPV_CHECK) when an invariant breaks; a hostile input must never do anything else.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace xpv::xenstore::testing {

// Wire codec: the input is a byte stream fed to StreamDecoder in chunks (the first byte picks the
// chunk size); each decoded message's payload goes through SplitStrings, OneArg, ParsePerms and
// Canonicalize, checking round trips.
void WireFuzzOneInput(std::span<const uint8_t> data);

// Engine: the input is a script of requests from four connections (dom0, a second privileged
// socket client, domU 5 and domU 6), each encoded by EncodeEngineFuzzRequest. After every request
// it checks one reply came back, well formed and within XENSTORE_PAYLOAD_MAX; at the end, that the
// mutation stream rebuilds the tree and that per-domain node counts match ownership.
void EngineFuzzOneInput(std::span<const uint8_t> data);

// One request of an EngineFuzzOneInput script: connection 0..3, the header type and tx id, the
// payload (at most XENSTORE_PAYLOAD_MAX bytes are used).
std::string EncodeEngineFuzzRequest(uint8_t conn, uint32_t type, uint32_t tx_id,
                                    std::string_view payload);

}  // namespace xpv::xenstore::testing
