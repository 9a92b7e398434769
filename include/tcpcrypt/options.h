// options.h: configuration of Client and Server, with safe defaults.
//
// The defaults encrypt (tcpcrypt required), offer Curve25519 (one round trip
// less), prefer AES-128-GCM, resume sessions, and authenticate nobody: an
// application adds authentication by listing mechanisms. Every time-out is
// finite by default.
#ifndef TCPCRYPT_OPTIONS_H_
#define TCPCRYPT_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tcpcrypt {

// Encryption policy.
enum class Encryption {
  kRequire,  // tcpcrypt (or TLS 1.3 when allowed), or fail
  kPrefer,   // tcpcrypt if the peer speaks it, else plain TCP (no session ID)
  kDisable,  // plain TCP
};

enum class KeyExchange { kCurve25519, kP256, kP521 };  // RFC 8548 TEPs
enum class Aead { kAes128Gcm, kAes256Gcm, kChaCha20Poly1305 };

// Authenticators; each endorses the channel binding (the tcpcrypt session
// ID, or the TLS 1.3 exporter).
enum class AuthMechanism {
  kCmacPassword,  // mutual password proof (fast; the server's verifier is password-equivalent)
  kPake,          // SPAKE2+ (RFC 9383): mutual password, server stores no password equivalent
  kX509,          // batch-signed server certificate (optionally client certificates)
  kTicket,        // symmetric re-authentication with a ticket from an earlier session
};

// Argon2id cost for password records. Records made with weaker settings
// are re-hashed at the user's next successful login.
enum class PasswordHashing {
  kInteractive,          // 64 MiB, 2 passes (libsodium "interactive")
  kModerate,             // 256 MiB, 3 passes
  kMinimumForTestsOnly,  // the library minimum: for tests, never for users
};

// What protects a Session.
enum class Channel { kTcpcrypt, kTls13, kPlain };

// Logging. The library writes nothing to the application's stdout, and to
// its stderr only warnings, and only while no LogFn is installed: give
// ClientOptions::log / ServerOptions::log a function and every message
// goes there instead (nothing then reaches stderr). Messages never hold
// secrets (no keys, passwords, proofs or key-log lines). The function may
// be called from any thread the library runs on (Create, Connect, Accept,
// Serve's loop): it must be thread-safe and must not call back into the
// Client or Server.
enum class LogLevel { kDebug, kInfo, kWarning, kError };
std::string_view LogLevelName(LogLevel level);  // "debug", "info", "warning", "error"
using LogFn = std::function<void(LogLevel level, std::string_view message)>;

// KeyLogFn receives one key-log line (docs/PROTOCOL.md "Key log"; newline
// included) per connection end, once its handshake completes, on the
// thread running that handshake. The line holds the session's master key:
// the view is wiped when the call returns.
using KeyLogFn = std::function<void(std::string_view line)>;

std::string_view AuthMechanismName(AuthMechanism m);  // "cmac", "pake", "x509", "ticket"
std::string_view ChannelName(Channel c);              // "tcpcrypt", "tls1.3", "plain"

struct Timeouts {
  int connect_ms = 10000;    // TCP connect
  int handshake_ms = 10000;  // tcpcrypt or TLS handshake
  int auth_ms = 15000;       // the whole authentication exchange
  int io_ms = 0;             // each blocking read/write after that; 0 = none
};

// Password holds a password in memory that is wiped on destruction. It is
// not copyable; share it with std::shared_ptr.
class Password {
 public:
  explicit Password(std::string_view text);
  ~Password();
  Password(const Password&) = delete;
  Password& operator=(const Password&) = delete;
  std::string_view view() const;

 private:
  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
};

struct ClientOptions {
  Encryption encryption = Encryption::kRequire;
  // "tcpcrypt, else TLS 1.3": when the server does not speak tcpcrypt,
  // reconnect with TLS 1.3 (needs ca_file or ca_pem). Authenticators then endorse the
  // TLS exporter instead of the session ID; the application does not change.
  bool tls_fallback = false;

  std::vector<KeyExchange> key_exchanges = {KeyExchange::kCurve25519};
  std::vector<Aead> aeads = {Aead::kAes128Gcm, Aead::kChaCha20Poly1305, Aead::kAes256Gcm};

  // Authentication: what this client can run, in its order of preference.
  // Empty: no authentication (the session is encrypted but anonymous).
  std::vector<AuthMechanism> mechanisms;
  // What the server must prove, checked on the server's choice of plan
  // before any mechanism runs (so no password-derived proof ever reaches a
  // server that proposes less). A server proposing less is refused with
  // UNAUTHENTICATED and a message naming what was missing, e.g. "the
  // server's plan [cmac] does not include a server certificate, which this
  // client requires". A ticket satisfies a requirement when the session
  // that issued it did.
  //  - require_server_authentication: some mechanism that proves the
  //    server (x509, cmac or pake) must run.
  //  - require_server_certificate: the plan must include x509, verified for
  //    server_name (or the host passed to Connect).
  //  - require_password: the plan must include cmac or pake.
  // The CLI's --auth x509+cmac sets both of the last two.
  bool require_server_authentication = true;
  bool require_server_certificate = false;
  bool require_password = false;
  std::string user;                    // for password mechanisms
  std::shared_ptr<const Password> password;
  // The host name (or IP) the server's X.509 certificate must match.
  // Empty: the host passed to Connect.
  std::string server_name;
  // The realm password proofs are bound to: the server's name, so a
  // password reused with two servers gives each an unrelated proof. Empty
  // (the default): server_name if set, else the host passed to Connect,
  // exactly as dialed ("127.0.0.1" and "localhost" are different realms).
  // Set it explicitly only for a fleet of servers that share one user
  // store under one name (every server of the fleet can then pose as the
  // others to these users).
  std::string realm;
  // Password KDF cost the client accepts from a server, checked before any
  // derivation and before any proof is sent (a refusal is UNAUTHENTICATED
  // naming the numbers):
  //  - min_password_hashing: the floor. A server naming cheaper parameters
  //    would receive a proof that is cheap to attack offline. Set
  //    kMinimumForTestsOnly only against test records.
  //  - max_password_memory_bytes / max_password_passes: the ceiling (the
  //    default admits kModerate). A server naming more is refused rather
  //    than let it make the client burn memory and time; a connection runs
  //    at most one password mechanism and accepts at most one re-hash.
  PasswordHashing min_password_hashing = PasswordHashing::kInteractive;
  uint64_t max_password_memory_bytes = 256ull << 20;  // 256 MiB
  uint32_t max_password_passes = 4;
  // Certificates and keys: each item is a path (the *_file field) or the
  // bytes themselves (the *_pem field), never both (INVALID_ARGUMENT naming
  // the two fields). In memory, PEM (starting with "-----BEGIN") may hold
  // any number of certificates; anything else is read as DER: one
  // certificate, or one unencrypted private key (PKCS#8 or the traditional
  // EC / RSA form). A file is always PEM.
  std::string ca_file;           // trust anchors for X.509 and TLS (PEM)
  std::string ca_pem;
  std::string client_cert_file;  // optional client certificate chain (PEM)
  std::string client_cert_pem;
  std::string client_key_file;
  // client_key_pem: Client::Create parses the key and wipes the library's
  // own copies of these bytes (OPENSSL_cleanse). The ClientOptions the
  // application keeps (or copied from) is the application's to wipe.
  std::string client_key_pem;

  // RFC 8548 §3.5 resumption (cache session secrets per server), and ticket
  // re-authentication (paper §4.1): both on by default. Tickets are kept per
  // (host, port, server_name, realm, user), stored only after a session in
  // which the server proved itself, and offered only to that same server.
  // A session whose authentication fails leaves no resumption state.
  bool resumption = true;
  bool tickets = true;

  Timeouts timeouts;
  size_t max_auth_message = 64 * 1024;

  // Logging (see LogFn): null writes warnings to stderr, nothing else.
  LogFn log;
  // Key log, for decrypting captures of this program's own sessions (like
  // SSLKEYLOGFILE in other libraries): off unless set here. The library
  // never reads the environment for it (the `tcpcrypt` CLI maps the
  // variable TCPCRYPT_KEYLOGFILE onto key_log_file). Whoever holds a line
  // and a capture reads everything inside that session, authentication
  // messages and tickets included: never turn it on in production. Create
  // logs a kWarning naming where keys go when either is set.
  //  - key_log_file: each line is appended to this file, created 0600;
  //    refused (a kWarning, nothing written) when the path is a symbolic
  //    link or the file is not a regular file owned by this process's user
  //    with no group or other access.
  //  - key_log_callback: each line is passed to this function.
  // Only tcpcrypt sessions are logged (not the TLS 1.3 fallback).
  std::string key_log_file;
  KeyLogFn key_log_callback;
};

// ThrottleOptions limits online password guessing on a Server (plans with
// kCmacPassword or kPake, alone or with another mechanism). Each password
// attempt counts as a failure from the client's hello until it succeeds:
// a wrong password, a client that closes, one that stalls until
// timeouts.auth_ms, and one cut off by Stop() all count, and parallel
// attempts are counted before any of them ends. A throttled attempt looks
// like a wrong password to the client (UNAUTHENTICATED); the server counts
// it in ServerStats::throttled. Because a login counts until it succeeds,
// the limits also cap how many logins of one user, or from one address,
// may be in progress at once: raise them for a client that opens many
// connections at the same moment (a pool behind one address).
struct ThrottleOptions {
  // Attempts not yet succeeded in any window_ms (a sliding window), per
  // user name (known or not) and per source: the client's IPv4 address,
  // or its IPv6 /64. Each between 1 and 1024.
  uint32_t max_failures_per_user = 10;
  uint32_t max_failures_per_source = 30;
  uint64_t window_ms = 60000;
  // How many user names and sources are remembered at most (1 to 4194304
  // each); about 160 bytes each plus 8 per failure remembered: 44 MB of
  // heap with both tables full at the defaults. A full table forgets an
  // expired entry first, else the least recently charged of those with the
  // fewest failures: a user at its limit is forgotten only after every
  // other remembered name reached as many failures after it (docs/API.md
  // section 7.1).
  size_t max_tracked_users = 65536;
  size_t max_tracked_sources = 65536;
};

struct ServerOptions {
  Encryption encryption = Encryption::kRequire;
  // Serve TLS 1.3 on the same port (told apart by the first byte), with
  // the certificate and key (cert_file or cert_pem, key_file or key_pem).
  bool accept_tls = false;
  // Certificates and keys, each as a path or in memory, never both: see
  // ClientOptions::ca_file for the rules (PEM or single DER in memory).
  std::string cert_file;  // PEM chain, leaf first (X.509 mechanism and TLS)
  std::string cert_pem;
  std::string key_file;   // PEM private key (ECDSA P-256, Ed25519 or RSA)
  // key_pem: Server::Create parses the key and wipes the library's own
  // copies of these bytes; the application's copy is its own to wipe.
  std::string key_pem;

  // Highest priority first.
  std::vector<KeyExchange> key_exchanges = {KeyExchange::kCurve25519, KeyExchange::kP256,
                                            KeyExchange::kP521};
  std::vector<Aead> aeads = {Aead::kAes128Gcm, Aead::kChaCha20Poly1305, Aead::kAes256Gcm};

  // Acceptable authentication plans, best first; a plan of two runs both in
  // order (for example {kX509, kCmacPassword}: the paper's "signing plus
  // CMAC"). Empty: no authentication.
  std::vector<std::vector<AuthMechanism>> plans;
  // The paper's mandatory application-aware mode: refuse clients that
  // cannot run any plan. If false, they are served unauthenticated.
  bool require_authentication = true;
  std::string users_file;  // SQLite verifier store (tcpcrypt user add ...)
  // The realm password records are looked up under: this server's name as
  // its clients dial it. Empty (the default): the realm each client names
  // (a client's default is the host it dialed), so the server answers to
  // every name the operator enrolled users under (`tcpcrypt user add
  // --realm NAME`) and to no other. When set, a client naming another realm
  // is refused like a wrong password (the local detail names both).
  std::string realm;
  PasswordHashing password_hashing = PasswordHashing::kInteractive;
  std::string client_ca_file;  // ask clients for certificates (mutual X.509)
  std::string client_ca_pem;
  bool issue_tickets = true;
  bool resumption = true;

  // A server ephemeral key pair serves at most this many handshakes, and
  // this long (RFC 8548 §8: "limit the lifetime").
  uint32_t ephemeral_key_max_uses = 1024;
  uint64_t ephemeral_key_max_age_ms = 60000;

  Timeouts timeouts;
  // Limits on password guessing (see ThrottleOptions).
  ThrottleOptions throttle;
  size_t max_pending_handshakes = 4096;
  size_t max_auth_message = 64 * 1024;
  int backlog = 1024;

  // Logging (see LogFn): null writes warnings to stderr, nothing else.
  LogFn log;
  // Key log, for decrypting captures of this program's own sessions (like
  // SSLKEYLOGFILE in other libraries): off unless set here. The library
  // never reads the environment for it (the `tcpcrypt` CLI maps the
  // variable TCPCRYPT_KEYLOGFILE onto key_log_file). Whoever holds a line
  // and a capture reads everything inside that session, authentication
  // messages and tickets included: never turn it on in production. Create
  // logs a kWarning naming where keys go when either is set.
  //  - key_log_file: each line is appended to this file, created 0600;
  //    refused (a kWarning, nothing written) when the path is a symbolic
  //    link or the file is not a regular file owned by this process's user
  //    with no group or other access.
  //  - key_log_callback: each line is passed to this function.
  // Only tcpcrypt sessions are logged (not the TLS 1.3 fallback).
  std::string key_log_file;
  KeyLogFn key_log_callback;
};

// PeerIdentity is what authentication established about the peer.
struct PeerIdentity {
  AuthMechanism mechanism = AuthMechanism::kCmacPassword;
  std::string name;  // user name, or certificate host / subject
  std::map<std::string, std::string> attributes;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_OPTIONS_H_
