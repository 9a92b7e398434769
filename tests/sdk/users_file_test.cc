// users_file_test.cc: a Server whose users_file does not exist is refused
// with INVALID_ARGUMENT (docs/API.md), and no empty store is created.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tcpcrypt/server.h"
#include "tests/sdk/test_users.h"

namespace tcpcrypt {
namespace {

TEST(ServerUsersFile, MissingUsersFileIsInvalidArgument) {
  const std::string dir = testing::MakeScratchDir("tcpcrypt-users-file");
  ASSERT_FALSE(dir.empty());
  const std::string typo = dir + "/typo.db";
  for (AuthMechanism m : {AuthMechanism::kPake, AuthMechanism::kCmacPassword}) {
    ServerOptions o;
    o.plans = {{m}};
    o.users_file = typo;
    o.password_hashing = PasswordHashing::kMinimumForTestsOnly;
    auto server = Server::Create(o);
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(server.status().message().find("users file '" + typo + "' does not exist"),
              std::string::npos)
        << server.status().message();
    struct stat st {};
    EXPECT_NE(::stat(typo.c_str(), &st), 0) << "an empty store was created";
  }
  // The same options work once the store exists.
  ASSERT_TRUE(testing::AddTestUser(typo, "alice", "pw"));
  ServerOptions o;
  o.plans = {{AuthMechanism::kPake}};
  o.users_file = typo;
  o.password_hashing = PasswordHashing::kMinimumForTestsOnly;
  EXPECT_TRUE(Server::Create(o).ok());
  testing::RemoveScratchDir(dir);
}

}  // namespace
}  // namespace tcpcrypt
