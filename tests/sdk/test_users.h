// Scratch directories and password stores shared by the SDK tests.
#ifndef TCPCRYPT_TESTS_SDK_TEST_USERS_H_
#define TCPCRYPT_TESTS_SDK_TEST_USERS_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/cmac_password/cmac_password.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake2plus.h"
#include "core_transport/engine/rng.h"

namespace tcpcrypt::testing {

// MakeScratchDir creates a fresh directory /tmp/<prefix>-XXXXXX and returns
// its path, or "" if mkdtemp failed.
inline std::string MakeScratchDir(std::string_view prefix) {
  std::string tmpl = "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

// RemoveScratchDir deletes what MakeScratchDir made (no-op for "").
inline void RemoveScratchDir(const std::string& dir) {
  if (!dir.empty()) (void)!std::system(("rm -rf '" + dir + "'").c_str());
}

// What AddTestUser registers.
struct TestUserMechanisms {
  bool cmac = true;
  bool pake = true;
};

// AddTestUser stores records for |user| / |password| in |realm| (default
// "127.0.0.1": the realm a client that dials 127.0.0.1 names) in the SQLite
// store at |users_file| (created if missing), with the cheapest KDF
// parameters (tests only: clients must set
// ClientOptions::min_password_hashing = kMinimumForTestsOnly).
inline ::testing::AssertionResult AddTestUser(const std::string& users_file,
                                              std::string_view user,
                                              std::string_view password,
                                              TestUserMechanisms m = {},
                                              std::string_view realm = "127.0.0.1") {
  std::string error;
  auto store = auth::SqliteVerifierStore::Open(users_file, &error);
  if (store == nullptr) return ::testing::AssertionFailure() << error;
  auth::VerifierRecord r;
  if (m.pake && !(auth::pake::MakeRecord(user, realm, password, auth::KdfParams::ForTests(),
                                         SystemRng::Instance(), &r) &&
                  store->Put(r))) {
    return ::testing::AssertionFailure() << "cannot store the SPAKE2+ record";
  }
  if (m.cmac && !(auth::cmac::MakeRecord(user, realm, password, auth::KdfParams::ForTests(),
                                         SystemRng::Instance(), &r) &&
                  store->Put(r))) {
    return ::testing::AssertionFailure() << "cannot store the CMAC record";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tcpcrypt::testing

#endif  // TCPCRYPT_TESTS_SDK_TEST_USERS_H_
