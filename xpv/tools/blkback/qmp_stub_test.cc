#include "xpv/tools/blkback/qmp_stub.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "xpv/base/unix_socket.h"

namespace xpv::tools {
namespace {

TEST(QmpReply, AnswersWhatLibxlAsksADeviceModel) {
  EXPECT_EQ(QmpReply(R"({ "execute": "qmp_capabilities", "id": 1 })"),
            "{\"return\": {}, \"id\": 1}\r\n");
  EXPECT_EQ(QmpReply(R"({"execute":"query-chardev","id":2})"), "{\"return\": [], \"id\": 2}\r\n");
  EXPECT_EQ(QmpReply(R"({"execute": "query-vnc", "id": 3})"),
            "{\"return\": {\"enabled\": false}, \"id\": 3}\r\n");
  EXPECT_EQ(QmpReply(R"({"execute": "query-status", "id": "x"})"),
            "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, "
            "\"id\": \"x\"}\r\n");
  EXPECT_EQ(QmpReply(R"({"execute": "anything-else"})"), "{\"return\": {}}\r\n");
}

TEST(QmpReply, IgnoresWhatIsNotACommand) {
  for (const char* junk :
       {"", "{}", R"({"execute": 5})", R"({"execute": "unterminated)", R"({"execute" "x"})"})
    EXPECT_FALSE(QmpReply(junk)) << junk;
  // An id that would break the reply's JSON is left out rather than echoed.
  EXPECT_EQ(QmpReply(R"({"execute": "x", "id": "a\"b"})"), "{\"return\": {}}\r\n");
}

TEST(QmpStub, ServesGreetingAndReplies) {
  const std::string path = ::testing::TempDir() + "/qmp-stub-test.sock";
  auto stub = QmpStub::Listen(path);
  ASSERT_TRUE(stub.has_value());
  auto c = ConnectUnix(path);
  ASSERT_TRUE(c.has_value());
  std::string got;
  char buf[512];
  auto read_line = [&] {
    while (got.find('\n') == std::string::npos) {
      const ssize_t n = ::recv(c->get(), buf, sizeof(buf), 0);
      if (n <= 0) return std::string();
      got.append(buf, static_cast<size_t>(n));
    }
    std::string line = got.substr(0, got.find('\n') + 1);
    got.erase(0, line.size());
    return line;
  };
  EXPECT_EQ(read_line(), QmpGreeting());
  const std::string cmd = "{ \"execute\": \"query-vnc\", \"id\": 7 }\r\n";
  ASSERT_EQ(::send(c->get(), cmd.data(), cmd.size(), 0), static_cast<ssize_t>(cmd.size()));
  EXPECT_EQ(read_line(), "{\"return\": {\"enabled\": false}, \"id\": 7}\r\n");
  stub->reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace xpv::tools
