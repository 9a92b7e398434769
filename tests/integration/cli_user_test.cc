// `tcpcrypt user add|passwd|list|del` against a real SQLite store.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "auth/common/verifier_store.h"

namespace {

const std::string kTool = std::string(TCPCRYPT_BINARY_DIR) + "/sdk/tcpcrypt";

struct Ran {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Ran Tool(const std::string& args, const std::string& stdin_text = "") {
  const std::string cmd = "printf '%s' '" + stdin_text + "' | " + kTool + " " + args + " 2>&1";
  Ran r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class CliUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tcpcrypt-users-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_ = dir_ + "/users.db";
  }
  void TearDown() override { (void)!std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_, db_;
};

TEST_F(CliUserTest, AddListPasswdDelete) {
  Ran r = Tool("user add alice --users " + db_ + " --realm tcpcrypt --kdf test", "s3cret\n");
  ASSERT_EQ(r.code, 0) << r.out;
  struct stat st {};
  ASSERT_EQ(stat(db_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  r = Tool("user add alice --users " + db_ + " --realm tcpcrypt --kdf test", "again\n");
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.out.find("already exists"), std::string::npos);

  r = Tool("user list --users " + db_);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("alice\ttcpcrypt\tcmac,pake"), std::string::npos) << r.out;

  // The store holds verifiers, never the password.
  {
    std::string err;
    auto store = tcpcrypt::auth::SqliteVerifierStore::Open(db_, &err);
    ASSERT_NE(store, nullptr) << err;
    auto rec = store->Find("alice", "tcpcrypt", tcpcrypt::auth::Mechanism::kPake2Plus);
    ASSERT_TRUE(rec.has_value());
    EXPECT_EQ(rec->verifier.size(), 97u);  // w0 | L
  }
  FILE* f = fopen(db_.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string bytes;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
  fclose(f);
  EXPECT_EQ(bytes.find("s3cret"), std::string::npos);

  r = Tool("user passwd alice --users " + db_ + " --realm tcpcrypt --kdf test", "new-password\n");
  EXPECT_EQ(r.code, 0) << r.out;
  r = Tool("user passwd bob --users " + db_ + " --realm tcpcrypt --kdf test", "x\n");
  EXPECT_EQ(r.code, 4) << r.out;

  r = Tool("user del alice --users " + db_ + " --realm tcpcrypt");
  EXPECT_EQ(r.code, 0) << r.out;
  r = Tool("user del alice --users " + db_ + " --realm tcpcrypt");
  EXPECT_EQ(r.code, 4) << r.out;
  r = Tool("user list --users " + db_ + " --json");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "");
}

TEST_F(CliUserTest, PasswordFileAndErrors) {
  const std::string pw = dir_ + "/pw.txt";
  FILE* f = fopen(pw.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("from-a-file\n", f);
  fclose(f);
  Ran r = Tool("user add carol --users " + db_ + " --realm tcpcrypt --kdf test --password-file " + pw);
  EXPECT_EQ(r.code, 0) << r.out;
  r = Tool("user add dave --users " + db_ + " --realm tcpcrypt --kdf test --password-file " + dir_ + "/missing");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot read password file"), std::string::npos);
  r = Tool("user add erin --users " + db_ + " --realm tcpcrypt --kdf test", "");
  EXPECT_EQ(r.code, 1) << r.out;
  r = Tool("user add erin --users " + db_ + " --realm tcpcrypt --kdf absurd", "pw\n");
  EXPECT_EQ(r.code, 1) << r.out;
  // Not a store: refused with a reason, not overwritten.
  // add, passwd and del name the realm (the server's name as clients dial it).
  r = Tool("user add frank --users " + db_ + " --kdf test", "pw\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--realm is required"), std::string::npos) << r.out;
  r = Tool("user list --users " + pw);
  EXPECT_EQ(r.code, 4) << r.out;
}

}  // namespace
