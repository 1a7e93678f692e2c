#include "xpv/toolstack/disk_spec.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

namespace xpv::toolstack {
namespace {

template <typename T>
std::string ErrorOf(const ConfigResult<T>& result) {
  return result ? "OK" : result.error().message;
}

uint32_t Number(std::string_view vdev) {
  auto parsed = ParseVirtualDevice(vdev);
  EXPECT_TRUE(parsed) << vdev << ": " << ErrorOf(parsed);
  return parsed ? parsed->number : 0;
}

DiskSpec Parse(std::string_view spec) {
  auto disk = ParseDiskSpec(spec);
  EXPECT_TRUE(disk) << spec << ": " << ErrorOf(disk);
  return disk ? *disk : DiskSpec{};
}

// --- vdev (docs/misc/vbd-interface.txt) ---

TEST(VirtualDeviceTest, XenDisksUpTo15UseThe202Encoding) {
  EXPECT_EQ(Number("xvda"), 51712u);  // 202 << 8
  EXPECT_EQ(Number("xvdb"), 51728u);
  EXPECT_EQ(Number("xvda1"), 51713u);
  EXPECT_EQ(Number("xvdp"), (202u << 8) | (15u << 4));
  EXPECT_EQ(Number("xvdp15"), (202u << 8) | (15u << 4) | 15u);
  auto xvdb2 = ParseVirtualDevice("xvdb2");
  ASSERT_TRUE(xvdb2);
  EXPECT_EQ(xvdb2->kind, VirtualDevice::Kind::kXen);
  EXPECT_EQ(xvdb2->disk, 1u);
  EXPECT_EQ(xvdb2->partition, 2u);
  EXPECT_EQ(xvdb2->name, "xvdb2");
}

TEST(VirtualDeviceTest, XenDisksBeyond15OrPartitionsBeyond15UseTheExtendedEncoding) {
  EXPECT_EQ(Number("xvdq"), (1u << 28) | (16u << 8));
  EXPECT_EQ(Number("xvdz"), (1u << 28) | (25u << 8));
  EXPECT_EQ(Number("xvdaa"), (1u << 28) | (26u << 8));
  EXPECT_EQ(Number("xvda16"), (1u << 28) | 16u);
  EXPECT_EQ(Number("xvda255"), (1u << 28) | 255u);
  // vbd-interface.txt's own example: d536p37 is xvdtq37.
  EXPECT_EQ(Number("xvdtq37"), (1u << 28) | (536u << 8) | 37u);
  EXPECT_EQ(Number("xvdtq37"), Number("d536p37"));
}

TEST(VirtualDeviceTest, DFormNamesXenDisksByNumber) {
  EXPECT_EQ(Number("d0"), 51712u);
  EXPECT_EQ(Number("d0p0"), 51712u);
  EXPECT_EQ(Number("d1p2"), 51730u);
  EXPECT_EQ(Number("d1048575p255"), (1u << 28) | (1048575u << 8) | 255u);
}

TEST(VirtualDeviceTest, ScsiAndIdeDisks) {
  EXPECT_EQ(Number("sda"), 2048u);  // 8 << 8
  EXPECT_EQ(Number("sdb3"), 2048u + 16 + 3);
  EXPECT_EQ(Number("sdp15"), 2048u + 240 + 15);
  EXPECT_EQ(Number("hda"), 768u);  // 3 << 8
  EXPECT_EQ(Number("hdb"), 768u + 64);
  EXPECT_EQ(Number("hda63"), 768u + 63);
  EXPECT_EQ(Number("hdc"), 22u << 8);
  EXPECT_EQ(Number("hdd2"), (22u << 8) + 64 + 2);
  EXPECT_EQ(ParseVirtualDevice("sdb")->kind, VirtualDevice::Kind::kScsi);
  EXPECT_EQ(ParseVirtualDevice("hdc")->kind, VirtualDevice::Kind::kIde);
}

TEST(VirtualDeviceTest, NumbersAreWrittenAsTheyAre) {
  EXPECT_EQ(Number("51712"), 51712u);
  EXPECT_EQ(Number("0xca00"), 51712u);
  EXPECT_EQ(Number("0145000"), 51712u);
  EXPECT_EQ(Number("2147483647"), 2147483647u);
  EXPECT_EQ(ParseVirtualDevice("768")->kind, VirtualDevice::Kind::kNumber);
}

TEST(VirtualDeviceTest, MalformedNamesAreInvalid) {
  for (const char* bad : {"", "xvd", "xvdA", "xvda0", "xvda01", "xvda1x", "d", "dp1", "d1p", "d01",
                          "d1p01", "sd", "hd1", "12ab", "foo", "vda", "xvda-1"}) {
    EXPECT_EQ(ErrorOf(ParseVirtualDevice(bad)), fmt::format("invalid vdev \"{}\"", bad)) << bad;
  }
}

TEST(VirtualDeviceTest, OutOfRangeNamesSayTheLimits) {
  EXPECT_EQ(
      ErrorOf(ParseVirtualDevice("xvda256")),
      R"(vdev "xvda256" is out of range (xvd disks go up to 2^20 - 1, partitions up to 255))");
  EXPECT_EQ(
      ErrorOf(ParseVirtualDevice("d1048576")),
      R"(vdev "d1048576" is out of range (xvd disks go up to 2^20 - 1, partitions up to 255))");
  EXPECT_EQ(ErrorOf(ParseVirtualDevice("xvdzzzzzzzzzzzzzzzzzz")),
            R"(vdev "xvdzzzzzzzzzzzzzzzzzz" is out of range (xvd disks go up to 2^20 - 1, )"
            R"(partitions up to 255))");
  EXPECT_EQ(ErrorOf(ParseVirtualDevice("sdq")),
            R"(vdev "sdq" is out of range (sd disks go up to sdp, partitions up to 15))");
  EXPECT_EQ(ErrorOf(ParseVirtualDevice("sda16")),
            R"(vdev "sda16" is out of range (sd disks go up to sdp, partitions up to 15))");
  EXPECT_EQ(ErrorOf(ParseVirtualDevice("hde")),
            R"(vdev "hde" is out of range (hd disks go up to hdd, partitions up to 63))");
  EXPECT_EQ(ErrorOf(ParseVirtualDevice("hda64")),
            R"(vdev "hda64" is out of range (hd disks go up to hdd, partitions up to 63))");
  EXPECT_EQ(ErrorOf(ParseVirtualDevice("2147483648")),
            R"(vdev "2147483648" is out of range (at most 2147483647))");
}

// --- disk specs (docs/misc/xl-disk-configuration.txt) ---

TEST(DiskSpecTest, TheDocsFirstEquivalentFormsAgree) {
  DiskSpec expected;
  expected.target = "/dev/vg/guest-volume";
  expected.vdev = *ParseVirtualDevice("hda");
  for (const char* spec : {"/dev/vg/guest-volume,,hda", "/dev/vg/guest-volume,raw,hda,rw",
                           "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
                           "raw:/dev/vg/guest-volume,hda,w"}) {
    EXPECT_EQ(Parse(spec), expected) << spec;
  }
  EXPECT_EQ(ToString(expected), "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume");
}

TEST(DiskSpecTest, TheDocsCdromFormsAgree) {
  DiskSpec expected;
  expected.target = "/root/image.iso";
  expected.vdev = *ParseVirtualDevice("hdc");
  expected.access = DiskAccess::kReadOnly;
  expected.devtype = DiskDevType::kCdrom;
  for (const char* spec : {"/root/image.iso,,hdc,cdrom", "/root/image.iso,,hdc,,cdrom",
                           "/root/image.iso,raw,hdc,devtype=cdrom",
                           "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
                           "raw:/root/image.iso,hdc:cdrom,ro"}) {
    EXPECT_EQ(Parse(spec), expected) << spec;
  }
  EXPECT_EQ(ToString(expected),
            "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso");
}

TEST(DiskSpecTest, EmptyCdromDrive) {
  DiskSpec expected;
  expected.format = DiskFormat::kEmpty;
  expected.vdev = *ParseVirtualDevice("hdc");
  expected.access = DiskAccess::kReadOnly;
  expected.devtype = DiskDevType::kCdrom;
  EXPECT_EQ(Parse(",hdc:cdrom,r"), expected);  // xend's empty-cdrom syntax
  EXPECT_EQ(Parse("vdev=hdc, devtype=cdrom"), expected);
  EXPECT_EQ(Parse(",,hdc,,cdrom"), expected);
  EXPECT_EQ(ToString(expected), "format=empty, vdev=hdc, access=ro, devtype=cdrom");
}

TEST(DiskSpecTest, PositionalParametersFillTheSlotsLeftOpen) {
  const DiskSpec disk = Parse("vdev=xvdb, /srv/b.qcow2, qcow2, ro");
  EXPECT_EQ(disk.target, "/srv/b.qcow2");
  EXPECT_EQ(disk.format, DiskFormat::kQcow2);
  EXPECT_EQ(disk.vdev.name, "xvdb");
  EXPECT_EQ(disk.access, DiskAccess::kReadOnly);
}

TEST(DiskSpecTest, EveryKeywordAndFlag) {
  const DiskSpec disk = Parse(
      "backendtype=qdisk, specification=virtio, backend=storage-dom, script=block-drbd, "
      "direct-io-safe, no-discard, format=vhd, vdev=xvdb, access=w, devtype=disk, "
      "target=/srv/b.vhd");
  EXPECT_EQ(disk.backendtype, DiskBackendType::kQdisk);
  EXPECT_EQ(disk.specification, DiskSpecification::kVirtio);
  EXPECT_EQ(disk.backend, "storage-dom");
  EXPECT_EQ(disk.script, "block-drbd");
  EXPECT_EQ(disk.direct_io, DiskDirectIo::kSafe);
  EXPECT_EQ(disk.discard, DiskDiscard::kDisabled);
  EXPECT_EQ(disk.format, DiskFormat::kVhd);
  EXPECT_EQ(disk.access, DiskAccess::kReadWrite);
  EXPECT_EQ(disk.devtype, DiskDevType::kDisk);
  EXPECT_EQ(disk.target, "/srv/b.vhd");
  EXPECT_EQ(ToString(disk),
            "format=vhd, vdev=xvdb, access=rw, backendtype=qdisk, specification=virtio, "
            "backend=storage-dom, script=block-drbd, direct-io-safe, no-discard, "
            "target=/srv/b.vhd");
  EXPECT_EQ(Parse("/x,,xvda,backend=0").backend, "0");
  EXPECT_EQ(Parse("/x,,xvda,discard").discard, DiskDiscard::kEnabled);
  EXPECT_EQ(Parse("/x,,xvda,backendtype=phy").backendtype, DiskBackendType::kPhy);
  EXPECT_EQ(Parse("/x,,xvda,backendtype=tap").backendtype, DiskBackendType::kTap);
  EXPECT_EQ(Parse("/x,,xvda,backendtype=standalone").backendtype, DiskBackendType::kStandalone);
  EXPECT_EQ(Parse("/x,,xvda,backendtype=other").backendtype, DiskBackendType::kOther);
  EXPECT_EQ(Parse("/x,qcow,xvda").format, DiskFormat::kQcow);
  EXPECT_EQ(Parse("/x,qed,xvda").format, DiskFormat::kQed);
}

TEST(DiskSpecTest, TargetKeywordTakesTheRestCommasIncluded) {
  EXPECT_EQ(Parse("vdev=xvda, target=/srv/a,b.img").target, "/srv/a,b.img");
  EXPECT_EQ(Parse("vdev=xvda,target=/srv/x y , z ").target, "/srv/x y , z ");
  EXPECT_EQ(Parse("vdev=xvda, target=/srv/x,").target, "/srv/x");  // one trailing comma dropped
  EXPECT_EQ(Parse("vdev=xvda, target=host:1234").target, "host:1234");
  // "permissible even if an empty value for the target was already specified as a positional".
  EXPECT_EQ(Parse(",,xvda,target=/srv/x").target, "/srv/x");
}

TEST(DiskSpecTest, WhitespaceAroundParametersIsIgnored) {
  const DiskSpec disk = Parse("  /srv/a.img ,\traw , xvda ,  rw  ");
  EXPECT_EQ(disk.target, "/srv/a.img");
  EXPECT_EQ(disk.vdev.name, "xvda");
}

TEST(DiskSpecTest, DeprecatedPrefixes) {
  EXPECT_EQ(Parse("phy:/dev/vg/guest,xvda,w").target, "/dev/vg/guest");
  EXPECT_EQ(Parse("file:/srv/guest.img,xvda,w").target, "/srv/guest.img");
  const DiskSpec aio = Parse("tap:aio:/srv/guest.img,xvda,r");
  EXPECT_EQ(aio.target, "/srv/guest.img");
  EXPECT_EQ(aio.access, DiskAccess::kReadOnly);
  EXPECT_EQ(Parse("qcow2:/srv/guest.qcow2,xvda,w").format, DiskFormat::kQcow2);
  EXPECT_EQ(Parse("tap2:vhd:/srv/guest.vhd,xvda,w").format, DiskFormat::kVhd);
  const DiskSpec nbd = Parse("nbd:storage:10809,xvda,w");
  EXPECT_EQ(nbd.script, "block-nbd");
  EXPECT_EQ(nbd.target, "storage:10809");
  const DiskSpec iscsi = Parse("iscsi:iqn.2001-05.com.example:disk0,xvdb,w");
  EXPECT_EQ(iscsi.script, "block-iscsi");
  EXPECT_EQ(iscsi.target, "iqn.2001-05.com.example:disk0");
  // Not a prefix: the character after the colon is alphanumeric.
  EXPECT_EQ(Parse("vhost:x,,xvda").target, "vhost:x");
}

TEST(DiskSpecTest, ErrorUnknownParameter) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("vdev=xvda, colour=red, target=/x")),
            R"(unknown parameter "colour")");
}

TEST(DiskSpecTest, ErrorUnsupportedFlag) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("vdev=xvda, untrusted, target=/x")),
            R"("untrusted" is not supported)");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,colo")), R"("colo" is not supported)");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,colo-host=a")), R"(unknown parameter "colo-host")");
}

TEST(DiskSpecTest, ErrorEqualsSignInAPositionalTarget) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/srv/a=b.img,,xvda")),
            R"(unexpected "=" in "/srv/a=b.img" (a target with "=" needs target=))");
}

TEST(DiskSpecTest, ErrorUnknownValues) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,qcow3,xvda")),
            R"(unknown format "qcow3" (use raw, qcow, qcow2, vhd, qed or empty))");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,rx")), R"(unknown access "rx" (use ro or rw))");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,devtype=floppy")),
            R"(unknown devtype "floppy" (use disk or cdrom))");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,backendtype=blk")),
            R"(unknown backendtype "blk" (use phy, tap, qdisk, standalone or other))");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,specification=scsi")),
            R"(unknown specification "scsi" (use xen or virtio))");
}

TEST(DiskSpecTest, ErrorParameterGivenTwice) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,vdev=xvdb")), "vdev given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,raw,xvda,format=qcow2")), "format given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,rw,access=ro")), "access given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,target=/y")), "target given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,backend=a,backend=b")), "backend given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,script=a,script=b")), "script given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,cdrom,devtype=disk")), "devtype given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,discard,no-discard")), "discard given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,backendtype=phy,backendtype=tap")),
            "backendtype given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,specification=xen,specification=virtio")),
            "specification given twice");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("raw:/x,xvda,w,format=qcow2")), "format given twice");
  // An empty value is "not specified": it neither counts nor overrides.
  EXPECT_EQ(Parse("/x,,xvda,format=,vdev=").vdev.name, "xvda");
}

TEST(DiskSpecTest, ErrorTooManyPositionalParameters) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,raw,xvda,rw,spare")),
            R"(too many positional parameters at "spare")");
}

TEST(DiskSpecTest, ErrorUnknownDeprecatedPrefix) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("foo:/srv/x,xvda,w")), R"(unknown deprecated prefix "foo:")");
}

TEST(DiskSpecTest, ErrorUnknownDeprecatedDeviceType) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec(",hdc:floppy,r")), R"(unknown deprecated device type "floppy")");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,raw,hdc:tape")), R"(unknown deprecated device type "tape")");
}

TEST(DiskSpecTest, ErrorMissingVdev) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("")), "missing vdev");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("  ")), "missing vdev");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/srv/x.img")), "missing vdev");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/srv/x.img,raw,")), "missing vdev");
}

TEST(DiskSpecTest, ErrorMissingTargetForADisk) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec(",,xvda")), "missing target");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("vdev=xvda")), "missing target");
}

TEST(DiskSpecTest, ErrorEmptyFormatWithATarget) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,empty,hdc,cdrom")),
            "format empty is for an empty cdrom drive, but a target is given");
}

TEST(DiskSpecTest, ErrorBadVdev) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvdz0")), R"(invalid vdev "xvdz0")");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,sdq")),
            R"(vdev "sdq" is out of range (sd disks go up to sdp, partitions up to 15))");
}

TEST(DiskSpecTest, ErrorBadBackend) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,backend=a b")),
            R"(backend: "a b": only letters, digits, "_", "-" and "." are allowed)");
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/x,,xvda,backend=40000")),
            R"(backend: domain id "40000" is out of range)");
}

TEST(DiskSpecTest, ErrorTooLong) {
  EXPECT_EQ(ErrorOf(ParseDiskSpec("/" + std::string(5000, 'x') + ",,xvda")),
            "longer than 4096 bytes");
}

TEST(DiskSpecTest, ToStringRoundTrips) {
  for (const char* spec :
       {"/srv/a.img,,xvda", "phy:/dev/vg/guest,xvda,w", ",hdc:cdrom,r",
        "vdev=xvda, target=/srv/a,b.img", "vdev=xvda, target=/srv/x,,", "vdev=xvda,target= /lead",
        "nbd:storage:10809,xvdb,r", "/srv/c.img,qcow2,d3p1,ro,backendtype=tap,no-discard",
        "/srv/d.img,,51712,backend=7,script=block-custom x,specification=virtio,direct-io-safe"}) {
    const DiskSpec disk = Parse(spec);
    auto again = ParseDiskSpec(ToString(disk));
    ASSERT_TRUE(again) << ToString(disk) << ": " << ErrorOf(again);
    EXPECT_EQ(*again, disk) << spec << " -> " << ToString(disk);
  }
}

}  // namespace
}  // namespace xpv::toolstack
