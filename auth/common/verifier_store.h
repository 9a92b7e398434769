// verifier_store.h: where a server keeps what it needs to check passwords,
// never the passwords themselves.
//
// One record per (user, realm, mechanism): the salt, the KDF parameters it
// was made with, and the verifier (cmac_password: the 16-byte key h;
// pake2plus: w0 | L). SqliteVerifierStore keeps them in one SQLite file
// (WAL, versioned schema); fleets may implement the interface over a shared
// database instead.
#ifndef TCPCRYPT_AUTH_COMMON_VERIFIER_STORE_H_
#define TCPCRYPT_AUTH_COMMON_VERIFIER_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/common/mechanism.h"
#include "auth/common/password_kdf.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth {

struct VerifierRecord {
  std::string user;
  std::string realm;
  Mechanism mechanism = Mechanism::kCmacPassword;
  std::vector<uint8_t> salt;
  KdfParams params;
  SecretBuffer verifier;
  int64_t updated_unix = 0;
};

struct UserSummary {
  std::string user;
  std::string realm;
  std::vector<Mechanism> mechanisms;
};

// VerifierStore implementations are thread-safe.
class VerifierStore {
 public:
  virtual ~VerifierStore() = default;
  virtual std::optional<VerifierRecord> Find(const std::string& user,
                                             const std::string& realm,
                                             Mechanism mechanism) = 0;
  // Put inserts or replaces the record for (user, realm, mechanism).
  [[nodiscard]] virtual bool Put(const VerifierRecord& record) = 0;
  // Delete removes every record of |user| in |realm|; false if none existed.
  virtual bool Delete(const std::string& user, const std::string& realm) = 0;
  virtual std::vector<UserSummary> List() = 0;
};

class SqliteVerifierStore final : public VerifierStore {
 public:
  // OpenMode says what Open does when |path| does not exist.
  enum class OpenMode {
    kCreate,     // create an empty store, mode 0600 (`tcpcrypt user add`)
    kMustExist,  // fail: a server or `user list/del/passwd` given a
                 // mistyped path must not run with an empty store
  };

  // Open opens the store at |path| (creating it per |mode|), runs schema
  // migrations, and enables WAL. On failure returns nullptr and sets
  // |error| to a readable reason; a missing file under kMustExist reads
  // "users file '<path>' does not exist; create it with `tcpcrypt user add
  // NAME --users <path> --realm REALM`".
  //
  // Permissions: the verifiers are password-equivalent for CMAC (and allow
  // offline guessing for SPAKE2+), so Open makes sure only the owner can
  // read them. Before SQLite touches the files, the store and its existing
  // -wal, -shm and -journal side files must be regular files (symlinks are
  // refused). A file with any group or other permission bit is tightened
  // to 0600 when it belongs to the process's effective uid, and refused
  // (nullptr, with the mode and owner in |error|) when it belongs to
  // someone else, since only its owner can fix it. A file of another user
  // that is already 0600 (root serving a service account's store) is
  // accepted. The checks name the file by path, so they do not defend
  // against an attacker who can write to the store's directory.
  static std::unique_ptr<SqliteVerifierStore> Open(
      const std::string& path, std::string* error,
      OpenMode mode = OpenMode::kCreate);
  ~SqliteVerifierStore() override;

  std::optional<VerifierRecord> Find(const std::string& user,
                                     const std::string& realm,
                                     Mechanism mechanism) override;
  bool Put(const VerifierRecord& record) override;
  bool Delete(const std::string& user, const std::string& realm) override;
  std::vector<UserSummary> List() override;

  static constexpr int kSchemaVersion = 1;

 private:
  struct Impl;
  explicit SqliteVerifierStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// MemoryVerifierStore is for tests and embedding.
class MemoryVerifierStore final : public VerifierStore {
 public:
  std::optional<VerifierRecord> Find(const std::string& user,
                                     const std::string& realm,
                                     Mechanism mechanism) override;
  bool Put(const VerifierRecord& record) override;
  bool Delete(const std::string& user, const std::string& realm) override;
  std::vector<UserSummary> List() override;

 private:
  std::mutex mu_;
  std::vector<VerifierRecord> records_;
};

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_VERIFIER_STORE_H_
