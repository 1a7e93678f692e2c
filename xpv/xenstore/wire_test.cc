#include "xpv/xenstore/wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>

namespace xpv::xenstore {
namespace {

using namespace std::string_literals;

std::string Frame(uint32_t type, uint32_t req, uint32_t tx, std::string_view payload,
                  std::optional<uint32_t> len = std::nullopt) {
  std::string out(kHeaderSize, '\0');
  EncodeHeader(Header{type, req, tx, len.value_or(static_cast<uint32_t>(payload.size()))},
               out.data());
  out += payload;
  return out;
}

TEST(WireTest, HeaderIsFourHostOrderWordsAsXsdSockmsg) {
  char bytes[kHeaderSize];
  EncodeHeader(Header{XS_WRITE, 0x01020304, 0xA0B0C0D0, 17}, bytes);
  xsd_sockmsg raw;
  std::memcpy(&raw, bytes, sizeof raw);
  EXPECT_EQ(raw.type, static_cast<uint32_t>(XS_WRITE));
  EXPECT_EQ(raw.req_id, 0x01020304u);
  EXPECT_EQ(raw.tx_id, 0xA0B0C0D0u);
  EXPECT_EQ(raw.len, 17u);
  Header h = DecodeHeader(std::span<const char, kHeaderSize>(bytes));
  EXPECT_EQ(h.type, static_cast<uint32_t>(XS_WRITE));
  EXPECT_EQ(h.req_id, 0x01020304u);
  EXPECT_EQ(h.tx_id, 0xA0B0C0D0u);
  EXPECT_EQ(h.len, 17u);
}

TEST(WireTest, AppendMessageWritesHeaderThenPayload) {
  std::string out = "prefix";
  AppendMessage(out, MsgType::kRead, 7, 3, "/a\0"s);
  ASSERT_EQ(out.size(), 6 + kHeaderSize + 3);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  Header h = DecodeHeader(std::span<const char, kHeaderSize>(out.data() + 6, kHeaderSize));
  EXPECT_EQ(h.type, static_cast<uint32_t>(XS_READ));
  EXPECT_EQ(h.req_id, 7u);
  EXPECT_EQ(h.tx_id, 3u);
  EXPECT_EQ(h.len, 3u);
  EXPECT_EQ(out.substr(6 + kHeaderSize), "/a\0"s);
}

TEST(WireTest, MsgTypesMatchXsWireNumbering) {
  EXPECT_EQ(static_cast<uint32_t>(MsgType::kControl), 0u);
  EXPECT_EQ(static_cast<uint32_t>(MsgType::kWatchEvent), 15u);
  EXPECT_EQ(static_cast<uint32_t>(MsgType::kError), 16u);
  EXPECT_EQ(static_cast<uint32_t>(MsgType::kResetWatches), 21u);
  EXPECT_EQ(static_cast<uint32_t>(MsgType::kDirectoryPart), 22u);
  EXPECT_EQ(static_cast<uint32_t>(MsgType::kGetFeature), 23u);
  EXPECT_EQ(static_cast<uint32_t>(MsgType::kSetQuota), 26u);
}

TEST(WireTest, MsgTypeNames) {
  EXPECT_EQ(MsgTypeName(XS_WRITE), "WRITE");
  EXPECT_EQ(MsgTypeName(XS_DIRECTORY_PART), "DIRECTORY_PART");
  EXPECT_EQ(MsgTypeName(20), "RESTRICT");
  EXPECT_EQ(MsgTypeName(abi::XS_SET_QUOTA), "SET_QUOTA");
  EXPECT_EQ(MsgTypeName(abi::XS_TYPE_COUNT_LATEST), "UNKNOWN");
  EXPECT_EQ(MsgTypeName(UINT32_MAX), "UNKNOWN");
}

TEST(WireTest, DecoderAssemblesMessageFedByteByByte) {
  const std::string wire = Frame(XS_WRITE, 9, 2, "/a\0value"s);
  StreamDecoder d;
  for (size_t i = 0; i < wire.size(); ++i) {
    EXPECT_FALSE(d.HasMessage());
    EXPECT_EQ(d.MidMessage(), i > 0);
    auto used = d.Feed(std::string_view(wire).substr(i, 1));
    ASSERT_TRUE(used.has_value());
    EXPECT_EQ(*used, 1u);
  }
  ASSERT_TRUE(d.HasMessage());
  Message m = d.TakeMessage();
  EXPECT_EQ(m.type(), MsgType::kWrite);
  EXPECT_EQ(m.header.req_id, 9u);
  EXPECT_EQ(m.header.tx_id, 2u);
  EXPECT_EQ(m.payload, "/a\0value"s);
  EXPECT_FALSE(d.MidMessage());
}

TEST(WireTest, DecoderStopsAfterOneMessageForBackpressure) {
  const std::string wire = Frame(XS_READ, 1, 0, "/a\0"s) + Frame(XS_READ, 2, 0, "/b\0"s);
  StreamDecoder d;
  auto used = d.Feed(wire);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, kHeaderSize + 3);
  ASSERT_TRUE(d.HasMessage());
  // Nothing more is taken until the message is.
  auto none = d.Feed(std::string_view(wire).substr(*used));
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(d.TakeMessage().header.req_id, 1u);
  auto rest = d.Feed(std::string_view(wire).substr(*used));
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(*rest, kHeaderSize + 3);
  EXPECT_EQ(d.TakeMessage().payload, "/b\0"s);
}

TEST(WireTest, DecoderCompletesEmptyPayloadOnHeaderAlone) {
  StreamDecoder d;
  auto used = d.Feed(Frame(XS_TRANSACTION_START, 1, 0, ""));
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, kHeaderSize);
  ASSERT_TRUE(d.HasMessage());
  EXPECT_TRUE(d.TakeMessage().payload.empty());
}

TEST(WireTest, DecoderAcceptsPayloadOfExactlyPayloadMax) {
  StreamDecoder d;
  const std::string wire = Frame(XS_WRITE, 1, 0, std::string(kPayloadMax, 'x'));
  auto used = d.Feed(wire);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(*used, wire.size());
  EXPECT_EQ(d.TakeMessage().payload.size(), kPayloadMax);
}

TEST(WireTest, OversizedLengthIsRejectedBeforeAnyAllocation) {
  for (uint32_t len : {static_cast<uint32_t>(kPayloadMax + 1), UINT32_MAX}) {
    StreamDecoder d;
    auto used = d.Feed(Frame(XS_WRITE, 1, 0, "", len));
    ASSERT_FALSE(used.has_value()) << len;
    EXPECT_EQ(used.error().code, E2BIG);
  }
}

TEST(WireTest, SplitStringsDropsUnterminatedTail) {
  const std::string payload = "a\0bc\0tail"s;
  auto v = SplitStrings(payload);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], "a");
  EXPECT_EQ(v[1], "bc");
  EXPECT_TRUE(SplitStrings("").empty());
  EXPECT_TRUE(SplitStrings("no nul").empty());
}

TEST(WireTest, SplitStringsKeepsEmptyStrings) {
  const std::string payload = "\0\0x\0"s;
  auto v = SplitStrings(payload);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "");
  EXPECT_EQ(v[1], "");
  EXPECT_EQ(v[2], "x");
}

TEST(WireTest, OneArgNeedsExactlyOneTerminatedString) {
  std::string_view out;
  const std::string one = "/a\0"s;
  EXPECT_TRUE(OneArg(one, &out));
  EXPECT_EQ(out, "/a");
  const std::string empty = "\0"s;
  EXPECT_TRUE(OneArg(empty, &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(OneArg("", &out));
  EXPECT_FALSE(OneArg("/a", &out));
  EXPECT_FALSE(OneArg("/a\0/b\0"s, &out));
  EXPECT_FALSE(OneArg("/a\0junk"s, &out));
}

TEST(WireTest, ErrorStringsRoundTripInXsdErrorsOrder) {
  for (int code : {EINVAL, EACCES, EEXIST, EISDIR, ENOENT, ENOMEM, ENOSPC, EIO, ENOTEMPTY, ENOSYS,
                   EROFS, EBUSY, EAGAIN, EISCONN, E2BIG, EPERM}) {
    EXPECT_EQ(ErrnoFromString(ErrorString(code)), code) << ErrorString(code);
  }
  EXPECT_EQ(ErrorString(EACCES), "EACCES");
  EXPECT_EQ(ErrorString(12345), "EINVAL");
  EXPECT_EQ(ErrnoFromString("ENOTANERROR"), EINVAL);
  EXPECT_EQ(ErrnoFromString(""), EINVAL);
}

}  // namespace
}  // namespace xpv::xenstore
