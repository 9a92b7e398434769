// file_transfer: send one file over an authenticated tcpcrypt session,
// using only the public SDK API (include/tcpcrypt/).
//
//   file_transfer receive --port 7000 --auth pake --users users.db --out received.bin
//   file_transfer send 127.0.0.1 7000 photo.jpg --auth pake --user alice --password-file pw
//
// --auth is one of: none, pake, cmac, x509, x509+cmac. The receiver prints
// who sent the file (the authenticated identity) and the session ID; the
// sender prints the server's identity. The stream's end is authenticated, so
// a truncated transfer is an error, never a short file.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"

namespace {

std::vector<std::vector<tcpcrypt::AuthMechanism>> Plan(const std::string& auth) {
  using M = tcpcrypt::AuthMechanism;
  if (auth == "pake") return {{M::kPake}};
  if (auth == "cmac") return {{M::kCmacPassword}};
  if (auth == "x509") return {{M::kX509}};
  if (auth == "x509+cmac") return {{M::kX509, M::kCmacPassword}};
  return {};
}

// Flag returns the value after --name, or |def|.
std::string Flag(int argc, char** argv, const char* name, const char* def = "") {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return def;
}

int Receive(int argc, char** argv) {
  tcpcrypt::ServerOptions o;
  o.plans = Plan(Flag(argc, argv, "--auth", "none"));
  o.users_file = Flag(argc, argv, "--users");
  o.cert_file = Flag(argc, argv, "--cert");
  o.key_file = Flag(argc, argv, "--key");
  auto server = tcpcrypt::Server::Create(o);
  if (!server.ok()) {
    std::cerr << "file_transfer: " << server.status().ToString() << "\n";
    return 1;
  }
  const int port = std::stoi(Flag(argc, argv, "--port", "7000"));
  if (auto st = server.value()->Listen("0.0.0.0", static_cast<uint16_t>(port)); !st.ok()) {
    std::cerr << "file_transfer: " << st.ToString() << "\n";
    return 1;
  }
  std::cerr << "listening on port " << server.value()->port() << "\n";
  auto session = server.value()->Accept();
  if (!session.ok()) {
    std::cerr << "file_transfer: " << session.status().ToString() << "\n";
    return 1;
  }
  tcpcrypt::Session& s = *session.value();
  std::cerr << "session-id: " << s.session_id_hex()
            << "\nfrom: " << (s.peer() ? s.peer()->name : std::string("(anonymous)")) << "\n";
  std::ofstream out(Flag(argc, argv, "--out", "received.bin"), std::ios::binary);
  std::vector<uint8_t> buf(1 << 16);
  size_t total = 0;
  for (;;) {
    auto n = s.Read(buf);
    if (!n.ok()) {
      std::cerr << "file_transfer: transfer failed: " << n.status().ToString() << "\n";
      return 1;
    }
    if (n.value() == 0) break;  // authenticated end of file
    out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(n.value()));
    total += n.value();
  }
  std::cerr << "received " << total << " bytes\n";
  return 0;
}

int Send(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: file_transfer send HOST PORT FILE [--auth ...]\n";
    return 1;
  }
  tcpcrypt::ClientOptions o;
  const std::string auth = Flag(argc, argv, "--auth", "none");
  for (const auto& plan : Plan(auth)) o.mechanisms = plan;
  o.user = Flag(argc, argv, "--user");
  o.ca_file = Flag(argc, argv, "--ca");
  // Password records made with `tcpcrypt user add --kdf test` need the
  // client's floor lowered to match (never for real users).
  if (Flag(argc, argv, "--kdf-floor") == "test") {
    o.min_password_hashing = tcpcrypt::PasswordHashing::kMinimumForTestsOnly;
  }
  const std::string pw_file = Flag(argc, argv, "--password-file");
  if (!pw_file.empty()) {
    std::ifstream in(pw_file);
    std::string pw;
    std::getline(in, pw);
    o.password = std::make_shared<tcpcrypt::Password>(pw);
  }
  auto client = tcpcrypt::Client::Create(o);
  if (!client.ok()) {
    std::cerr << "file_transfer: " << client.status().ToString() << "\n";
    return 1;
  }
  auto session = client.value()->Connect(argv[2], static_cast<uint16_t>(std::stoi(argv[3])));
  if (!session.ok()) {
    std::cerr << "file_transfer: " << session.status().ToString() << "\n";
    return 1;
  }
  tcpcrypt::Session& s = *session.value();
  std::cerr << "session-id: " << s.session_id_hex() << "\nserver: "
            << (s.peer() ? s.peer()->name : std::string("(not authenticated)")) << "\n";
  std::ifstream in(argv[4], std::ios::binary);
  if (!in) {
    std::cerr << "file_transfer: cannot open " << argv[4] << "\n";
    return 1;
  }
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    if (auto st = s.Write({reinterpret_cast<const uint8_t*>(buf.data()), n}); !st.ok()) {
      std::cerr << "file_transfer: " << st.ToString() << "\n";
      return 1;
    }
  }
  if (auto st = s.Shutdown(); !st.ok()) {
    std::cerr << "file_transfer: " << st.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "receive") == 0) return Receive(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "send") == 0) return Send(argc, argv);
  std::cerr << "usage: file_transfer receive --port P [--auth MECH --users F | --cert C --key K] "
               "[--out FILE]\n       file_transfer send HOST PORT FILE [--auth MECH --user U "
               "--password-file F | --ca CA]\n";
  return 1;
}
