#include "xpv/toolstack/xl_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace xpv::toolstack {
namespace {

template <typename T>
std::string ErrorOf(const ConfigResult<T>& result) {
  return result ? "OK" : result.error().message;
}

XlSettings Settings(std::string_view text) {
  auto settings = ParseXlConfig("guest.cfg", text);
  EXPECT_TRUE(settings) << ErrorOf(settings);
  return settings ? *settings : XlSettings{};
}

std::string SyntaxError(std::string_view text) {
  return ErrorOf(ParseXlConfig("guest.cfg", text));
}

DomainConfig Domain(std::string_view text) {
  auto config = ParseDomainConfig("guest.cfg", text);
  EXPECT_TRUE(config) << ErrorOf(config);
  return config ? *config : DomainConfig{};
}

std::string DomainError(std::string_view text) {
  return ErrorOf(ParseDomainConfig("guest.cfg", text));
}

using S = XlValue;

// A PV guest written the way Xen's example configs (xlexample.pvlinux) and xl.cfg(5) write them.
constexpr std::string_view kPvGuest = R"(# A paravirtualised guest with one disk and one NIC.

name = "example.pvlinux"
#uuid = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"

kernel = "/boot/vmlinuz"
ramdisk = "/boot/initrd.gz"
root = "/dev/xvda1 ro"
extra = "console=hvc0 quiet"

memory = 1024       # MiB
maxmem = 2048
vcpus = 2

on_poweroff = 'destroy'; on_reboot = 'restart'; on_crash = 'preserve'

vif = [ 'mac=00:16:3E:74:3d:76,bridge=xenbr0' ]
disk = [
    '/dev/vg/guest-volume,raw,xvda,rw',   # the root disk
    'format=raw, vdev=xvdb, access=ro, target=/srv/data,2024.img',
    '/root/image.iso,,hdc,cdrom',
]
cpus = ["2-3", "5"]
)";

// --- the grammar ---

TEST(XlSyntaxTest, StringsNumbersAndLists) {
  const XlSettings s =
      Settings("a = \"double\"\nb = 'single'\nc = 512\nd = 0x200\ne = [ \"x\", 'y', 3 ]\nf = []\n");
  EXPECT_EQ(s.at("a"), S::String("double"));
  EXPECT_EQ(s.at("b"), S::String("single"));
  EXPECT_EQ(s.at("c"), S::Number("512"));
  EXPECT_EQ(s.at("d"), S::Number("0x200"));
  EXPECT_EQ(s.at("e"), S::List({S::String("x"), S::String("y"), S::Number("3")}));
  EXPECT_EQ(s.at("f"), S::List({}));
  EXPECT_EQ(s.size(), 6u);
}

TEST(XlSyntaxTest, SemicolonsSeparateSettings) {
  const XlSettings s = Settings("a=1; b=2;; c=3;\n;d=4");
  EXPECT_EQ(s.size(), 4u);
  EXPECT_EQ(s.at("d"), S::Number("4"));
}

TEST(XlSyntaxTest, CommentsBlankLinesAndLineEndings) {
  const XlSettings s = Settings(
      "# leading comment\n\n   \t\na = 1 # trailing comment\r\nb = \"x # not a comment\"\r\n"
      "# comment at the end without a newline");
  EXPECT_EQ(s.at("a"), S::Number("1"));
  EXPECT_EQ(s.at("b"), S::String("x # not a comment"));
  EXPECT_EQ(Settings("").size(), 0u);
  EXPECT_EQ(Settings("a = 1").size(), 1u);  // no newline at the end
}

TEST(XlSyntaxTest, ListsSpanLinesWithCommentsAndATrailingComma) {
  const XlSettings s = Settings(
      "disk = [\n"
      "  'a',  # first\n"
      "\n"
      "  'b'\n"
      "  ,\n"
      "  'c',\n"
      "]\n"
      "x = 1\n");
  const XlValue& disk = s.at("disk");
  ASSERT_EQ(disk.items.size(), 3u);
  EXPECT_EQ(disk.line, 1);
  EXPECT_EQ(disk.items[0].line, 2);
  EXPECT_EQ(disk.items[1].line, 4);
  EXPECT_EQ(disk.items[2].line, 6);
  EXPECT_EQ(s.at("x").line, 8);
}

TEST(XlSyntaxTest, ListsNestUpToEightDeep) {
  const XlSettings s = Settings("vnuma = [ [ \"pnode=0\", \"size=512\" ], [ \"pnode=1\" ] ]");
  EXPECT_EQ(s.at("vnuma"), S::List({S::List({S::String("pnode=0"), S::String("size=512")}),
                                    S::List({S::String("pnode=1")})}));
  EXPECT_EQ(Settings("a = [[[[[[[[1]]]]]]]]").size(), 1u);
  EXPECT_EQ(SyntaxError("a = [[[[[[[[[1]]]]]]]]]"), "guest.cfg:1: lists nested more than 8 deep");
}

TEST(XlSyntaxTest, Escapes) {
  const XlSettings s = Settings(R"(a = "q\"q\'q\\q\a\b\f\n\r\t\v"
b = 'it\'s'
c = "\x41\x7a\101\60\7")");
  EXPECT_EQ(s.at("a").text, "q\"q'q\\q\a\b\f\n\r\t\v");
  EXPECT_EQ(s.at("b").text, "it's");
  EXPECT_EQ(s.at("c").text, "Az\x41\x30\x07");
}

TEST(XlSyntaxTest, ErrorUnterminatedString) {
  EXPECT_EQ(SyntaxError("name = \"web\"\n\n\n\n\n\nkernel = \"/usr/bin/x\nmemory = 5\n"),
            "guest.cfg:7: unterminated string");
  EXPECT_EQ(SyntaxError("a = 'abc"), "guest.cfg:1: unterminated string");
  EXPECT_EQ(SyntaxError("a = 'abc\\"), "guest.cfg:1: unterminated string");
  EXPECT_EQ(SyntaxError("a = 'abc\\\nd'"), "guest.cfg:1: unterminated string");
}

TEST(XlSyntaxTest, ErrorBadEscape) {
  EXPECT_EQ(SyntaxError(R"(a = "\q")"), R"(guest.cfg:1: invalid escape "\q" in string)");
  EXPECT_EQ(SyntaxError("a = \"\\\x01\""), "guest.cfg:1: invalid escape in string");
  EXPECT_EQ(SyntaxError(R"(a = "\x4")"), R"(guest.cfg:1: \x in a string needs two hex digits)");
  EXPECT_EQ(SyntaxError(R"(a = "\xg0")"), R"(guest.cfg:1: \x in a string needs two hex digits)");
  EXPECT_EQ(SyntaxError(R"(a = "\777")"), R"(guest.cfg:1: octal escape in a string is above \377)");
}

TEST(XlSyntaxTest, ErrorNulByteInString) {
  EXPECT_EQ(SyntaxError(R"(a = "x\0y")"), "guest.cfg:1: NUL byte in string");
  EXPECT_EQ(SyntaxError(R"(a = "x\x00y")"), "guest.cfg:1: NUL byte in string");
  EXPECT_EQ(SyntaxError(std::string("a = \"x\0y\"", 9)), "guest.cfg:1: NUL byte in string");
}

TEST(XlSyntaxTest, ErrorUnexpectedCharacter) {
  EXPECT_EQ(SyntaxError("a = 1\nb = $HOME\n"), R"(guest.cfg:2: unexpected character "$")");
  EXPECT_EQ(SyntaxError("a = -1"), R"(guest.cfg:1: unexpected character "-")");
  EXPECT_EQ(SyntaxError("a = \x01"), "guest.cfg:1: unexpected byte 0x01");
  EXPECT_EQ(SyntaxError("a = 1.5"), R"(guest.cfg:1: unexpected character ".")");
}

TEST(XlSyntaxTest, ErrorPlusEqualsIsNotSupported) {
  EXPECT_EQ(SyntaxError("a = [1]\na += [2]"),
            R"(guest.cfg:2: "+=" is not supported; give the whole value with "=")");
}

TEST(XlSyntaxTest, ErrorInvalidNumber) {
  EXPECT_EQ(SyntaxError("memory = 12ab"), R"(guest.cfg:1: invalid number "12ab")");
  EXPECT_EQ(SyntaxError("memory = 08"), R"(guest.cfg:1: invalid number "08")");
}

TEST(XlSyntaxTest, ErrorNotASetting) {
  EXPECT_EQ(SyntaxError("= 5"), R"(guest.cfg:1: expected a setting (KEY = VALUE), got "=")");
  EXPECT_EQ(SyntaxError("\n\n'name' = 5"),
            R"(guest.cfg:3: expected a setting (KEY = VALUE), got "name")");
  EXPECT_EQ(SyntaxError("5 = 5"), "guest.cfg:1: expected a setting (KEY = VALUE), got 5");
}

TEST(XlSyntaxTest, ErrorInvalidKey) {
  EXPECT_EQ(SyntaxError("Name = \"x\""),
            R"(guest.cfg:1: invalid key "Name" (keys are lowercase letters, digits and "_", )"
            R"(starting with a letter))");
  EXPECT_EQ(SyntaxError("_x = 1"),
            R"(guest.cfg:1: invalid key "_x" (keys are lowercase letters, digits and "_", )"
            R"(starting with a letter))");
}

TEST(XlSyntaxTest, ErrorMissingEquals) {
  EXPECT_EQ(SyntaxError("name \"web\""), R"(guest.cfg:1: expected "=" after name, got "web")");
  EXPECT_EQ(SyntaxError("name\n= 1"), R"(guest.cfg:1: expected "=" after name, got end of line)");
}

TEST(XlSyntaxTest, ErrorMissingValue) {
  EXPECT_EQ(SyntaxError("name =\n"), "guest.cfg:1: expected a value, got end of line");
  EXPECT_EQ(SyntaxError("name ="), "guest.cfg:1: expected a value, got end of file");
  EXPECT_EQ(SyntaxError("name = web"),
            "guest.cfg:1: expected a value, got web (strings need quotes)");
}

TEST(XlSyntaxTest, ErrorJunkAfterValue) {
  EXPECT_EQ(SyntaxError("a = 1 2"),
            R"(guest.cfg:1: expected end of line or ";" after the value of a, got 2)");
  EXPECT_EQ(SyntaxError("a = \"x\" \"y\""),
            R"(guest.cfg:1: expected end of line or ";" after the value of a, got "y")");
}

TEST(XlSyntaxTest, ErrorMalformedList) {
  EXPECT_EQ(SyntaxError("a = [1 2]"), R"(guest.cfg:1: expected "," or "]" in the list, got 2)");
  EXPECT_EQ(SyntaxError("a = [ , ]"), R"(guest.cfg:1: expected a value, got ",")");
  EXPECT_EQ(SyntaxError("a = [1,,2]"), R"(guest.cfg:1: expected a value, got ",")");
  EXPECT_EQ(SyntaxError("a = ]"), R"(guest.cfg:1: expected a value, got "]")");
  EXPECT_EQ(SyntaxError("a = [1] ]"),
            R"(guest.cfg:1: expected end of line or ";" after the value of a, got "]")");
}

TEST(XlSyntaxTest, ErrorUnterminatedListNamesTheLineItOpens) {
  EXPECT_EQ(SyntaxError("x = 1\ndisk = [ 'a',\n 'b'\n"), "guest.cfg:2: unterminated list");
  EXPECT_EQ(SyntaxError("disk = ["), "guest.cfg:1: unterminated list");
  EXPECT_EQ(SyntaxError("disk = [ 'a', "), "guest.cfg:1: unterminated list");
}

TEST(XlSyntaxTest, ErrorDuplicateKey) {
  EXPECT_EQ(SyntaxError("name = \"a\"\nname = \"b\"\n"), R"(guest.cfg:2: duplicate key "name")");
  EXPECT_EQ(SyntaxError("a = 1; b = 2; a = [3]"), R"(guest.cfg:1: duplicate key "a")");
}

TEST(XlSyntaxTest, ErrorFileTooLarge) {
  EXPECT_EQ(SyntaxError(std::string((1 << 20) + 1, '\n')), "guest.cfg: larger than 1048576 bytes");
  EXPECT_EQ(Settings(std::string(1 << 20, '\n')).size(), 0u);
}

TEST(XlSyntaxTest, FormatXlValueWritesWhatParsesBack) {
  EXPECT_EQ(FormatXlValue(S::String("a \"b\"\n")), R"("a \"b\"\n")");
  EXPECT_EQ(FormatXlValue(S::Number("0x10")), "0x10");
  EXPECT_EQ(FormatXlValue(S::List({})), "[]");
  const XlValue nested = S::List({S::String("x"), S::List({S::Number("1"), S::List({})})});
  EXPECT_EQ(FormatXlValue(nested), R"([ "x", [ 1, [] ] ])");
  EXPECT_EQ(Settings("v = " + FormatXlValue(nested)).at("v"), nested);
}

// --- the domain config ---

TEST(DomainConfigTest, OnlyANameNeeded) {
  const DomainConfig config = Domain("name = \"web\"\n");
  EXPECT_EQ(config.name, "web");
  EXPECT_EQ(config.memory_mib, kDefaultMemoryMib);
  EXPECT_EQ(config.vcpus, 1u);
  EXPECT_EQ(config.kernel, "");
  EXPECT_EQ(config.cmdline, "");
  EXPECT_TRUE(config.args.empty());
  EXPECT_TRUE(config.disks.empty());
  EXPECT_TRUE(config.vifs.empty());
  EXPECT_TRUE(config.other.empty());
}

TEST(DomainConfigTest, ARealLookingPvGuest) {
  const DomainConfig config = Domain(kPvGuest);
  EXPECT_EQ(config.name, "example.pvlinux");
  EXPECT_EQ(config.memory_mib, 1024u);
  EXPECT_EQ(config.vcpus, 2u);
  EXPECT_EQ(config.kernel, "/boot/vmlinuz");
  EXPECT_EQ(config.ramdisk, "/boot/initrd.gz");
  EXPECT_EQ(config.cmdline, "root=/dev/xvda1 ro console=hvc0 quiet");
  EXPECT_EQ(config.args,
            (std::vector<std::string>{"root=/dev/xvda1", "ro", "console=hvc0", "quiet"}));

  ASSERT_EQ(config.disks.size(), 3u);
  EXPECT_EQ(config.disks[0].target, "/dev/vg/guest-volume");
  EXPECT_EQ(config.disks[0].vdev.number, 51712u);
  EXPECT_EQ(config.disks[1].target, "/srv/data,2024.img");
  EXPECT_EQ(config.disks[1].access, DiskAccess::kReadOnly);
  EXPECT_EQ(config.disks[1].vdev.number, 51728u);
  EXPECT_EQ(config.disks[2].devtype, DiskDevType::kCdrom);
  EXPECT_EQ(config.disks[2].vdev.number, 22u << 8);

  ASSERT_EQ(config.vifs.size(), 1u);
  EXPECT_EQ(config.vifs[0].bridge, "xenbr0");
  EXPECT_EQ(ToString(*config.vifs[0].mac), "00:16:3e:74:3d:76");

  // Keys xpv does not interpret are kept, typed, with their lines.
  EXPECT_EQ(config.other.size(), 5u);
  EXPECT_EQ(config.other.at("maxmem"), S::Number("2048"));
  EXPECT_EQ(config.other.at("maxmem").line, 12);
  EXPECT_EQ(config.other.at("on_crash"), S::String("preserve"));
  EXPECT_EQ(config.other.at("cpus"), S::List({S::String("2-3"), S::String("5")}));
  EXPECT_TRUE(config.other.contains("on_poweroff"));
  EXPECT_TRUE(config.other.contains("on_reboot"));
}

TEST(DomainConfigTest, RoundTripsThroughFormat) {
  for (std::string_view text :
       {kPvGuest, std::string_view("name = \"web\""),
        std::string_view("name='a'; kernel='/bin/prog'; cmdline='-v \"two words\" x\\\\y'; "
                         "vif=['', 'bridge=br1']; weird=[[1, 'x'], [], \"\\x01\"]")}) {
    const DomainConfig config = Domain(text);
    const std::string written = FormatDomainConfig(config);
    auto again = ParseDomainConfig("written.cfg", written);
    ASSERT_TRUE(again) << written << "\n" << ErrorOf(again);
    EXPECT_EQ(*again, config) << written;
  }
}

TEST(DomainConfigTest, FormatWritesCanonicalXlCfg) {
  const DomainConfig config = Domain(
      "name='db'; memory=\"0x200\"; kernel='/usr/lib/xpv/guest'; extra='--port 80'\n"
      "disk=['/srv/db.img,,xvda']; on_crash='destroy'");
  EXPECT_EQ(FormatDomainConfig(config),
            "name = \"db\"\n"
            "memory = 512\n"
            "vcpus = 1\n"
            "kernel = \"/usr/lib/xpv/guest\"\n"
            "cmdline = \"--port 80\"\n"
            "disk = [\n"
            "    \"format=raw, vdev=xvda, access=rw, target=/srv/db.img\",\n"
            "]\n"
            "on_crash = \"destroy\"\n");
}

TEST(DomainConfigTest, NumbersMayBeQuotedHexOrOctal) {
  EXPECT_EQ(Domain("name='a'; memory='512'").memory_mib, 512u);
  EXPECT_EQ(Domain("name='a'; memory=0x200").memory_mib, 512u);
  EXPECT_EQ(Domain("name='a'; memory=01000").memory_mib, 512u);
  EXPECT_EQ(Domain("name='a'; vcpus=\"4\"").vcpus, 4u);
  EXPECT_EQ(Domain("name='a'; vcpus=128").vcpus, kMaxVcpus);
  EXPECT_EQ(Domain("name='a'; memory=16777216").memory_mib, kMaxMemoryMib);
}

TEST(DomainConfigTest, ErrorMissingName) {
  EXPECT_EQ(DomainError("memory = 5\n"), R"(guest.cfg: missing required key "name")");
  EXPECT_EQ(DomainError(""), R"(guest.cfg: missing required key "name")");
}

TEST(DomainConfigTest, ErrorNameNotAString) {
  EXPECT_EQ(DomainError("name = 12"), "guest.cfg:1: name: expected a string, got 12");
  EXPECT_EQ(DomainError("\nname = ['a']"), "guest.cfg:2: name: expected a string, got a list");
}

TEST(DomainConfigTest, ErrorInvalidName) {
  EXPECT_EQ(DomainError("name = 'a b'"),
            R"(guest.cfg:1: name: "a b": only letters, digits, "_", "-" and "." are allowed)");
  EXPECT_EQ(DomainError("name = ''"), "guest.cfg:1: name: must not be empty");
  EXPECT_EQ(DomainError("name = '42'"),
            R"(guest.cfg:1: name: "42" is all digits, which reads as a domain id)");
  EXPECT_EQ(DomainError("name = '../etc'"),
            R"(guest.cfg:1: name: "../etc": only letters, digits, "_", "-" and "." are allowed)");
}

TEST(DomainConfigTest, ErrorMemoryNotANumber) {
  EXPECT_EQ(DomainError("name = 'web'\n\nmemory = \"lots\"\n"),
            R"(guest.cfg:3: memory: expected a number, got "lots")");
  EXPECT_EQ(DomainError("name = 'web'\nmemory = [512]"),
            "guest.cfg:2: memory: expected a number, got a list");
  EXPECT_EQ(DomainError("name = 'web'\nmemory = '-5'"),
            R"(guest.cfg:2: memory: expected a number, got "-5")");
}

TEST(DomainConfigTest, ErrorMemoryOutOfRange) {
  EXPECT_EQ(DomainError("name = 'web'\nmemory = 0"),
            "guest.cfg:2: memory: must be at least 1, got 0");
  EXPECT_EQ(DomainError("name = 'web'\nmemory = 16777217"),
            "guest.cfg:2: memory: 16777217 MiB is more than 16777216 MiB");
  EXPECT_EQ(DomainError("name = 'web'\nmemory = 0xffffffffffffffff"),
            "guest.cfg:2: memory: 18446744073709551615 MiB is more than 16777216 MiB");
}

TEST(DomainConfigTest, ErrorVcpus) {
  EXPECT_EQ(DomainError("name = 'web'\nvcpus = 'two'"),
            R"(guest.cfg:2: vcpus: expected a number, got "two")");
  EXPECT_EQ(DomainError("name = 'web'\nvcpus = 0"),
            "guest.cfg:2: vcpus: must be at least 1, got 0");
  EXPECT_EQ(DomainError("name = 'web'\nvcpus = 129"), "guest.cfg:2: vcpus: 129 is more than 128");
}

TEST(DomainConfigTest, ErrorKernel) {
  EXPECT_EQ(DomainError("name = 'web'\nkernel = 5"),
            "guest.cfg:2: kernel: expected a string, got 5");
  EXPECT_EQ(DomainError("name = 'web'\nkernel = ''"), "guest.cfg:2: kernel: must not be empty");
  EXPECT_EQ(DomainError("name = 'web'\nkernel = '/k'\nramdisk = ''"),
            "guest.cfg:3: ramdisk: must not be empty");
}

TEST(DomainConfigTest, CommandLineFromCmdlineOrRootAndExtra) {
  const DomainConfig cmdline =
      Domain("name='a'; kernel='/bin/prog'; cmdline=\"--name 'my guest' -v \\\"x y\\\"\"");
  EXPECT_EQ(cmdline.cmdline, "--name 'my guest' -v \"x y\"");
  EXPECT_EQ(cmdline.args, (std::vector<std::string>{"--name", "my guest", "-v", "x y"}));
  EXPECT_EQ(Domain("name='a'; kernel='/k'; root='/dev/xvda1'").cmdline, "root=/dev/xvda1");
  EXPECT_EQ(Domain("name='a'; kernel='/k'; extra='quiet'").cmdline, "quiet");
  EXPECT_EQ(Domain("name='a'; kernel='/k'; root='/dev/xvda1'; extra='quiet'").args,
            (std::vector<std::string>{"root=/dev/xvda1", "quiet"}));
  EXPECT_TRUE(Domain("name='a'; kernel='/k'; cmdline=''").args.empty());
}

TEST(DomainConfigTest, ErrorCmdlineWithRootOrExtra) {
  EXPECT_EQ(DomainError("name='a'\nkernel='/k'\ncmdline='x'\nextra='y'"),
            R"(guest.cfg:4: extra: cannot be used with "cmdline" (xl would ignore it))");
  EXPECT_EQ(DomainError("name='a'\nkernel='/k'\nroot='/dev/xvda'\ncmdline='x'"),
            R"(guest.cfg:3: root: cannot be used with "cmdline" (xl would ignore it))");
}

TEST(DomainConfigTest, ErrorCommandLineWithoutKernel) {
  EXPECT_EQ(DomainError("name='a'\nextra='quiet'"), R"(guest.cfg:2: extra: needs "kernel")");
  EXPECT_EQ(DomainError("name='a'\ncmdline=''"), R"(guest.cfg:2: cmdline: needs "kernel")");
  EXPECT_EQ(DomainError("name='a'\nramdisk='/i'"), R"(guest.cfg:2: ramdisk: needs "kernel")");
  EXPECT_EQ(DomainError("name='a'\nroot='/dev/xvda'"), R"(guest.cfg:2: root: needs "kernel")");
}

TEST(DomainConfigTest, ErrorCommandLineDoesNotSplit) {
  EXPECT_EQ(DomainError("name='a'\nkernel='/k'\ncmdline='-m \"x'"),
            "guest.cfg:3: cmdline: unterminated double quote");
  EXPECT_EQ(DomainError("name='a'\nkernel='/k'\nroot='/dev/x'\nextra=\"it's\""),
            "guest.cfg:4: extra: unterminated single quote");
  EXPECT_EQ(DomainError("name='a'\nkernel='/k'\nroot='x\\\\'"),
            "guest.cfg:3: root: ends with a backslash");
  EXPECT_EQ(DomainError("name='a'\nkernel='/k'\ncmdline=5"),
            "guest.cfg:3: cmdline: expected a string, got 5");
}

TEST(DomainConfigTest, ErrorDiskNotAListOfStrings) {
  EXPECT_EQ(DomainError("name='a'\ndisk='/srv/a.img,,xvda'"),
            R"(guest.cfg:2: disk: expected a list, got "/srv/a.img,,xvda")");
  EXPECT_EQ(DomainError("name='a'\ndisk=[\n'/srv/a.img,,xvda',\n5]"),
            "guest.cfg:4: disk[1]: expected a string, got 5");
  EXPECT_EQ(DomainError("name='a'\ndisk=[['/srv/a.img,,xvda']]"),
            "guest.cfg:2: disk[0]: expected a string, got a list");
}

TEST(DomainConfigTest, ErrorInADiskSpecNamesItsLineAndIndex) {
  EXPECT_EQ(DomainError("name = 'a'\n"
                        "disk = [\n"
                        "  '/srv/a.img,,xvda',\n"
                        "  # the data disk\n"
                        "  '/srv/b.img,,xvdb,rx',\n"
                        "]\n"),
            R"(guest.cfg:5: disk[1]: unknown access "rx" (use ro or rw))");
}

TEST(DomainConfigTest, ErrorTwoDisksOnOneVdev) {
  EXPECT_EQ(DomainError("name='a'\ndisk=['/a,,xvda', '/b,,xvdb', '/c,,d0p0']"),
            "guest.cfg:2: disk[2]: vdev d0p0 is already used by disk[0]");
  EXPECT_EQ(DomainError("name='a'\ndisk=['/a,,hda', '/b,,768']"),
            "guest.cfg:2: disk[1]: vdev 768 is already used by disk[0]");
}

TEST(DomainConfigTest, ErrorInAVifSpec) {
  EXPECT_EQ(DomainError("name='a'\nvif=['bridge=br0', 'colour=red']"),
            R"(guest.cfg:2: vif[1]: unknown parameter "colour")");
  EXPECT_EQ(DomainError("name='a'\nvif='bridge=br0'"),
            R"(guest.cfg:2: vif: expected a list, got "bridge=br0")");
}

TEST(DomainConfigTest, ErrorTwoVifsWithOneMac) {
  EXPECT_EQ(DomainError("name='a'\nvif=['mac=00:16:3e:00:00:01', 'mac=00:16:3E:00:00:01']"),
            "guest.cfg:2: vif[1]: mac 00:16:3e:00:00:01 is already used by vif[0]");
  EXPECT_EQ(Domain("name='a'\nvif=['', '']").vifs.size(), 2u);  // both get generated MACs
}

TEST(DomainConfigTest, SyntaxErrorsComeFirst) {
  EXPECT_EQ(DomainError("memory = 'lots'\nname = 'x\n"), "guest.cfg:2: unterminated string");
}

// --- files ---

class LoadDomainConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xpv_xl_config_testXXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::remove((dir_ + "/guest.cfg").c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Write(std::string_view text) {
    const std::string path = dir_ + "/guest.cfg";
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(LoadDomainConfigTest, ReadsTheFile) {
  auto config = LoadDomainConfig(Write(kPvGuest));
  ASSERT_TRUE(config) << ErrorOf(config);
  EXPECT_EQ(*config, Domain(kPvGuest));
}

TEST_F(LoadDomainConfigTest, MessagesNameThePathAsGiven) {
  const std::string path = Write("name = 'web'\nmemory = 'lots'\n");
  EXPECT_EQ(ErrorOf(LoadDomainConfig(path)), path + R"(:2: memory: expected a number, got "lots")");
}

TEST_F(LoadDomainConfigTest, ErrorCannotRead) {
  EXPECT_EQ(ErrorOf(LoadDomainConfig(dir_ + "/missing.cfg")),
            dir_ + "/missing.cfg: cannot read: No such file or directory");
  EXPECT_EQ(ErrorOf(LoadDomainConfig(dir_)), dir_ + ": cannot read: Is a directory");
}

TEST_F(LoadDomainConfigTest, ErrorFileTooLarge) {
  const std::string path = Write(std::string(2 << 20, '\n'));
  EXPECT_EQ(ErrorOf(LoadDomainConfig(path)), path + ": larger than 1048576 bytes");
}

// --- command lines ---

std::vector<std::string> Split(std::string_view line) {
  auto words = SplitCommandLine(line);
  EXPECT_TRUE(words) << ErrorOf(words);
  return words ? *words : std::vector<std::string>{};
}

TEST(SplitCommandLineTest, SplitsLikeAShellWithoutExpansions) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split(""), V{});
  EXPECT_EQ(Split("  \t "), V{});
  EXPECT_EQ(Split(" a  b\tc\nd "), (V{"a", "b", "c", "d"}));
  EXPECT_EQ(Split("a 'b c' d\\ e"), (V{"a", "b c", "d e"}));
  EXPECT_EQ(Split("'it'\\''s'"), (V{"it's"}));
  EXPECT_EQ(Split(R"("a \"b\" \\ \n $HOME")"), (V{R"(a "b" \ \n $HOME)"}));
  EXPECT_EQ(Split("'' \"\" x"), (V{"", "", "x"}));
  EXPECT_EQ(Split("pre'mid'\"post\""), (V{"premidpost"}));
  EXPECT_EQ(Split("'a\\b'"), (V{"a\\b"}));
  EXPECT_EQ(Split("a\\\nb"), (V{"ab"}));
  EXPECT_EQ(Split("*.c ~ $x"), (V{"*.c", "~", "$x"}));
}

TEST(SplitCommandLineTest, Errors) {
  EXPECT_EQ(ErrorOf(SplitCommandLine("a 'b")), "unterminated single quote");
  EXPECT_EQ(ErrorOf(SplitCommandLine("a \"b\\\"")), "unterminated double quote");
  EXPECT_EQ(ErrorOf(SplitCommandLine("a \\")), "ends with a backslash");
}

}  // namespace
}  // namespace xpv::toolstack
