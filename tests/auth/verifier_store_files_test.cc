// verifier_store_files_test.cc: SqliteVerifierStore::Open's file rules: a
// missing store under kMustExist, loose permissions tightened on our own
// files and refused on somebody else's, non-regular files refused.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "auth/common/verifier_store.h"

namespace tcpcrypt::auth {
namespace {

using OpenMode = SqliteVerifierStore::OpenMode;

class StoreFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/verifier_store_files.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/users.db";
  }
  void TearDown() override {
    (void)!std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return static_cast<mode_t>(-1);
    return st.st_mode & 07777;
  }
  static bool Exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
  }
  static VerifierRecord Rec(const std::string& user) {
    VerifierRecord r;
    r.user = user;
    r.realm = "r";
    r.mechanism = Mechanism::kPake2Plus;
    r.salt.assign(16, 1);
    r.params = KdfParams::ForTests();
    std::vector<uint8_t> v(97, 7);
    r.verifier = SecretBuffer(v);
    return r;
  }
  void MakeStore() {
    std::string error;
    auto s = SqliteVerifierStore::Open(path_, &error, OpenMode::kCreate);
    ASSERT_NE(s, nullptr) << error;
    ASSERT_TRUE(s->Put(Rec("alice")));
  }
  std::string dir_, path_;
};

TEST_F(StoreFilesTest, MustExistRefusesAMissingFileAndCreatesNothing) {
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist), nullptr);
  EXPECT_EQ(error, "users file '" + path_ +
                       "' does not exist; create it with `tcpcrypt user add NAME --users " +
                       path_ + " --realm REALM`");
  EXPECT_FALSE(Exists(path_));
  EXPECT_FALSE(Exists(path_ + "-wal"));
  EXPECT_FALSE(Exists(path_ + "-journal"));
  // A missing directory is also "does not exist", not "cannot create".
  EXPECT_EQ(SqliteVerifierStore::Open(dir_ + "/no/such.db", &error, OpenMode::kMustExist),
            nullptr);
  EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
  // A dangling symlink is not followed to create its target.
  ASSERT_EQ(::symlink((dir_ + "/target.db").c_str(), (dir_ + "/link.db").c_str()), 0);
  EXPECT_EQ(SqliteVerifierStore::Open(dir_ + "/link.db", &error, OpenMode::kCreate), nullptr);
  EXPECT_NE(error.find("symbolic link"), std::string::npos) << error;
  EXPECT_FALSE(Exists(dir_ + "/target.db"));
}

TEST_F(StoreFilesTest, MustExistOpensAnExistingStore) {
  MakeStore();
  std::string error;
  auto s = SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist);
  ASSERT_NE(s, nullptr) << error;
  EXPECT_TRUE(s->Find("alice", "r", Mechanism::kPake2Plus).has_value());
}

TEST_F(StoreFilesTest, LooseFilesOfOursAreTightenedTo0600) {
  MakeStore();
  // Keep one connection open so the -wal and -shm side files exist.
  std::string error;
  auto first = SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist);
  ASSERT_NE(first, nullptr) << error;
  ASSERT_TRUE(first->Put(Rec("bob")));
  const std::vector<std::string> files = {path_, path_ + "-wal", path_ + "-shm"};
  for (const std::string& f : files) {
    ASSERT_TRUE(Exists(f)) << f;
    ASSERT_EQ(::chmod(f.c_str(), 0664), 0) << f;
  }
  auto second = SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist);
  ASSERT_NE(second, nullptr) << error;
  for (const std::string& f : files) EXPECT_EQ(ModeOf(f), 0600u) << f;
  EXPECT_TRUE(second->Find("bob", "r", Mechanism::kPake2Plus).has_value());

  // Read-only for others is loose too, and kCreate tightens as well.
  second.reset();
  first.reset();
  ASSERT_EQ(::chmod(path_.c_str(), 0604), 0);
  ASSERT_NE(SqliteVerifierStore::Open(path_, &error, OpenMode::kCreate), nullptr) << error;
  EXPECT_EQ(ModeOf(path_), 0600u);
}

TEST_F(StoreFilesTest, LooseStoreOfAnotherUserIsRefusedUntouched) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown a file away";
  MakeStore();
  ASSERT_EQ(::chown(path_.c_str(), 65534, 65534), 0);  // nobody
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist), nullptr);
  EXPECT_NE(error.find(path_), std::string::npos) << error;
  EXPECT_NE(error.find("mode 0644"), std::string::npos) << error;
  EXPECT_NE(error.find("uid 65534"), std::string::npos) << error;
  EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
  EXPECT_EQ(ModeOf(path_), 0644u);  // not ours to change

  // The same file at 0600 is accepted (root serving a service's store).
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  EXPECT_NE(SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist), nullptr) << error;
}

TEST_F(StoreFilesTest, LooseSideFileOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown a file away";
  MakeStore();
  std::string error;
  auto first = SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist);
  ASSERT_NE(first, nullptr) << error;
  ASSERT_TRUE(first->Put(Rec("bob")));
  const std::string wal = path_ + "-wal";
  ASSERT_EQ(::chown(wal.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(wal.c_str(), 0644), 0);
  EXPECT_EQ(SqliteVerifierStore::Open(path_, &error, OpenMode::kMustExist), nullptr);
  EXPECT_NE(error.find("wal file"), std::string::npos) << error;
  EXPECT_EQ(ModeOf(wal), 0644u);
}

TEST_F(StoreFilesTest, NonRegularFilesAreRefused) {
  std::string error;
  ASSERT_EQ(::mkdir(path_.c_str(), 0700), 0);
  EXPECT_EQ(SqliteVerifierStore::Open(path_, &error, OpenMode::kCreate), nullptr);
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
  const std::string fifo = dir_ + "/fifo.db";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(SqliteVerifierStore::Open(fifo, &error, OpenMode::kMustExist), nullptr);
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
}

}  // namespace
}  // namespace tcpcrypt::auth
