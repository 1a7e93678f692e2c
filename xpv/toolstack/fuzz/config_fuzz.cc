// libFuzzer target: the xl.cfg, disk-spec and vif-spec parsers. Besides not crashing, whatever a
// parser accepts must survive its writer: parse(format(parse(x))) == parse(x).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "xpv/toolstack/disk_spec.h"
#include "xpv/toolstack/vif_spec.h"
#include "xpv/toolstack/xl_config.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xpv::toolstack;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto config = ParseDomainConfig("fuzz.cfg", text)) {
    auto again = ParseDomainConfig("fuzz.cfg", FormatDomainConfig(*config));
    Require(again && *again == *config);
  }
  if (auto disk = ParseDiskSpec(text)) {
    auto again = ParseDiskSpec(ToString(*disk));
    Require(again && *again == *disk);
  }
  if (auto vif = ParseVifSpec(text)) {
    auto again = ParseVifSpec(ToString(*vif));
    Require(again && *again == *vif);
  }
  return 0;
}
