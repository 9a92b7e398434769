// `tcpcrypt user add|passwd|list|del` against a real SQLite store.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "auth/common/verifier_store.h"
#include "tests/integration/cli_run.h"

namespace {

const std::string kTool = std::string(TCPCRYPT_BINARY_DIR) + "/sdk/tcpcrypt";

using tcpcrypt::testing::Contains;
using tcpcrypt::testing::Ran;

// Tool runs the CLI in a new session (setsid: no controlling terminal, as in
// CI or cron), so a password prompt can never wait on a terminal, with
// |stdin_text| piped to its standard input.
Ran Tool(const std::string& args, const std::string& stdin_text = "") {
  return tcpcrypt::testing::RunShell("printf '%s' '" + stdin_text + "' | timeout 60 setsid -w " +
                                     kTool + " " + args + " 2>&1");
}

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
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
  // PasswordFile writes |password| and a newline to a file of |mode|.
  std::string PasswordFile(const std::string& name, const std::string& password,
                           mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    FILE* f = fopen(path.c_str(), "w");
    if (f == nullptr) return path;
    fputs((password + "\n").c_str(), f);
    fclose(f);
    chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_, db_;
};

TEST_F(CliUserTest, AddListPasswdDelete) {
  Ran r = Tool("user add alice --users " + db_ + " --realm tcpcrypt --kdf test --password-file " +
               PasswordFile("pw1", "s3cret"));
  ASSERT_EQ(r.code, 0) << r.out;
  struct stat st {};
  ASSERT_EQ(stat(db_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  r = Tool("user add alice --users " + db_ + " --realm tcpcrypt --kdf test --password-file " +
           PasswordFile("pw2", "again"));
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

  r = Tool("user passwd alice --users " + db_ + " --realm tcpcrypt --kdf test --password-file " +
           PasswordFile("pw3", "new-password"));
  EXPECT_EQ(r.code, 0) << r.out;
  r = Tool("user passwd bob --users " + db_ + " --realm tcpcrypt --kdf test --password-file " + PasswordFile("pw4", "x"));
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
  const std::string pw = PasswordFile("pw.txt", "from-a-file");
  Ran r = Tool("user add carol --users " + db_ + " --realm tcpcrypt --kdf test --password-file " + pw);
  EXPECT_EQ(r.code, 0) << r.out;
  r = Tool("user add dave --users " + db_ + " --realm tcpcrypt --kdf test --password-file " + dir_ + "/missing");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot read password file"), std::string::npos);
  // No terminal and no --password-file: a clear error, and standard input
  // (which holds a would-be password here) is not read.
  r = Tool("user add erin --users " + db_ + " --realm tcpcrypt --kdf test", "from-stdin\n");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Contains(r.out, "no terminal to ask for the password on")) << r.out;
  EXPECT_TRUE(Contains(r.out, "--password-file")) << r.out;
  r = Tool("user list --users " + db_);
  EXPECT_FALSE(Contains(r.out, "erin")) << r.out;
  // A password file others can read is refused.
  const std::string loose = PasswordFile("loose.txt", "pw", 0644);
  r = Tool("user add erin --users " + db_ + " --realm tcpcrypt --kdf test --password-file " + loose);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Contains(r.out, "refusing password file " + loose + ": mode 0644")) << r.out;
  EXPECT_TRUE(Contains(r.out, "chmod 600")) << r.out;
  // A pipe is accepted when asked for explicitly.
  r = Tool("user add erin --users " + db_ + " --realm tcpcrypt --kdf test --password-file /dev/stdin",
           "piped\n");
  EXPECT_EQ(r.code, 0) << r.out;
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

// A mistyped users file never turns into a fresh empty store: only `user
// add` creates one; serve, list, del and passwd fail loudly.
TEST_F(CliUserTest, MissingUsersFileFailsLoudly) {
  for (const std::string& typo : {std::string("/nonexistent/typo.db"), dir_ + "/typo.db"}) {
    const std::string want = "users file '" + typo +
                             "' does not exist; create it with `tcpcrypt user add NAME --users " +
                             typo;
    Ran r = Tool("serve --listen 127.0.0.1:0 --users " + typo + " --auth pake");
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_NE(r.code, 124) << "serve kept running: " << r.out;
    EXPECT_TRUE(Contains(r.out, want)) << r.out;
    EXPECT_FALSE(Contains(r.out, "listening on")) << r.out;
    EXPECT_FALSE(Exists(typo));
    for (const std::string& sub : {std::string("list"), std::string("del alice --realm tcpcrypt"),
                                   std::string("passwd alice --realm tcpcrypt --password-file " +
                                               PasswordFile("pw", "x"))}) {
      r = Tool("user " + sub + " --users " + typo);
      EXPECT_EQ(r.code, 4) << sub << ": " << r.out;
      EXPECT_TRUE(Contains(r.out, want)) << sub << ": " << r.out;
      EXPECT_FALSE(Exists(typo)) << sub;
    }
  }
}

// --mechanism pake writes no password-equivalent CMAC record.
TEST_F(CliUserTest, MechanismChoosesTheRecords) {
  const std::string pw = PasswordFile("pw", "s3cret");
  const std::string common = " --users " + db_ + " --realm tcpcrypt --kdf test --password-file " + pw;
  Ran r = Tool("user add pat --mechanism pake" + common);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Contains(r.out, "(pake)")) << r.out;
  EXPECT_FALSE(Contains(r.out, "password-equivalent")) << r.out;
  r = Tool("user add cam --mechanism cmac" + common);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Contains(r.out, "note: the cmac record is password-equivalent on the server"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "--mechanism pake avoids it")) << r.out;
  r = Tool("user add bo --mechanism pake,cmac" + common);
  ASSERT_EQ(r.code, 0) << r.out;
  r = Tool("user add --mechanism pake --mechanism cmac rep" + common);  // name after it
  ASSERT_EQ(r.code, 0) << r.out;
  r = Tool("user add def" + common);  // the default: both, with the note
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Contains(r.out, "password-equivalent")) << r.out;
  r = Tool("user add bad --mechanism x509" + common);
  EXPECT_NE(r.code, 0) << r.out;

  r = Tool("user list --json --users " + db_);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Contains(r.out, R"({"mechanisms":["pake"],"realm":"tcpcrypt","user":"pat"})"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, R"({"mechanisms":["cmac"],"realm":"tcpcrypt","user":"cam"})"))
      << r.out;
  EXPECT_TRUE(
      Contains(r.out, R"({"mechanisms":["cmac","pake"],"realm":"tcpcrypt","user":"bo"})"))
      << r.out;
  EXPECT_TRUE(
      Contains(r.out, R"({"mechanisms":["cmac","pake"],"realm":"tcpcrypt","user":"rep"})"))
      << r.out;
  EXPECT_FALSE(Contains(r.out, "\"bad\"")) << r.out;
  {
    std::string err;
    auto store = tcpcrypt::auth::SqliteVerifierStore::Open(db_, &err);
    ASSERT_NE(store, nullptr) << err;
    EXPECT_FALSE(store->Find("pat", "tcpcrypt", tcpcrypt::auth::Mechanism::kCmacPassword));
    EXPECT_TRUE(store->Find("pat", "tcpcrypt", tcpcrypt::auth::Mechanism::kPake2Plus));
  }

  // passwd --mechanism pake drops the old CMAC record, so the old password
  // does not live on in it.
  r = Tool("user passwd bo --mechanism pake --users " + db_ + " --realm tcpcrypt" +
           " --kdf test --password-file " + PasswordFile("pw2", "n3w"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = Tool("user list --json --users " + db_);
  EXPECT_TRUE(Contains(r.out, R"({"mechanisms":["pake"],"realm":"tcpcrypt","user":"bo"})"))
      << r.out;
}

}  // namespace
