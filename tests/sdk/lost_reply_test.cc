// The write / half-close / read pattern against a server that reads once,
// replies and closes (issue 9, point 6): no reply may be lost.
//
// The client writes a request, half-closes (Session::Shutdown: FINp, then
// shutdown(SHUT_WR)) and reads until the authenticated end of file. The
// server's handler reads once, writes the reply, sends its own FINp and
// drops the session without reading further. Before the fix the server's
// close could reset the connection while the client's FINp was in flight,
// and the client's shutdown(SHUT_WR) then failed with ENOTCONN although the
// reply and the server's authenticated end of file had arrived.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"
#include "tests/sdk/test_users.h"

namespace tcpcrypt {
namespace {

// Sanitizer builds run the same pattern fewer times (each SPAKE2+ login is
// many times slower there); the GCC / RelWithDebInfo build runs all 500.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kRounds = 100;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int kRounds = 100;
#else
constexpr int kRounds = 500;
#endif
#else
constexpr int kRounds = 500;
#endif

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Reply(std::string_view request) { return "reply to " + std::string(request); }

class LostReplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("tcpcrypt-lost-reply");
    ASSERT_FALSE(dir_.empty());
    users_ = dir_ + "/users.db";
    ASSERT_TRUE(testing::AddTestUser(users_, "alice", "correct horse", {.cmac = false, .pake = true}));
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Stop();
      if (serving_.joinable()) serving_.join();
    }
    testing::RemoveScratchDir(dir_);
  }

  // StartServer runs Serve with the handler under test: one Read, the
  // reply, our FINp, and the session is dropped without reading further.
  void StartServer(const ServerOptions& o) {
    auto s = Server::Create(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s.value());
    ASSERT_TRUE(server_->Listen("127.0.0.1", 0).ok());
    serving_ = std::thread([this] {
      (void)server_->Serve(
          [](std::unique_ptr<Session> session) {
            std::vector<uint8_t> buf(4096);
            auto n = session->Read(buf);
            if (!n.ok() || n.value() == 0) return;
            const std::string reply =
                Reply(std::string_view(reinterpret_cast<const char*>(buf.data()), n.value()));
            if (!session->Write(Bytes(reply)).ok()) return;
            (void)session->Shutdown();
            // The session is destroyed here: Close without reading further.
          },
          4);
    });
  }

  // RunRounds runs the client pattern |kRounds| times and returns how many
  // replies were lost; |first_failure| says what went wrong first.
  int RunRounds(const ClientOptions& co, bool expect_authenticated, std::string* first_failure) {
    auto client = Client::Create(co);
    if (!client.ok()) {
      *first_failure = client.status().ToString();
      return kRounds;
    }
    int lost = 0;
    auto note = [&](const std::string& what) {
      ++lost;
      if (first_failure->empty()) *first_failure = what;
    };
    for (int i = 0; i < kRounds; ++i) {
      const std::string request = "request " + std::to_string(i);
      auto s = client.value()->Connect("127.0.0.1", server_->port());
      if (!s.ok()) {
        note("connect: " + s.status().ToString());
        continue;
      }
      Session& session = *s.value();
      if (expect_authenticated && !session.peer().has_value()) {
        note("round " + std::to_string(i) + ": not authenticated");
        continue;
      }
      if (Status w = session.Write(Bytes(request)); !w.ok()) {
        note("write: " + w.ToString());
        continue;
      }
      if (Status sh = session.Shutdown(); !sh.ok()) {
        note("shutdown: " + sh.ToString());
        continue;
      }
      std::string got;
      std::vector<uint8_t> buf(4096);
      bool failed = false;
      for (;;) {
        auto n = session.Read(buf);
        if (!n.ok()) {
          note("read: " + n.status().ToString());
          failed = true;
          break;
        }
        if (n.value() == 0) break;  // the authenticated end of file
        got.append(reinterpret_cast<const char*>(buf.data()), n.value());
      }
      if (!failed && got != Reply(request)) note("round " + std::to_string(i) + ": got '" + got + "'");
    }
    return lost;
  }

  std::string dir_, users_;
  std::unique_ptr<Server> server_;
  std::thread serving_;
};

TEST_F(LostReplyTest, NoAuthentication) {
  ServerOptions o;
  o.require_authentication = false;
  StartServer(o);
  ClientOptions co;
  co.require_server_authentication = false;
  std::string first_failure;
  EXPECT_EQ(RunRounds(co, /*expect_authenticated=*/false, &first_failure), 0) << first_failure;
}

TEST_F(LostReplyTest, Spake2Plus) {
  ServerOptions o;
  o.plans = {{AuthMechanism::kPake}};
  o.users_file = users_;
  o.password_hashing = PasswordHashing::kMinimumForTestsOnly;
  o.issue_tickets = false;  // every round runs SPAKE2+
  StartServer(o);
  ClientOptions co;
  co.mechanisms = {AuthMechanism::kPake};
  co.user = "alice";
  // realm: the dialed host, 127.0.0.1, as AddTestUser enrolls it
  co.password = std::make_shared<Password>("correct horse");
  co.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;  // the test records
  co.tickets = false;
  std::string first_failure;
  EXPECT_EQ(RunRounds(co, /*expect_authenticated=*/true, &first_failure), 0) << first_failure;
}

}  // namespace
}  // namespace tcpcrypt
