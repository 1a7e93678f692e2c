// A real xpv-hv process for the process and hostile tests: started on a socket in a temporary
// directory, checked to have neither crashed nor leaked descriptors when the test ends.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "xpv/platform/sim/client.h"
#include "xpv/platform/sim/wire.h"

namespace xpv::platform::sim::testing {

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/xpv-hv-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/hv.sock";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      ::execl(XPV_HV_BIN, "xpv-hv", "--socket", socket_.c_str(), "--log-level", "warn", nullptr);
      ::_exit(127);
    }
    // The socket file appears at bind(), before listen(): retry the connection itself.
    auto dom0 = ConnectSimDom0(socket_);
    for (int i = 0; i < 500 && !dom0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      dom0 = ConnectSimDom0(socket_);
    }
    ASSERT_TRUE(dom0.has_value()) << std::strerror(dom0.error().code);
    dom0_ = std::move(*dom0);
  }

  void TearDown() override {
    dom0_.reset();
    ASSERT_TRUE(Alive()) << "xpv-hv died during the test";
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "xpv-hv status " << status;
    ::unlink(socket_.c_str());
    ::rmdir(dir_.c_str());
  }

  bool Alive() {
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }

  // Descriptors the daemon holds.
  size_t DaemonFds() {
    std::string path = "/proc/" + std::to_string(pid_) + "/fd";
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return 0;
    size_t n = 0;
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
    return n;
  }

  // Polls `pred` for up to `ms`.
  template <typename F>
  static bool WaitFor(F pred, int ms = 5000) {
    for (int i = 0; i < ms / 5; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
  }

  UniqueFd RawConnect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  }

  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  std::unique_ptr<SimPlatform> dom0_;
};

}  // namespace xpv::platform::sim::testing
