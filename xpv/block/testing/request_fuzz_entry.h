// The body of the blkif request fuzz target, shared by the libFuzzer binary (XPV_FUZZ builds) and
// the replay test that runs it on seeded random inputs in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xpv::block::testing {

// Input: one byte choosing the layout and limits, then a request slot, then indirect pages.
// Parses the slot and, for an indirect request, its segments; checks what a parser must never
// break: a refusal answers the request's id, an accepted request lies inside the disk, its
// segments stay inside their pages and add up to its length. Aborts (XPV_CHECK) otherwise.
void FuzzRequestOnce(const uint8_t* data, size_t size);

}  // namespace xpv::block::testing
