// The handshake between BackendDevice and FrontendLink through a real store on a thread: the
// path Linux's drivers take, the states real peers skip, and peers that misbehave.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "xpv/xenbus/backend.h"
#include "xpv/xenbus/frontend.h"
#include "xpv/xenstore/testing/store_thread.h"

namespace xpv::xenbus {
namespace {

using xenstore::Client;

class RecordingHooks : public BackendHooks {
 public:
  Status Prepare() override {
    calls.push_back("prepare");
    return prepare_result;
  }
  Status Connect() override {
    calls.push_back("connect");
    return connect_result;
  }
  void Disconnect() override { calls.push_back("disconnect"); }

  std::vector<std::string> calls;
  Status prepare_result = Ok();
  Status connect_result = Ok();
};

class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = xenstore::testing::StoreThread::Start();
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    for (auto* c : {&toolstack_, &be_store_, &fe_store_}) {
      auto r = Client::Connect(store_->path());
      ASSERT_TRUE(r);
      *c = std::make_unique<Client>(std::move(*r));
      (*c)->set_reply_timeout_ms(5000);
    }
    // What a toolstack writes before either end runs.
    const std::string be = id_.BackendPath(), fe = id_.FrontendPath();
    ASSERT_TRUE(toolstack_->Write(be + "/frontend", fe));
    ASSERT_TRUE(toolstack_->Write(be + "/frontend-id", "7"));
    ASSERT_TRUE(toolstack_->Write(be + "/state", "1"));
    ASSERT_TRUE(toolstack_->Write(fe + "/backend", be));
    ASSERT_TRUE(toolstack_->Write(fe + "/backend-id", "1"));
    ASSERT_TRUE(toolstack_->Write(fe + "/state", "1"));
  }

  // Feeds the backend's watch events to the device until none comes for 250 ms (generous: the
  // store runs on another thread of a loaded machine).
  bool PumpBackend(BackendDevice& dev) {
    bool alive = true;
    while (auto ev = be_store_->NextEvent(250)) alive = dev.Update();
    return alive;
  }
  void FrontendState(State s) {
    ASSERT_TRUE(toolstack_->Write(id_.FrontendPath() + "/state", FormatState(s)));
  }
  std::string BackendNode(const std::string& node) {
    auto v = toolstack_->Read(id_.BackendPath() + "/" + node);
    return v ? *v : "<absent>";
  }

  DeviceId id_{"vbd", DomId(1), DomId(7), 51712};
  std::unique_ptr<xenstore::testing::StoreThread> store_;
  std::unique_ptr<Client> toolstack_, be_store_, fe_store_;
  RecordingHooks hooks_;
};

TEST_F(HandshakeTest, LinuxOrderConnectsAndCloses) {
  BackendDevice dev(*be_store_, id_, hooks_);
  ASSERT_TRUE(dev.Start());
  EXPECT_EQ(BackendNode("state"), "2");

  auto link = FrontendLink::Open(*fe_store_, id_);
  ASSERT_TRUE(link) << link.error().message;
  EXPECT_EQ(link->backend_id(), DomId(1));
  auto s = link->WaitForBackend({State::kInitWait}, 2000);
  ASSERT_TRUE(s);
  ASSERT_TRUE(link->WriteFrontend("ring-ref", "8"));
  ASSERT_TRUE(link->SwitchState(State::kInitialised));
  PumpBackend(dev);
  EXPECT_EQ(dev.state(), State::kConnected);
  ASSERT_TRUE(link->WaitForBackend({State::kConnected}, 2000));
  ASSERT_TRUE(link->SwitchState(State::kConnected));
  PumpBackend(dev);

  ASSERT_TRUE(link->SwitchState(State::kClosing));
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "5");
  ASSERT_TRUE(link->SwitchState(State::kClosed));
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "6");
  EXPECT_EQ(hooks_.calls, (std::vector<std::string>{"prepare", "connect", "disconnect"}));
}

TEST_F(HandshakeTest, FrontendThatSkipsInitialisedStillConnects) {
  BackendDevice dev(*be_store_, id_, hooks_);
  ASSERT_TRUE(dev.Start());
  FrontendState(State::kConnected);
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "4");
}

TEST_F(HandshakeTest, FrontendRestartIsOfferedTheDeviceAgain) {
  BackendDevice dev(*be_store_, id_, hooks_);
  ASSERT_TRUE(dev.Start());
  FrontendState(State::kInitialised);
  PumpBackend(dev);
  FrontendState(State::kClosed);
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "6");
  FrontendState(State::kInitialising);  // a rebooted guest
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "2");
  FrontendState(State::kInitialised);
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "4");
  EXPECT_EQ(hooks_.calls,
            (std::vector<std::string>{"prepare", "connect", "disconnect", "prepare", "connect"}));
}

TEST_F(HandshakeTest, JunkFrontendStateCountsAsClosed) {
  BackendDevice dev(*be_store_, id_, hooks_);
  ASSERT_TRUE(dev.Start());
  FrontendState(State::kInitialised);
  PumpBackend(dev);
  ASSERT_TRUE(toolstack_->Write(id_.FrontendPath() + "/state", "banana"));
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "6");
  EXPECT_EQ(hooks_.calls.back(), "disconnect");
}

TEST_F(HandshakeTest, FailedConnectWritesErrorAndCloses) {
  hooks_.connect_result = Err(EINVAL, "ring-ref missing");
  BackendDevice dev(*be_store_, id_, hooks_);
  ASSERT_TRUE(dev.Start());
  FrontendState(State::kInitialised);
  PumpBackend(dev);
  EXPECT_EQ(BackendNode("state"), "5");
  EXPECT_NE(BackendNode("error").find("ring-ref missing"), std::string::npos);
}

TEST_F(HandshakeTest, FrontendNodeNamingAnotherDomainsDeviceIsRefused) {
  ASSERT_TRUE(toolstack_->Write(id_.BackendPath() + "/frontend", "/local/domain/9/device/vbd/1"));
  BackendDevice dev(*be_store_, id_, hooks_);
  EXPECT_FALSE(dev.Start());
  EXPECT_TRUE(hooks_.calls.empty());
  EXPECT_NE(BackendNode("error"), "<absent>");
}

TEST_F(HandshakeTest, ToolstackRemovingTheDeviceEndsIt) {
  BackendDevice dev(*be_store_, id_, hooks_);
  ASSERT_TRUE(dev.Start());
  ASSERT_TRUE(be_store_->Watch(id_.BackendPath(), "dir"));  // what a backend process watches
  FrontendState(State::kConnected);
  PumpBackend(dev);
  ASSERT_TRUE(toolstack_->Rm(id_.BackendPath()));
  EXPECT_FALSE(PumpBackend(dev));
  EXPECT_EQ(hooks_.calls.back(), "disconnect");
}

TEST_F(HandshakeTest, FrontendRefusesBackendNodeOutsideCanonicalPath) {
  ASSERT_TRUE(
      toolstack_->Write(id_.FrontendPath() + "/backend", "/local/domain/1/backend/vbd/8/1"));
  auto link = FrontendLink::Open(*fe_store_, id_);
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().code, EINVAL);
}

TEST_F(HandshakeTest, FrontendWaitEndsWhenBackendCloses) {
  auto link = FrontendLink::Open(*fe_store_, id_);
  ASSERT_TRUE(link);
  auto timed_out = link->WaitForBackend({State::kConnected}, 200);
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code, ETIMEDOUT);
  ASSERT_TRUE(toolstack_->Write(id_.BackendPath() + "/state", "6"));
  auto closed = link->WaitForBackend({State::kConnected}, 2000);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code, EPIPE);
}

}  // namespace
}  // namespace xpv::xenbus
