#include "auth/common/verifier_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

namespace tcpcrypt::auth {
namespace {

// kApplicationId marks a file as a tcpcrypt verifier store ("tcpv"), so a
// foreign SQLite database is refused instead of being written into.
constexpr int32_t kApplicationId = 0x74637076;

// Records larger than these are refused on Put and treated as corrupt on
// Find: no mechanism needs more, and a store must not become a blob dump.
constexpr size_t kMaxNameLen = 1024;
constexpr size_t kMaxSaltLen = 64;
constexpr size_t kMaxVerifierLen = 1024;

// kMigrations[v] upgrades a store from schema version v to v + 1. Version 0
// is an empty file. Append a step here (and bump kSchemaVersion) to change
// the schema; never edit a released step.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the verifier table.
    "CREATE TABLE verifiers ("
    "  user TEXT NOT NULL,"
    "  realm TEXT NOT NULL,"
    "  mechanism INTEGER NOT NULL,"
    "  salt BLOB NOT NULL,"
    "  kdf_alg INTEGER NOT NULL,"
    "  opslimit INTEGER NOT NULL,"
    "  memlimit INTEGER NOT NULL,"
    "  verifier BLOB NOT NULL,"
    "  updated_unix INTEGER NOT NULL,"
    "  PRIMARY KEY (user, realm, mechanism))",
};
static_assert(std::size(kMigrations) == SqliteVerifierStore::kSchemaVersion,
              "one migration step per schema version");

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

struct DbDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;

// StmtScope resets a shared prepared statement and drops its bindings when
// the call that used it returns, so no bound verifier outlives the call.
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* s) : s_(s) {}
  ~StmtScope() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  sqlite3_stmt* s_;
};

bool IsKnownMechanism(int64_t m) {
  return m == static_cast<int64_t>(Mechanism::kCmacPassword) ||
         m == static_cast<int64_t>(Mechanism::kPake2Plus) ||
         m == static_cast<int64_t>(Mechanism::kX509Batch) ||
         m == static_cast<int64_t>(Mechanism::kTicket);
}

bool FitsInt64(uint64_t v) {
  return v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

// Exec runs |sql| (no parameters) and sets |error| on failure.
bool Exec(sqlite3* db, const char* sql, std::string* error) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    *error = msg != nullptr ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return false;
  }
  return true;
}

// QueryInt runs a one-row, one-integer query such as a PRAGMA.
bool QueryInt(sqlite3* db, const char* sql, int64_t* out, std::string* error) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    *error = sqlite3_errmsg(db);
    return false;
  }
  StmtPtr stmt(raw);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) {
    *error = sqlite3_errmsg(db);
    return false;
  }
  *out = sqlite3_column_int64(stmt.get(), 0);
  return true;
}

// Migrate brings the schema from |from| to kSchemaVersion in one
// transaction. It re-reads the version under the write lock, so two
// processes opening a new store at once migrate it once.
bool Migrate(sqlite3* db, std::string* error) {
  if (!Exec(db, "BEGIN IMMEDIATE", error)) return false;
  auto fail = [&](std::string reason) {
    std::string ignored;
    Exec(db, "ROLLBACK", &ignored);
    *error = std::move(reason);
    return false;
  };
  int64_t version = 0;
  std::string why;
  if (!QueryInt(db, "PRAGMA user_version", &version, &why)) return fail(why);
  if (version > SqliteVerifierStore::kSchemaVersion) {
    return fail("schema version " + std::to_string(version) +
                " is newer than this library supports (" +
                std::to_string(SqliteVerifierStore::kSchemaVersion) +
                "); upgrade tcpcrypt");
  }
  if (version == 0) {
    // An empty file, or somebody else's database: only the former is ours.
    int64_t objects = 0;
    if (!QueryInt(db, "SELECT count(*) FROM sqlite_schema", &objects, &why)) {
      return fail(why);
    }
    if (objects != 0) {
      return fail("not a verifier store (an SQLite database with other tables)");
    }
    if (!Exec(db, ("PRAGMA application_id = " + std::to_string(kApplicationId))
                      .c_str(),
              &why)) {
      return fail(why);
    }
  }
  for (int64_t v = version; v < SqliteVerifierStore::kSchemaVersion; ++v) {
    if (!Exec(db, kMigrations[v], &why)) {
      return fail("migration to schema version " + std::to_string(v + 1) +
                  " failed: " + why);
    }
  }
  if (version != SqliteVerifierStore::kSchemaVersion &&
      !Exec(db, ("PRAGMA user_version = " +
                 std::to_string(SqliteVerifierStore::kSchemaVersion))
                    .c_str(),
            &why)) {
    return fail(why);
  }
  return Exec(db, "COMMIT", error);
}

// CreateFileOwnerOnly makes |path| with mode 0600 if it does not exist, so
// the verifiers are never readable by others, whatever the umask. SQLite
// gives its -wal and -shm files the main file's mode.
bool CreateFileOwnerOnly(const std::string& path, std::string* error) {
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
             S_IRUSR | S_IWUSR);
  if (fd < 0) {
    if (errno == EEXIST) return true;
    *error = std::string("cannot create: ") + std::strerror(errno);
    return false;
  }
  const bool ok = ::fchmod(fd, S_IRUSR | S_IWUSR) == 0;
  if (!ok) *error = std::string("cannot chmod 0600: ") + std::strerror(errno);
  ::close(fd);
  return ok;
}

std::string ModeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

enum class FileState { kOk, kMissing, kRefused };

// SecureExistingFile checks the store file (or one of SQLite's side files)
// at |path| before SQLite opens it: it must be a regular file, not a
// symlink. Group/other permission bits are removed (mode 0600) when the
// file belongs to our effective uid; a loose file owned by someone else is
// refused, since we cannot tighten it. kMissing when it does not exist.
FileState SecureExistingFile(const std::string& path, std::string* error) {
  const int fd = ::open(path.c_str(),
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return FileState::kMissing;
    *error = errno == ELOOP ? std::string("is a symbolic link (refused)")
                            : std::string("cannot open: ") + std::strerror(errno);
    return FileState::kRefused;
  }
  struct stat st {};
  FileState result = FileState::kOk;
  if (::fstat(fd, &st) != 0) {
    *error = std::string("cannot stat: ") + std::strerror(errno);
    result = FileState::kRefused;
  } else if (!S_ISREG(st.st_mode)) {
    *error = "not a regular file";
    result = FileState::kRefused;
  } else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    if (st.st_uid != ::geteuid()) {
      *error = "mode " + ModeString(st.st_mode) +
               " lets the group or others at the verifiers, and the file "
               "belongs to uid " + std::to_string(st.st_uid) +
               ", not to us (uid " + std::to_string(::geteuid()) +
               "); have its owner run chmod 600 on it";
      result = FileState::kRefused;
    } else if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
      *error = "mode " + ModeString(st.st_mode) +
               " lets the group or others at the verifiers and chmod 600 "
               "failed: " + std::strerror(errno);
      result = FileState::kRefused;
    }
  }
  ::close(fd);
  return result;
}

VerifierRecord Clone(const VerifierRecord& r) {
  VerifierRecord out;
  out.user = r.user;
  out.realm = r.realm;
  out.mechanism = r.mechanism;
  out.salt = r.salt;
  out.params = r.params;
  out.verifier = SecretBuffer(r.verifier.span());
  out.updated_unix = r.updated_unix;
  return out;
}

// RecordIsStorable is the shared Put precondition of both stores.
bool RecordIsStorable(const VerifierRecord& r) {
  return !r.user.empty() && r.user.size() <= kMaxNameLen &&
         r.realm.size() <= kMaxNameLen && r.salt.size() <= kMaxSaltLen &&
         !r.verifier.empty() && r.verifier.size() <= kMaxVerifierLen &&
         FitsInt64(r.params.opslimit) && FitsInt64(r.params.memlimit);
}

// AddSummary folds one (user, realm, mechanism) row into |out|, which is
// kept in (user, realm) order.
void AddSummary(std::vector<UserSummary>* out, const std::string& user,
                const std::string& realm, Mechanism m) {
  if (!out->empty() && out->back().user == user && out->back().realm == realm) {
    out->back().mechanisms.push_back(m);
    return;
  }
  out->push_back(UserSummary{user, realm, {m}});
}

}  // namespace

// ---------------------------------------------------------------------------
// SqliteVerifierStore

struct SqliteVerifierStore::Impl {
  std::mutex mu;  // one connection, one statement user at a time
  DbPtr db;
  // Statements are declared after |db| so they are finalized before it
  // closes (close_v2 would otherwise defer the close).
  StmtPtr find;
  StmtPtr put;
  StmtPtr del;
  StmtPtr list;

  bool Prepare(const char* sql, StmtPtr* out, std::string* error) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw,
                           nullptr) != SQLITE_OK) {
      *error = sqlite3_errmsg(db.get());
      return false;
    }
    out->reset(raw);
    return true;
  }
};

SqliteVerifierStore::SqliteVerifierStore(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

SqliteVerifierStore::~SqliteVerifierStore() = default;

std::unique_ptr<SqliteVerifierStore> SqliteVerifierStore::Open(
    const std::string& path, std::string* error, OpenMode open_mode) {
  std::string scratch;
  std::string* err = error != nullptr ? error : &scratch;
  auto fail = [&](const std::string& why) {
    *err = "verifier store " + path + ": " + why;
    return nullptr;
  };
  if (path.empty()) return fail("empty path");

  std::string why;
  switch (SecureExistingFile(path, &why)) {
    case FileState::kOk:
      break;
    case FileState::kMissing:
      if (open_mode == OpenMode::kMustExist) {
        *err = "users file '" + path +
               "' does not exist; create it with `tcpcrypt user add NAME "
               "--users " + path + " --realm REALM`";
        return nullptr;
      }
      if (!CreateFileOwnerOnly(path, &why)) return fail(why);
      break;
    case FileState::kRefused:
      return fail(why);
  }
  // SQLite's side files hold pages of the same verifiers.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    if (SecureExistingFile(path + suffix, &why) == FileState::kRefused) {
      return fail(std::string(suffix + 1) + " file: " + why);
    }
  }

  auto impl = std::make_unique<Impl>();
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
      nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) {
    return fail(raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
  }
  sqlite3* db = impl->db.get();
  sqlite3_extended_result_codes(db, 1);
  // Another process may hold the write lock briefly (a CLI adding a user).
  sqlite3_busy_timeout(db, 5000);

  // The first read of the header tells a database from anything else.
  int64_t version = 0;
  if (!QueryInt(db, "PRAGMA user_version", &version, &why)) {
    return fail("not a verifier store (" + why + ")");
  }
  if (version > kSchemaVersion) {
    return fail("schema version " + std::to_string(version) +
                " is newer than this library supports (" +
                std::to_string(kSchemaVersion) + "); upgrade tcpcrypt");
  }
  if (version > 0) {
    int64_t app_id = 0;
    if (!QueryInt(db, "PRAGMA application_id", &app_id, &why)) return fail(why);
    if (app_id != kApplicationId) {
      return fail("not a verifier store (foreign application_id)");
    }
  }

  // ARCHITECTURE decision 6: one file, WAL. The pragma answers the mode it
  // ended up in; anything else (a read-only directory) is an error.
  {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, nullptr) !=
        SQLITE_OK) {
      return fail(sqlite3_errmsg(db));
    }
    StmtPtr stmt(s);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return fail(sqlite3_errmsg(db));
    const unsigned char* mode = sqlite3_column_text(stmt.get(), 0);
    if (mode == nullptr ||
        std::strcmp(reinterpret_cast<const char*>(mode), "wal") != 0) {
      return fail("cannot enable WAL journaling");
    }
  }
  // Deleted verifiers are overwritten, not left in free pages.
  if (!Exec(db, "PRAGMA secure_delete = ON", &why)) return fail(why);

  if (version < kSchemaVersion && !Migrate(db, &why)) return fail(why);

  if (!impl->Prepare(
          "SELECT salt, kdf_alg, opslimit, memlimit, verifier, updated_unix "
          "FROM verifiers WHERE user = ?1 AND realm = ?2 AND mechanism = ?3",
          &impl->find, &why) ||
      !impl->Prepare(
          "INSERT OR REPLACE INTO verifiers (user, realm, mechanism, salt, "
          "kdf_alg, opslimit, memlimit, verifier, updated_unix) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
          &impl->put, &why) ||
      !impl->Prepare("DELETE FROM verifiers WHERE user = ?1 AND realm = ?2",
                     &impl->del, &why) ||
      !impl->Prepare("SELECT user, realm, mechanism FROM verifiers "
                     "ORDER BY user, realm, mechanism",
                     &impl->list, &why)) {
    return fail("not a verifier store (" + why + ")");
  }
  return std::unique_ptr<SqliteVerifierStore>(
      new SqliteVerifierStore(std::move(impl)));
}

std::optional<VerifierRecord> SqliteVerifierStore::Find(
    const std::string& user, const std::string& realm, Mechanism mechanism) {
  if (user.size() > kMaxNameLen || realm.size() > kMaxNameLen) {
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite3_stmt* s = impl_->find.get();
  StmtScope scope(s);
  if (sqlite3_bind_text(s, 1, user.data(), static_cast<int>(user.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_text(s, 2, realm.data(), static_cast<int>(realm.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int(s, 3, static_cast<int>(mechanism)) != SQLITE_OK) {
    return std::nullopt;
  }
  if (sqlite3_step(s) != SQLITE_ROW) return std::nullopt;

  // Column types are checked: a row of the wrong shape is not a record.
  if (sqlite3_column_type(s, 0) != SQLITE_BLOB ||
      sqlite3_column_type(s, 4) != SQLITE_BLOB) {
    return std::nullopt;
  }
  const int64_t alg = sqlite3_column_int64(s, 1);
  const int64_t ops = sqlite3_column_int64(s, 2);
  const int64_t mem = sqlite3_column_int64(s, 3);
  const auto* salt = static_cast<const uint8_t*>(sqlite3_column_blob(s, 0));
  const size_t salt_len = static_cast<size_t>(sqlite3_column_bytes(s, 0));
  const auto* ver = static_cast<const uint8_t*>(sqlite3_column_blob(s, 4));
  const size_t ver_len = static_cast<size_t>(sqlite3_column_bytes(s, 4));
  if (alg < 0 || alg > std::numeric_limits<uint32_t>::max() || ops < 0 ||
      mem < 0 || salt_len > kMaxSaltLen || ver == nullptr || ver_len == 0 ||
      ver_len > kMaxVerifierLen) {
    return std::nullopt;
  }

  VerifierRecord r;
  r.user = user;
  r.realm = realm;
  r.mechanism = mechanism;
  if (salt_len != 0) r.salt.assign(salt, salt + salt_len);
  r.params.algorithm = static_cast<uint32_t>(alg);
  r.params.opslimit = static_cast<uint64_t>(ops);
  r.params.memlimit = static_cast<uint64_t>(mem);
  // Copy straight into wiping storage; sqlite's column buffer is released
  // by the reset in |scope|.
  r.verifier = SecretBuffer(std::span<const uint8_t>(ver, ver_len));
  r.updated_unix = sqlite3_column_int64(s, 5);
  return r;
}

bool SqliteVerifierStore::Put(const VerifierRecord& record) {
  if (!RecordIsStorable(record)) return false;
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite3_stmt* s = impl_->put.get();
  StmtScope scope(s);
  static const uint8_t kEmpty = 0;
  const void* salt = record.salt.empty() ? &kEmpty : record.salt.data();
  const int64_t updated =
      record.updated_unix != 0 ? record.updated_unix : NowUnix();
  // SQLITE_STATIC: sqlite reads the bound verifier in place instead of
  // keeping its own copy of it.
  if (sqlite3_bind_text(s, 1, record.user.data(),
                        static_cast<int>(record.user.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_text(s, 2, record.realm.data(),
                        static_cast<int>(record.realm.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int(s, 3, static_cast<int>(record.mechanism)) != SQLITE_OK ||
      sqlite3_bind_blob(s, 4, salt, static_cast<int>(record.salt.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int64(s, 5, record.params.algorithm) != SQLITE_OK ||
      sqlite3_bind_int64(s, 6, static_cast<int64_t>(record.params.opslimit)) !=
          SQLITE_OK ||
      sqlite3_bind_int64(s, 7, static_cast<int64_t>(record.params.memlimit)) !=
          SQLITE_OK ||
      sqlite3_bind_blob(s, 8, record.verifier.data(),
                        static_cast<int>(record.verifier.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int64(s, 9, updated) != SQLITE_OK) {
    return false;
  }
  return sqlite3_step(s) == SQLITE_DONE;
}

bool SqliteVerifierStore::Delete(const std::string& user,
                                 const std::string& realm) {
  if (user.size() > kMaxNameLen || realm.size() > kMaxNameLen) return false;
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite3_stmt* s = impl_->del.get();
  StmtScope scope(s);
  if (sqlite3_bind_text(s, 1, user.data(), static_cast<int>(user.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_text(s, 2, realm.data(), static_cast<int>(realm.size()),
                        SQLITE_STATIC) != SQLITE_OK) {
    return false;
  }
  if (sqlite3_step(s) != SQLITE_DONE) return false;
  return sqlite3_changes(impl_->db.get()) > 0;
}

std::vector<UserSummary> SqliteVerifierStore::List() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite3_stmt* s = impl_->list.get();
  StmtScope scope(s);
  std::vector<UserSummary> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    const auto* u = sqlite3_column_text(s, 0);
    const int u_len = sqlite3_column_bytes(s, 0);
    const auto* r = sqlite3_column_text(s, 1);
    const int r_len = sqlite3_column_bytes(s, 1);
    const int64_t m = sqlite3_column_int64(s, 2);
    if (u == nullptr || r == nullptr || !IsKnownMechanism(m)) continue;
    AddSummary(&out,
               std::string(reinterpret_cast<const char*>(u),
                           static_cast<size_t>(u_len)),
               std::string(reinterpret_cast<const char*>(r),
                           static_cast<size_t>(r_len)),
               static_cast<Mechanism>(m));
  }
  return out;
}

// ---------------------------------------------------------------------------
// MemoryVerifierStore

std::optional<VerifierRecord> MemoryVerifierStore::Find(
    const std::string& user, const std::string& realm, Mechanism mechanism) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const VerifierRecord& r : records_) {
    if (r.user == user && r.realm == realm && r.mechanism == mechanism) {
      return Clone(r);
    }
  }
  return std::nullopt;
}

bool MemoryVerifierStore::Put(const VerifierRecord& record) {
  if (!RecordIsStorable(record)) return false;
  VerifierRecord copy = Clone(record);
  if (copy.updated_unix == 0) copy.updated_unix = NowUnix();
  std::lock_guard<std::mutex> lock(mu_);
  for (VerifierRecord& r : records_) {
    if (r.user == record.user && r.realm == record.realm &&
        r.mechanism == record.mechanism) {
      r = std::move(copy);
      return true;
    }
  }
  records_.push_back(std::move(copy));
  return true;
}

bool MemoryVerifierStore::Delete(const std::string& user,
                                 const std::string& realm) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t before = records_.size();
  std::erase_if(records_, [&](const VerifierRecord& r) {
    return r.user == user && r.realm == realm;
  });
  return records_.size() != before;
}

std::vector<UserSummary> MemoryVerifierStore::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const VerifierRecord*> sorted;
  sorted.reserve(records_.size());
  for (const VerifierRecord& r : records_) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(),
            [](const VerifierRecord* a, const VerifierRecord* b) {
              return std::tie(a->user, a->realm, a->mechanism) <
                     std::tie(b->user, b->realm, b->mechanism);
            });
  std::vector<UserSummary> out;
  for (const VerifierRecord* r : sorted) {
    AddSummary(&out, r->user, r->realm, r->mechanism);
  }
  return out;
}

}  // namespace tcpcrypt::auth
