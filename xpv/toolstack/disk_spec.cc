#include "xpv/toolstack/disk_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <climits>
#include <optional>
#include <utility>
#include <vector>

#include "xpv/toolstack/config_text.h"

namespace xpv::toolstack {
namespace {

constexpr size_t kMaxDiskSpec = 4096;

// vbd-interface.txt: the 1 << 28 format "handles disks up to (1<<20)-1 and partitions up to 255".
constexpr uint64_t kXvdMaxDisk = (1u << 20) - 1;
constexpr uint64_t kXvdMaxPartition = 255;
constexpr uint64_t kSdMaxDisk = 15;
constexpr uint64_t kSdMaxPartition = 15;
constexpr uint64_t kHdMaxDisk = 3;
constexpr uint64_t kHdMaxPartition = 63;
// libxl writes a numeric vdev to xenstore when it fits an int.
constexpr uint64_t kMaxNumericVdev = INT_MAX;
// Lettered disk numbers stop counting past this; every limit above is far below it.
constexpr uint64_t kLetterCap = uint64_t{1} << 40;

constexpr std::string_view kSpace = " \t\n\r";

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsLower(char c) {
  return c >= 'a' && c <= 'z';
}

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

// "0" or a decimal number without a leading zero, capped at kLetterCap; nullopt otherwise.
std::optional<uint64_t> ParsePlainDecimal(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    value = std::min(value * 10 + static_cast<uint64_t>(c - '0'), kLetterCap);
  }
  return value;
}

struct DiskAndPartition {
  uint64_t disk = 0;
  uint64_t partition = 0;
};

// "<letters>[<partition>]" after an xvd/sd/hd prefix. Letters count like spreadsheet columns from
// 0: a=0, z=25, aa=26, tq=536 (vbd-interface.txt's "xvdtq37" is disk 536).
std::optional<DiskAndPartition> SplitLettered(std::string_view rest) {
  size_t i = 0;
  uint64_t disk = 0;
  while (i < rest.size() && IsLower(rest[i])) {
    disk =
        std::min((i == 0 ? 0 : disk + 1) * 26 + static_cast<uint64_t>(rest[i] - 'a'), kLetterCap);
    ++i;
  }
  if (i == 0) return std::nullopt;
  if (i == rest.size()) return DiskAndPartition{disk, 0};
  // A partition is "1", "2", ...: "xvda0" and "xvda01" are not names of anything.
  const auto partition = ParsePlainDecimal(rest.substr(i));
  if (!partition || *partition == 0) return std::nullopt;
  return DiskAndPartition{disk, *partition};
}

// "d<disk>[p<partition>]".
std::optional<DiskAndPartition> SplitDForm(std::string_view rest) {
  const size_t p = rest.find('p');
  const auto disk = ParsePlainDecimal(rest.substr(0, p));
  if (!disk) return std::nullopt;
  if (p == std::string_view::npos) return DiskAndPartition{*disk, 0};
  const auto partition = ParsePlainDecimal(rest.substr(p + 1));
  if (!partition) return std::nullopt;
  return DiskAndPartition{*disk, *partition};
}

ConfigError OutOfRange(std::string_view vdev, std::string_view limits) {
  return ConfigErr(fmt::format("vdev {} is out of range ({})", QuoteForMessage(vdev), limits));
}

ConfigResult<VirtualDevice> XenDevice(std::string_view vdev, DiskAndPartition dp) {
  if (dp.disk > kXvdMaxDisk || dp.partition > kXvdMaxPartition) {
    return OutOfRange(vdev, "xvd disks go up to 2^20 - 1, partitions up to 255");
  }
  const auto disk = static_cast<uint32_t>(dp.disk);
  const auto partition = static_cast<uint32_t>(dp.partition);
  const uint32_t number = disk <= 15 && partition <= 15 ? (202u << 8) | (disk << 4) | partition
                                                        : (1u << 28) | (disk << 8) | partition;
  return VirtualDevice{std::string(vdev), VirtualDevice::Kind::kXen, disk, partition, number};
}

template <typename T>
bool Assign(std::optional<T>& field, T value) {
  if (field.has_value()) return false;
  field = std::move(value);
  return true;
}

}  // namespace

ConfigResult<VirtualDevice> ParseVirtualDevice(std::string_view vdev) {
  const ConfigError invalid = ConfigErr(fmt::format("invalid vdev {}", QuoteForMessage(vdev)));
  if (vdev.starts_with("xvd")) {
    const auto dp = SplitLettered(vdev.substr(3));
    if (!dp) return invalid;
    return XenDevice(vdev, *dp);
  }
  if (vdev.size() > 1 && vdev[0] == 'd' && IsDigit(vdev[1])) {
    const auto dp = SplitDForm(vdev.substr(1));
    if (!dp) return invalid;
    return XenDevice(vdev, *dp);
  }
  if (!vdev.empty() && IsDigit(vdev[0])) {
    // vbd-interface.txt: a single number "is written directly to xenstore".
    const auto number = ParseXlInteger(vdev);
    if (!number) return invalid;
    if (*number > kMaxNumericVdev) return OutOfRange(vdev, "at most 2147483647");
    return VirtualDevice{std::string(vdev), VirtualDevice::Kind::kNumber, 0, 0,
                         static_cast<uint32_t>(*number)};
  }
  if (vdev.starts_with("sd")) {
    const auto dp = SplitLettered(vdev.substr(2));
    if (!dp) return invalid;
    if (dp->disk > kSdMaxDisk || dp->partition > kSdMaxPartition) {
      return OutOfRange(vdev, "sd disks go up to sdp, partitions up to 15");
    }
    const auto disk = static_cast<uint32_t>(dp->disk);
    const auto partition = static_cast<uint32_t>(dp->partition);
    return VirtualDevice{std::string(vdev), VirtualDevice::Kind::kScsi, disk, partition,
                         (8u << 8) | (disk << 4) | partition};
  }
  if (vdev.starts_with("hd")) {
    const auto dp = SplitLettered(vdev.substr(2));
    if (!dp) return invalid;
    if (dp->disk > kHdMaxDisk || dp->partition > kHdMaxPartition) {
      return OutOfRange(vdev, "hd disks go up to hdd, partitions up to 63");
    }
    const auto disk = static_cast<uint32_t>(dp->disk);
    const auto partition = static_cast<uint32_t>(dp->partition);
    // Two IDE controllers (majors 3 and 22), two disks each.
    const uint32_t major = disk < 2 ? 3 : 22;
    return VirtualDevice{std::string(vdev), VirtualDevice::Kind::kIde, disk, partition,
                         (major << 8) | ((disk & 1) << 6) | partition};
  }
  return invalid;
}

namespace {

struct NamedFormat {
  std::string_view name;
  DiskFormat format;
};
constexpr std::array kFormats = {
    NamedFormat{"raw", DiskFormat::kRaw},     NamedFormat{"qcow", DiskFormat::kQcow},
    NamedFormat{"qcow2", DiskFormat::kQcow2}, NamedFormat{"vhd", DiskFormat::kVhd},
    NamedFormat{"qed", DiskFormat::kQed},     NamedFormat{"empty", DiskFormat::kEmpty},
};

struct NamedBackendType {
  std::string_view name;
  DiskBackendType type;
};
constexpr std::array kBackendTypes = {
    NamedBackendType{"phy", DiskBackendType::kPhy},
    NamedBackendType{"tap", DiskBackendType::kTap},
    NamedBackendType{"qdisk", DiskBackendType::kQdisk},
    NamedBackendType{"standalone", DiskBackendType::kStandalone},
    NamedBackendType{"other", DiskBackendType::kOther},
};

// xl-disk-configuration.txt, "DEPRECATED PARAMETERS, PREFIXES AND SYNTAXES": prefixes on the target
// that name a format, name a script, or are ignored.
constexpr std::array<std::string_view, 4> kFormatPrefixes = {"raw", "qcow", "qcow2", "vhd"};
constexpr std::array<std::string_view, 4> kScriptPrefixes = {"iscsi", "nbd", "enbd", "drbd"};
constexpr std::array<std::string_view, 7> kIgnoredPrefixes = {"tapdisk", "tap",  "tap2", "aio",
                                                              "ioemu",   "file", "phy"};
// Flags xl knows that xpv does not implement; refused rather than taken for a positional target.
constexpr std::array<std::string_view, 4> kUnsupportedFlags = {"colo", "no-colo", "trusted",
                                                               "untrusted"};

template <size_t N>
bool Contains(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}

// [a-z][a-z0-9]*: what may come before a deprecated prefix's ":".
bool IsPrefixWord(std::string_view s) {
  if (s.empty() || !IsLower(s[0])) return false;
  for (char c : s) {
    if (!IsLower(c) && !IsDigit(c)) return false;
  }
  return true;
}

// [a-z][-a-z0-9]*: what may come before a keyword's "=".
bool IsKeyWord(std::string_view s) {
  if (s.empty() || !IsLower(s[0])) return false;
  for (char c : s) {
    if (!IsLower(c) && !IsDigit(c) && c != '-') return false;
  }
  return true;
}

// One spec's parameters as given, before defaults. For the four positional parameters, an engaged
// optional holding "" means "given empty": the slot is taken and the default applies.
class DiskSpecParser {
 public:
  ConfigResult<DiskSpec> Parse(std::string_view spec) {
    if (spec.size() > kMaxDiskSpec) {
      return ConfigErr(fmt::format("longer than {} bytes", kMaxDiskSpec));
    }
    size_t pos = 0;
    while (pos < spec.size()) {
      pos = spec.find_first_not_of(kSpace, pos);
      if (pos == std::string_view::npos) break;
      std::string_view rest = spec.substr(pos);
      if (rest.starts_with("target=")) {
        // "it consumes the whole rest of the <diskspec> including trailing whitespaces"; like xl,
        // drop one trailing comma.
        rest.remove_prefix(7);
        if (rest.ends_with(',')) rest.remove_suffix(1);
        XPV_TRY(SetString(target_, "target", rest));
        break;
      }
      const size_t comma = rest.find(',');
      const std::string_view token = Trim(rest.substr(0, comma));
      pos = comma == std::string_view::npos ? spec.size() : pos + comma + 1;
      XPV_TRY(Parameter(token));
    }
    return Finish();
  }

 private:
  ConfigStatus Parameter(std::string_view token) {
    const size_t eq = token.find('=');
    if (eq != std::string_view::npos) {
      const std::string_view key = token.substr(0, eq);
      if (!IsKeyWord(key)) {
        return ConfigErr(fmt::format("unexpected \"=\" in {} (a target with \"=\" needs target=)",
                                     QuoteForMessage(token)));
      }
      return Keyword(key, token.substr(eq + 1));
    }
    if (token == "cdrom") return SetDevType(DiskDevType::kCdrom);
    if (token == "discard") return SetDiscard(DiskDiscard::kEnabled);
    if (token == "no-discard") return SetDiscard(DiskDiscard::kDisabled);
    if (token == "direct-io-safe") {
      direct_io_ = DiskDirectIo::kSafe;
      return ConfigOk();
    }
    if (Contains(kUnsupportedFlags, token)) {
      return ConfigErr(fmt::format("{} is not supported", QuoteForMessage(token)));
    }
    return Positional(token);
  }

  ConfigStatus Keyword(std::string_view key, std::string_view value) {
    if (key == "format") return SetString(format_, "format", value);
    if (key == "vdev") return SetString(vdev_, "vdev", value);
    if (key == "access") return SetString(access_, "access", value);
    if (key == "backend") return SetString(backend_, "backend", value);
    if (key == "script") return SetString(script_, "script", value);
    if (key == "devtype") {
      if (value.empty()) return ConfigOk();
      if (value == "disk") return SetDevType(DiskDevType::kDisk);
      if (value == "cdrom") return SetDevType(DiskDevType::kCdrom);
      return ConfigErr(
          fmt::format("unknown devtype {} (use disk or cdrom)", QuoteForMessage(value)));
    }
    if (key == "backendtype") {
      if (value.empty()) return ConfigOk();
      for (const auto& [name, type] : kBackendTypes) {
        if (name == value) {
          if (!Assign(backendtype_, type)) return ConfigErr("backendtype given twice");
          return ConfigOk();
        }
      }
      return ConfigErr(
          fmt::format("unknown backendtype {} (use phy, tap, qdisk, standalone or other)",
                      QuoteForMessage(value)));
    }
    if (key == "specification") {
      if (value.empty()) return ConfigOk();
      DiskSpecification spec;
      if (value == "xen") {
        spec = DiskSpecification::kXen;
      } else if (value == "virtio") {
        spec = DiskSpecification::kVirtio;
      } else {
        return ConfigErr(
            fmt::format("unknown specification {} (use xen or virtio)", QuoteForMessage(value)));
      }
      if (!Assign(specification_, spec)) return ConfigErr("specification given twice");
      return ConfigOk();
    }
    return ConfigErr(fmt::format("unknown parameter {}", QuoteForMessage(key)));
  }

  // xl fills the positional parameters still unspecified, in the order target, format, vdev,
  // access; after a deprecated prefix the format position is skipped (old syntax:
  // "[<format>:][<target>],<vdev>[:<devtype>],<access>").
  ConfigStatus Positional(std::string_view token) {
    if (!target_) {
      XPV_ASSIGN_OR_RETURN(token, StripDeprecatedPrefixes(token));
      return SetString(target_, "target", token);
    }
    if (!format_ && !had_deprecated_prefix_) {
      // xend's empty cdrom: ",hdc:cdrom,r".
      if (target_->empty() && token.find(':') != std::string_view::npos) {
        format_ = "empty";
        return VdevWithDevType(token);
      }
      return SetString(format_, "format", token);
    }
    if (!vdev_) {
      if (token.find(':') != std::string_view::npos) return VdevWithDevType(token);
      return SetString(vdev_, "vdev", token);
    }
    if (!access_) return SetString(access_, "access", token);
    return ConfigErr(fmt::format("too many positional parameters at {}", QuoteForMessage(token)));
  }

  ConfigResult<std::string_view> StripDeprecatedPrefixes(std::string_view token) {
    for (;;) {
      const size_t colon = token.find(':');
      if (colon == std::string_view::npos) return token;
      const std::string_view prefix = token.substr(0, colon);
      const std::string_view rest = token.substr(colon + 1);
      if (!IsPrefixWord(prefix)) return token;
      if (Contains(kFormatPrefixes, prefix)) {
        XPV_TRY(SetString(format_, "format", prefix));
      } else if (Contains(kScriptPrefixes, prefix)) {
        XPV_TRY(SetString(script_, "script", fmt::format("block-{}", prefix)));
      } else if (!Contains(kIgnoredPrefixes, prefix)) {
        // "host:1234" after "nbd:" is a target, not a prefix; "foo:/x" is an unknown prefix.
        if (!rest.empty() && (IsLower(rest[0]) || IsDigit(rest[0]))) return token;
        return ConfigErr(fmt::format("unknown deprecated prefix {}",
                                     QuoteForMessage(token.substr(0, colon + 1))));
      }
      had_deprecated_prefix_ = true;
      token = rest;
    }
  }

  // Deprecated "<vdev>:<devtype>".
  ConfigStatus VdevWithDevType(std::string_view token) {
    const size_t colon = token.rfind(':');
    const std::string_view type = token.substr(colon + 1);
    XPV_TRY(SetString(vdev_, "vdev", token.substr(0, colon)));
    if (type == "cdrom") return SetDevType(DiskDevType::kCdrom);
    if (type == "disk") return SetDevType(DiskDevType::kDisk);
    return ConfigErr(fmt::format("unknown deprecated device type {}", QuoteForMessage(type)));
  }

  // "Each parameter may be specified at most once"; an earlier empty value does not count.
  static ConfigStatus SetString(std::optional<std::string>& field, std::string_view name,
                                std::string_view value) {
    if (field && !field->empty() && !value.empty()) {
      return ConfigErr(fmt::format("{} given twice", name));
    }
    if (!field || !value.empty()) field = std::string(value);
    return ConfigOk();
  }

  ConfigStatus SetDevType(DiskDevType type) {
    if (!Assign(devtype_, type)) return ConfigErr("devtype given twice");
    return ConfigOk();
  }

  ConfigStatus SetDiscard(DiskDiscard discard) {
    if (!Assign(discard_, discard)) return ConfigErr("discard given twice");
    return ConfigOk();
  }

  ConfigResult<DiskSpec> Finish() const {
    DiskSpec disk;
    if (!vdev_ || vdev_->empty()) return ConfigErr("missing vdev");
    XPV_ASSIGN_OR_RETURN(disk.vdev, ParseVirtualDevice(*vdev_));
    disk.devtype = devtype_.value_or(DiskDevType::kDisk);
    disk.target = target_.value_or("");

    const std::string format = format_.value_or("");
    if (!format.empty()) {
      bool known = false;
      for (const auto& [name, value] : kFormats) {
        if (name == format) {
          disk.format = value;
          known = true;
        }
      }
      if (!known) {
        return ConfigErr(fmt::format("unknown format {} (use raw, qcow, qcow2, vhd, qed or empty)",
                                     QuoteForMessage(format)));
      }
    }

    const std::string access = access_.value_or("");
    if (access.empty()) {
      disk.access =
          disk.devtype == DiskDevType::kCdrom ? DiskAccess::kReadOnly : DiskAccess::kReadWrite;
    } else if (access == "ro" || access == "r") {
      disk.access = DiskAccess::kReadOnly;
    } else if (access == "rw" || access == "w") {
      disk.access = DiskAccess::kReadWrite;
    } else {
      return ConfigErr(fmt::format("unknown access {} (use ro or rw)", QuoteForMessage(access)));
    }

    // "for a cdrom device, lack of this attribute would imply an empty cdrom drive".
    if (disk.target.empty()) {
      if (disk.devtype != DiskDevType::kCdrom) return ConfigErr("missing target");
      disk.format = DiskFormat::kEmpty;
    } else if (disk.format == DiskFormat::kEmpty) {
      return ConfigErr("format empty is for an empty cdrom drive, but a target is given");
    }

    disk.backendtype = backendtype_.value_or(DiskBackendType::kAuto);
    disk.specification = specification_.value_or(DiskSpecification::kXen);
    disk.backend = backend_.value_or("");
    if (!disk.backend.empty()) {
      if (auto checked = CheckDomainRef(disk.backend); !checked) {
        return ConfigErr("backend: " + checked.error().message);
      }
    }
    disk.script = script_.value_or("");
    disk.discard = discard_.value_or(DiskDiscard::kEnabled);
    disk.direct_io = direct_io_;
    return disk;
  }

  std::optional<std::string> target_, format_, vdev_, access_, backend_, script_;
  std::optional<DiskDevType> devtype_;
  std::optional<DiskBackendType> backendtype_;
  std::optional<DiskSpecification> specification_;
  std::optional<DiskDiscard> discard_;
  DiskDirectIo direct_io_ = DiskDirectIo::kDefault;
  bool had_deprecated_prefix_ = false;
};

}  // namespace

ConfigResult<DiskSpec> ParseDiskSpec(std::string_view spec) {
  return DiskSpecParser().Parse(spec);
}

std::string_view ToString(DiskFormat format) {
  for (const auto& [name, value] : kFormats) {
    if (value == format) return name;
  }
  return "raw";
}

std::string_view ToString(DiskBackendType type) {
  for (const auto& [name, value] : kBackendTypes) {
    if (value == type) return name;
  }
  return "auto";
}

std::string ToString(const DiskSpec& disk) {
  std::vector<std::string> parts;
  parts.push_back(fmt::format("format={}", ToString(disk.format)));
  parts.push_back(fmt::format("vdev={}", disk.vdev.name));
  parts.push_back(disk.access == DiskAccess::kReadOnly ? "access=ro" : "access=rw");
  if (disk.devtype == DiskDevType::kCdrom) parts.push_back("devtype=cdrom");
  if (disk.backendtype != DiskBackendType::kAuto) {
    parts.push_back(fmt::format("backendtype={}", ToString(disk.backendtype)));
  }
  if (disk.specification == DiskSpecification::kVirtio) parts.push_back("specification=virtio");
  if (!disk.backend.empty()) parts.push_back(fmt::format("backend={}", disk.backend));
  if (!disk.script.empty()) parts.push_back(fmt::format("script={}", disk.script));
  if (disk.direct_io == DiskDirectIo::kSafe) parts.push_back("direct-io-safe");
  if (disk.discard == DiskDiscard::kDisabled) parts.push_back("no-discard");
  if (!disk.target.empty()) {
    // The parser drops one trailing comma after target=; give it one to drop.
    parts.push_back(fmt::format("target={}{}", disk.target, disk.target.ends_with(',') ? "," : ""));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace xpv::toolstack
