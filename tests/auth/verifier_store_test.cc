// verifier_store_test.cc: SqliteVerifierStore and MemoryVerifierStore.
#include "auth/common/verifier_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tcpcrypt::auth {
namespace {

// TempDir is a fresh directory, removed with its files afterwards.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/verifier_store_test.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    path_ = made != nullptr ? made : "";
  }
  ~TempDir() {
    if (!path_.empty()) {
      const std::string cmd = "rm -rf '" + path_ + "'";
      [[maybe_unused]] const int rc = std::system(cmd.c_str());
    }
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

VerifierRecord MakeRec(const std::string& user, const std::string& realm,
                       Mechanism m, uint8_t fill, size_t verifier_len = 16) {
  VerifierRecord r;
  r.user = user;
  r.realm = realm;
  r.mechanism = m;
  r.salt.assign(16, static_cast<uint8_t>(fill ^ 0x5a));
  r.params = KdfParams::ForTests();
  std::vector<uint8_t> v(verifier_len, fill);
  r.verifier = SecretBuffer(v);
  r.updated_unix = 1700000000 + fill;
  return r;
}

void ExpectSame(const VerifierRecord& want, const VerifierRecord& got) {
  EXPECT_EQ(got.user, want.user);
  EXPECT_EQ(got.realm, want.realm);
  EXPECT_EQ(got.mechanism, want.mechanism);
  EXPECT_EQ(got.salt, want.salt);
  EXPECT_EQ(got.params.algorithm, want.params.algorithm);
  EXPECT_EQ(got.params.opslimit, want.params.opslimit);
  EXPECT_EQ(got.params.memlimit, want.params.memlimit);
  EXPECT_TRUE(got.verifier.Equal(want.verifier));
  EXPECT_EQ(got.updated_unix, want.updated_unix);
}

// RawExec runs SQL on |path| with a plain sqlite3 connection, behind the
// store's back.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string msg = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

// --- Behaviour shared by both implementations -----------------------------

enum class Kind { kSqlite, kMemory };

class StoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (GetParam() == Kind::kSqlite) {
      std::string error;
      auto s = SqliteVerifierStore::Open(dir_.File("v.db"), &error);
      ASSERT_NE(s, nullptr) << error;
      store_ = std::move(s);
    } else {
      store_ = std::make_unique<MemoryVerifierStore>();
    }
  }
  TempDir dir_;
  std::unique_ptr<VerifierStore> store_;
};

TEST_P(StoreTest, PutFindRoundTrip) {
  const VerifierRecord rec = MakeRec("alice", "example.com",
                                     Mechanism::kCmacPassword, 1);
  ASSERT_TRUE(store_->Put(rec));
  auto got = store_->Find("alice", "example.com", Mechanism::kCmacPassword);
  ASSERT_TRUE(got.has_value());
  ExpectSame(rec, *got);
}

TEST_P(StoreTest, FindMissesOnEachKeyPart) {
  ASSERT_TRUE(store_->Put(MakeRec("alice", "example.com",
                                  Mechanism::kCmacPassword, 1)));
  EXPECT_FALSE(store_->Find("bob", "example.com", Mechanism::kCmacPassword));
  EXPECT_FALSE(store_->Find("alice", "example.org", Mechanism::kCmacPassword));
  EXPECT_FALSE(store_->Find("alice", "example.com", Mechanism::kPake2Plus));
  EXPECT_FALSE(store_->Find("Alice", "example.com", Mechanism::kCmacPassword));
  EXPECT_FALSE(store_->Find("", "", Mechanism::kCmacPassword));
}

TEST_P(StoreTest, PutReplaces) {
  ASSERT_TRUE(store_->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 1)));
  VerifierRecord next = MakeRec("alice", "r", Mechanism::kCmacPassword, 2);
  next.params = KdfParams::Interactive();
  ASSERT_TRUE(store_->Put(next));
  auto got = store_->Find("alice", "r", Mechanism::kCmacPassword);
  ASSERT_TRUE(got.has_value());
  ExpectSame(next, *got);
  ASSERT_EQ(store_->List().size(), 1u);
}

TEST_P(StoreTest, MechanismsAreSeparateRecords) {
  const VerifierRecord cmac = MakeRec("alice", "r", Mechanism::kCmacPassword, 1);
  const VerifierRecord pake = MakeRec("alice", "r", Mechanism::kPake2Plus, 2, 81);
  ASSERT_TRUE(store_->Put(cmac));
  ASSERT_TRUE(store_->Put(pake));
  auto got_cmac = store_->Find("alice", "r", Mechanism::kCmacPassword);
  auto got_pake = store_->Find("alice", "r", Mechanism::kPake2Plus);
  ASSERT_TRUE(got_cmac && got_pake);
  ExpectSame(cmac, *got_cmac);
  ExpectSame(pake, *got_pake);
  EXPECT_EQ(got_pake->verifier.size(), 81u);
}

TEST_P(StoreTest, DeleteRemovesEveryMechanismOfTheUserInTheRealm) {
  ASSERT_TRUE(store_->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 1)));
  ASSERT_TRUE(store_->Put(MakeRec("alice", "r", Mechanism::kPake2Plus, 2)));
  ASSERT_TRUE(store_->Put(MakeRec("alice", "other", Mechanism::kCmacPassword, 3)));
  ASSERT_TRUE(store_->Put(MakeRec("bob", "r", Mechanism::kCmacPassword, 4)));
  EXPECT_TRUE(store_->Delete("alice", "r"));
  EXPECT_FALSE(store_->Find("alice", "r", Mechanism::kCmacPassword));
  EXPECT_FALSE(store_->Find("alice", "r", Mechanism::kPake2Plus));
  EXPECT_TRUE(store_->Find("alice", "other", Mechanism::kCmacPassword));
  EXPECT_TRUE(store_->Find("bob", "r", Mechanism::kCmacPassword));
  EXPECT_FALSE(store_->Delete("alice", "r"));  // nothing left to delete
  EXPECT_FALSE(store_->Delete("nobody", "r"));
}

TEST_P(StoreTest, ListGroupsMechanismsPerUserAndRealm) {
  EXPECT_TRUE(store_->List().empty());
  ASSERT_TRUE(store_->Put(MakeRec("bob", "r", Mechanism::kCmacPassword, 1)));
  ASSERT_TRUE(store_->Put(MakeRec("alice", "r", Mechanism::kPake2Plus, 2)));
  ASSERT_TRUE(store_->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 3)));
  ASSERT_TRUE(store_->Put(MakeRec("alice", "s", Mechanism::kCmacPassword, 4)));
  const std::vector<UserSummary> list = store_->List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].user, "alice");
  EXPECT_EQ(list[0].realm, "r");
  EXPECT_EQ(list[0].mechanisms,
            (std::vector<Mechanism>{Mechanism::kCmacPassword,
                                    Mechanism::kPake2Plus}));
  EXPECT_EQ(list[1].user, "alice");
  EXPECT_EQ(list[1].realm, "s");
  EXPECT_EQ(list[2].user, "bob");
}

TEST_P(StoreTest, RefusesUnstorableRecords) {
  VerifierRecord no_user = MakeRec("", "r", Mechanism::kCmacPassword, 1);
  EXPECT_FALSE(store_->Put(no_user));
  VerifierRecord no_verifier = MakeRec("alice", "r", Mechanism::kCmacPassword, 1);
  no_verifier.verifier = SecretBuffer();
  EXPECT_FALSE(store_->Put(no_verifier));
  VerifierRecord huge_user = MakeRec(std::string(5000, 'a'), "r",
                                     Mechanism::kCmacPassword, 1);
  EXPECT_FALSE(store_->Put(huge_user));
  VerifierRecord huge_limits = MakeRec("alice", "r", Mechanism::kCmacPassword, 1);
  huge_limits.params.memlimit = ~uint64_t{0};
  EXPECT_FALSE(store_->Put(huge_limits));
  EXPECT_TRUE(store_->List().empty());
}

TEST_P(StoreTest, NamesAreBytesNotCStrings) {
  const std::string user("al\0ice", 6);
  const VerifierRecord rec = MakeRec(user, "r\xff", Mechanism::kCmacPassword, 7);
  ASSERT_TRUE(store_->Put(rec));
  EXPECT_FALSE(store_->Find("al", "r\xff", Mechanism::kCmacPassword));
  auto got = store_->Find(user, "r\xff", Mechanism::kCmacPassword);
  ASSERT_TRUE(got.has_value());
  ExpectSame(rec, *got);
}

TEST_P(StoreTest, ZeroTimestampMeansNow) {
  VerifierRecord rec = MakeRec("alice", "r", Mechanism::kCmacPassword, 1);
  rec.updated_unix = 0;
  const int64_t before = static_cast<int64_t>(std::time(nullptr));
  ASSERT_TRUE(store_->Put(rec));
  auto got = store_->Find("alice", "r", Mechanism::kCmacPassword);
  ASSERT_TRUE(got.has_value());
  EXPECT_GE(got->updated_unix, before);
}

TEST_P(StoreTest, ConcurrentPutAndFind) {
  constexpr int kThreads = 6;
  constexpr int kOps = 60;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        const std::string user = "u" + std::to_string(t) + "_" + std::to_string(i % 10);
        const uint8_t fill = static_cast<uint8_t>(t * 16 + i % 10);
        VerifierRecord rec = MakeRec(user, "r", Mechanism::kCmacPassword, fill);
        if (!store_->Put(rec)) ++failures;
        auto got = store_->Find(user, "r", Mechanism::kCmacPassword);
        // Only this thread writes |user|, so it reads its own last write.
        if (!got || !got->verifier.Equal(rec.verifier)) ++failures;
        // Another thread's users: any complete record, or none yet.
        const std::string other = "u" + std::to_string((t + 1) % kThreads) + "_0";
        auto seen = store_->Find(other, "r", Mechanism::kCmacPassword);
        if (seen && seen->verifier.size() != 16) ++failures;
        if (i % 7 == 0) store_->List();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->List().size(), static_cast<size_t>(kThreads * 10));
}

INSTANTIATE_TEST_SUITE_P(Both, StoreTest,
                         ::testing::Values(Kind::kSqlite, Kind::kMemory),
                         [](const ::testing::TestParamInfo<Kind>& p) {
                           return p.param == Kind::kSqlite ? "Sqlite"
                                                              : "Memory";
                         });

// --- SQLite specifics -------------------------------------------------------

TEST(SqliteVerifierStore, PersistsAcrossReopen) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.File("v.db");
  const VerifierRecord rec = MakeRec("alice", "r", Mechanism::kCmacPassword, 9);
  {
    std::string error;
    auto store = SqliteVerifierStore::Open(path, &error);
    ASSERT_NE(store, nullptr) << error;
    ASSERT_TRUE(store->Put(rec));
    ASSERT_TRUE(store->Put(MakeRec("bob", "r", Mechanism::kCmacPassword, 3)));
    ASSERT_TRUE(store->Delete("bob", "r"));
  }
  std::string error;
  auto store = SqliteVerifierStore::Open(path, &error);
  ASSERT_NE(store, nullptr) << error;
  auto got = store->Find("alice", "r", Mechanism::kCmacPassword);
  ASSERT_TRUE(got.has_value());
  ExpectSame(rec, *got);
  EXPECT_FALSE(store->Find("bob", "r", Mechanism::kCmacPassword));
  EXPECT_EQ(store->List().size(), 1u);
}

TEST(SqliteVerifierStore, TwoConnectionsSeeEachOther) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  std::string error;
  auto a = SqliteVerifierStore::Open(path, &error);
  ASSERT_NE(a, nullptr) << error;
  auto b = SqliteVerifierStore::Open(path, &error);
  ASSERT_NE(b, nullptr) << error;
  ASSERT_TRUE(a->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 1)));
  EXPECT_TRUE(b->Find("alice", "r", Mechanism::kCmacPassword).has_value());
}

TEST(SqliteVerifierStore, FileIsOwnerOnlyWhateverTheUmask) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  const mode_t old = ::umask(0);  // the most permissive umask there is
  std::string error;
  auto store = SqliteVerifierStore::Open(path, &error);
  ::umask(old);
  ASSERT_NE(store, nullptr) << error;
  ASSERT_TRUE(store->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 1)));
  for (const std::string& f : {path, path + "-wal", path + "-shm"}) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) {
      EXPECT_NE(f, path) << "main file missing";
      continue;
    }
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
}

TEST(SqliteVerifierStore, UsesWriteAheadLog) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  std::string error;
  auto store = SqliteVerifierStore::Open(path, &error);
  ASSERT_NE(store, nullptr) << error;
  ASSERT_TRUE(store->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 1)));
  // While the store is open, writes go to the -wal file.
  struct stat st {};
  EXPECT_EQ(::stat((path + "-wal").c_str(), &st), 0);
  // WAL is persistent: the header's read/write versions (offsets 18, 19)
  // are 2 (https://sqlite.org/fileformat2.html §1.3.3).
  std::ifstream in(path, std::ios::binary);
  char header[20] = {};
  ASSERT_TRUE(in.read(header, sizeof(header)));
  EXPECT_EQ(header[18], 2);
  EXPECT_EQ(header[19], 2);
}

TEST(SqliteVerifierStore, RefusesNewerSchema) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  {
    std::string error;
    ASSERT_NE(SqliteVerifierStore::Open(path, &error), nullptr) << error;
  }
  RawExec(path, "PRAGMA user_version = " +
                    std::to_string(SqliteVerifierStore::kSchemaVersion + 1));
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(path, &error), nullptr);
  EXPECT_NE(error.find("newer"), std::string::npos) << error;
  EXPECT_NE(error.find(path), std::string::npos) << error;
}

TEST(SqliteVerifierStore, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 131 + 7) & 0xff));
  }
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(path, &error), nullptr);
  EXPECT_NE(error.find("not a verifier store"), std::string::npos) << error;
}

TEST(SqliteVerifierStore, RefusesATruncatedDatabaseHeader) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  {
    std::string error;
    auto s = SqliteVerifierStore::Open(path, &error);
    ASSERT_NE(s, nullptr) << error;
    ASSERT_TRUE(s->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 1)));
  }
  // Overwrite the magic string at the start of the file.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write("NOT SQLITE AT ALL", 16);
  }
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(path, &error), nullptr);
  EXPECT_FALSE(error.empty());
}

TEST(SqliteVerifierStore, RefusesSomebodyElsesDatabase) {
  TempDir dir;
  const std::string path = dir.File("other.db");
  RawExec(path, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)");
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(path, &error), nullptr);
  EXPECT_NE(error.find("not a verifier store"), std::string::npos) << error;

  const std::string versioned = dir.File("versioned.db");
  RawExec(versioned, "CREATE TABLE t (x); PRAGMA user_version = 1");
  EXPECT_EQ(SqliteVerifierStore::Open(versioned, &error), nullptr);
  EXPECT_NE(error.find("not a verifier store"), std::string::npos) << error;
}

TEST(SqliteVerifierStore, AnEmptyFileBecomesAStore) {
  TempDir dir;
  const std::string path = dir.File("empty.db");
  { std::ofstream out(path); }
  std::string error;
  auto store = SqliteVerifierStore::Open(path, &error);
  ASSERT_NE(store, nullptr) << error;
  EXPECT_TRUE(store->Put(MakeRec("alice", "r", Mechanism::kCmacPassword, 1)));
}

TEST(SqliteVerifierStore, ReadableErrorForAMissingDirectory) {
  TempDir dir;
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(dir.File("no/such/dir/v.db"), &error),
            nullptr);
  EXPECT_NE(error.find("cannot create"), std::string::npos) << error;
  EXPECT_EQ(SqliteVerifierStore::Open("", &error), nullptr);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(SqliteVerifierStore::Open("", nullptr), nullptr);  // no crash
}

TEST(SqliteVerifierStore, RefusesASymlink) {
  TempDir dir;
  const std::string real = dir.File("real.db");
  const std::string link = dir.File("link.db");
  {
    std::string error;
    ASSERT_NE(SqliteVerifierStore::Open(real, &error), nullptr) << error;
  }
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  std::string error;
  EXPECT_EQ(SqliteVerifierStore::Open(link, &error), nullptr);
  EXPECT_FALSE(error.empty());
}

TEST(SqliteVerifierStore, CorruptRowIsNotARecord) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  std::string error;
  auto store = SqliteVerifierStore::Open(path, &error);
  ASSERT_NE(store, nullptr) << error;
  // Rows written behind the store's back with the wrong shapes.
  RawExec(path,
          "INSERT INTO verifiers VALUES ('text', 'r', 1, 'not a blob', 2, 1, "
          "8192, x'00112233', 0);"
          "INSERT INTO verifiers VALUES ('neg', 'r', 1, x'00', 2, -1, 8192, "
          "x'00112233', 0);"
          "INSERT INTO verifiers VALUES ('empty', 'r', 1, x'00', 2, 1, 8192, "
          "x'', 0);");
  EXPECT_FALSE(store->Find("text", "r", Mechanism::kCmacPassword));
  EXPECT_FALSE(store->Find("neg", "r", Mechanism::kCmacPassword));
  EXPECT_FALSE(store->Find("empty", "r", Mechanism::kCmacPassword));
}

TEST(SqliteVerifierStore, DeletedVerifiersAreNotLeftInTheFile) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  {
    std::string error;
    auto store = SqliteVerifierStore::Open(path, &error);
    ASSERT_NE(store, nullptr) << error;
    ASSERT_TRUE(store->Put(MakeRec("alice", "r", Mechanism::kCmacPassword,
                                   0xab, 64)));
    ASSERT_TRUE(store->Delete("alice", "r"));
  }  // closing checkpoints the WAL into the main file
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find(std::string(64, '\xab')), std::string::npos);
}

}  // namespace
}  // namespace tcpcrypt::auth
