#include "sdk/cli/user_command.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "auth/cmac_password/cmac_password.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake2plus.h"
#include "core_transport/engine/rng.h"
#include "sdk/cli/password_input.h"

namespace tcpcrypt::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitStore = 4;

int Fail(const std::string& msg, int code) {
  std::fprintf(stderr, "tcpcrypt: %s\n", msg.c_str());
  return code;
}

bool KdfFromName(const std::string& name, auth::KdfParams* out) {
  if (name == "interactive") {
    *out = auth::KdfParams::Interactive();
  } else if (name == "moderate") {
    *out = auth::KdfParams::Interactive();
    out->opslimit = 3;
    out->memlimit = 256ull << 20;
  } else if (name == "test") {
    *out = auth::KdfParams::ForTests();
  } else {
    return false;
  }
  return true;
}

void AddCommon(CLI::App* sub, UserCommand* cmd, bool with_name) {
  if (with_name) sub->add_option("name", cmd->name, "User name")->required();
  sub->add_option("--users", cmd->users_file, "The verifier store (SQLite file)")
      ->required()
      ->type_name("FILE");
  sub->add_option("--realm", cmd->realm,
                  with_name ? "Required: the server's name as clients dial it (e.g. "
                              "127.0.0.1 or forum.example); passwords are bound to it"
                            : "Only users of this realm");
}

// ParseMechanisms turns --mechanism values into the records to write.
bool ParseMechanisms(const std::vector<std::string>& names, bool* out_pake, bool* out_cmac) {
  *out_pake = *out_cmac = false;
  for (const std::string& n : names) {
    if (n == "pake") {
      *out_pake = true;
    } else if (n == "cmac") {
      *out_cmac = true;
    } else {
      return false;
    }
  }
  return *out_pake || *out_cmac;
}

// SetPassword writes the chosen password records (SPAKE2+ and/or CMAC) for
// one user. `passwd` removes the records it does not write, so an old
// password never survives in a mechanism that was not renewed.
int SetPassword(const UserCommand& cmd, bool is_new) {
  auth::KdfParams params;
  if (!KdfFromName(cmd.kdf, &params)) {
    return Fail("--kdf must be interactive, moderate or test", kExitUsage);
  }
  bool want_pake = false, want_cmac = false;
  if (!ParseMechanisms(cmd.mechanisms, &want_pake, &want_cmac)) {
    return Fail("--mechanism must be pake, cmac or pake,cmac", kExitUsage);
  }
  std::string error;
  auto store = auth::SqliteVerifierStore::Open(
      cmd.users_file, &error,
      is_new ? auth::SqliteVerifierStore::OpenMode::kCreate
             : auth::SqliteVerifierStore::OpenMode::kMustExist);
  if (store == nullptr) return Fail(error, kExitStore);
  const bool exists =
      store->Find(cmd.name, cmd.realm, auth::Mechanism::kCmacPassword).has_value() ||
      store->Find(cmd.name, cmd.realm, auth::Mechanism::kPake2Plus).has_value();
  if (is_new && exists) {
    return Fail("user '" + cmd.name + "' already exists in realm '" + cmd.realm +
                    "' (use 'tcpcrypt user passwd')",
                kExitStore);
  }
  if (!is_new && !exists) {
    return Fail("no user '" + cmd.name + "' in realm '" + cmd.realm + "'", kExitStore);
  }
  auto password = ReadPassword(cmd.password_file, "", "Password for " + cmd.name + ": ",
                               /*confirm=*/true, &error);
  if (password == nullptr) return Fail(error, kExitUsage);
  const std::string_view pw(reinterpret_cast<const char*>(password->data()), password->size());
  auth::VerifierRecord cmac_record, pake_record;
  if ((want_cmac && !auth::cmac::MakeRecord(cmd.name, cmd.realm, pw, params,
                                            SystemRng::Instance(), &cmac_record)) ||
      (want_pake && !auth::pake::MakeRecord(cmd.name, cmd.realm, pw, params,
                                            SystemRng::Instance(), &pake_record))) {
    return Fail("could not derive the password verifiers (out of memory?)", kExitStore);
  }
  // passwd: drop the old records first, so a mechanism left out of
  // --mechanism does not keep accepting the old password.
  if (!is_new) (void)store->Delete(cmd.name, cmd.realm);
  if ((want_cmac && !store->Put(cmac_record)) || (want_pake && !store->Put(pake_record))) {
    return Fail("could not write to " + cmd.users_file, kExitStore);
  }
  const char* mechs = want_cmac && want_pake ? "cmac, pake" : want_cmac ? "cmac" : "pake";
  std::fprintf(stderr, "%s user '%s' in realm '%s' (%s)\n", is_new ? "added" : "updated",
               cmd.name.c_str(), cmd.realm.c_str(), mechs);
  if (want_cmac) {
    std::fprintf(stderr,
                 "note: the cmac record is password-equivalent on the server (whoever reads "
                 "%s can log in as '%s' with cmac); --mechanism pake avoids it\n",
                 cmd.users_file.c_str(), cmd.name.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddUserCommand(CLI::App& app, UserCommand* cmd) {
  cmd->app = app.add_subcommand(
      "user", "Manage the users of a password server (the verifier store)");
  cmd->app->require_subcommand(1);
  cmd->app->footer(R"(The store keeps salts, KDF parameters and verifiers, never passwords.
Passwords come from --password-file (not readable by group or others), else a
no-echo prompt on the terminal (/dev/tty), never from standard input.
--mechanism chooses the records: pake (SPAKE2+; a stolen store allows only
offline guessing) and cmac (password-equivalent on the server); both by
default. add creates the store; the other commands need it to exist.

Examples:
  tcpcrypt user add alice --users users.db --realm forum.example --mechanism pake
  tcpcrypt user add bob --users users.db --realm forum.example --password-file pw.txt
  tcpcrypt user passwd alice --users users.db --realm forum.example --password-file /dev/stdin < pw.txt
  tcpcrypt user list --users users.db
  tcpcrypt user del bob --users users.db --realm forum.example)");

  cmd->add = cmd->app->add_subcommand("add", "Add a user");
  AddCommon(cmd->add, cmd, true);
  cmd->passwd = cmd->app->add_subcommand("passwd", "Change a user's password");
  AddCommon(cmd->passwd, cmd, true);
  for (CLI::App* sub : {cmd->add, cmd->passwd}) {
    sub->add_option("--password-file", cmd->password_file,
                    "Read the password from the first line of this file");
    sub->add_option("--mechanism", cmd->mechanisms,
                    "Records to write: pake, cmac, or pake,cmac (repeatable)")
        ->delimiter(',')
        ->allow_extra_args(false)  // one value (or comma list) per --mechanism
        ->check(CLI::IsMember({"pake", "cmac"}))
        ->type_name("MECH")
        ->capture_default_str();
    sub->add_option("--kdf", cmd->kdf,
                    "Argon2id cost: interactive (64 MiB), moderate (256 MiB), or test "
                    "(minimum; never for real passwords)")
        ->capture_default_str();
  }
  cmd->del = cmd->app->add_subcommand("del", "Delete a user");
  AddCommon(cmd->del, cmd, true);
  cmd->list = cmd->app->add_subcommand("list", "List users");
  AddCommon(cmd->list, cmd, false);
  cmd->list->add_flag("--json", cmd->json, "One JSON object per user");
}

int RunUserCommand(const UserCommand& cmd) {
  if (cmd.realm.empty() && !cmd.list->parsed()) {
    return Fail("--realm is required: the server name clients dial, e.g. 127.0.0.1 or "
                "forum.example",
                kExitUsage);
  }
  if (cmd.add->parsed()) return SetPassword(cmd, /*is_new=*/true);
  if (cmd.passwd->parsed()) return SetPassword(cmd, /*is_new=*/false);
  std::string error;
  auto store = auth::SqliteVerifierStore::Open(cmd.users_file, &error,
                                               auth::SqliteVerifierStore::OpenMode::kMustExist);
  if (store == nullptr) return Fail(error, kExitStore);
  if (cmd.del->parsed()) {
    if (!store->Delete(cmd.name, cmd.realm)) {
      return Fail("no user '" + cmd.name + "' in realm '" + cmd.realm + "'", kExitStore);
    }
    std::fprintf(stderr, "deleted user '%s' in realm '%s'\n", cmd.name.c_str(),
                 cmd.realm.c_str());
    return kExitOk;
  }
  for (const auth::UserSummary& u : store->List()) {
    if (!cmd.realm.empty() && u.realm != cmd.realm) continue;
    if (cmd.json) {
      nlohmann::json j = {{"user", u.user}, {"realm", u.realm},
                          {"mechanisms", nlohmann::json::array()}};
      for (auth::Mechanism m : u.mechanisms) j["mechanisms"].push_back(auth::MechanismName(m));
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::string mechs;
      for (auth::Mechanism m : u.mechanisms) {
        if (!mechs.empty()) mechs += ",";
        mechs += auth::MechanismName(m);
      }
      std::printf("%s\t%s\t%s\n", u.user.c_str(), u.realm.c_str(), mechs.c_str());
    }
  }
  return kExitOk;
}

}  // namespace tcpcrypt::cli
