#include "bench/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

namespace tcpcrypt::bench {

namespace x509 = auth::x509;

double CpuMicros() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

int AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return CPU_COUNT(&set);
}

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

bool WriteFull(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadFull(int fd, void* data, size_t n) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void SetLingerZero(int fd) {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

void SetNoDelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// --- Plain sockets ----------------------------------------------------------

int ListenLoopback(uint16_t* out_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 1024) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *out_port = ntohs(a.sin_port);
  return fd;
}

int ConnectLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  SetNoDelay(fd);
  return fd;
}

std::optional<Pki> MakePki(std::string* error) {
  x509::CertOptions ca_opts;
  ca_opts.common_name = "setup_bench CA";
  ca_opts.key_type = x509::PkiKeyType::kEcdsaP256;
  auto ca = x509::CreateRootCa(ca_opts, error);
  if (!ca) return std::nullopt;
  x509::CertOptions leaf_opts;
  leaf_opts.common_name = "127.0.0.1";
  leaf_opts.ip_addresses = {"127.0.0.1"};
  leaf_opts.dns_names = {"localhost"};
  leaf_opts.key_type = x509::PkiKeyType::kEcdsaP256;
  auto leaf = x509::IssueCertificate(*ca, leaf_opts, error);
  if (!leaf) return std::nullopt;
  return Pki{*ca, *leaf};
}

std::string Fmt(double v, int prec) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", prec, v);
  return buf;
}

std::string MachineNote(bool pinned, int allowed_cpus) {
  utsname u{};
  uname(&u);
  double load[3] = {0, 0, 0};
  (void)getloadavg(load, 3);
  std::ostringstream os;
  os << u.sysname << " " << u.release << " " << u.machine << ", " << allowed_cpus
     << " CPUs allowed, " << (pinned ? "client pinned to CPU 0 / server to CPU 1"
                                      : "not pinned (fewer than 2 CPUs)")
     << ", loadavg " << Fmt(load[0], 2) << " " << Fmt(load[1], 2) << " " << Fmt(load[2], 2)
     << ", " << OpenSSL_version(OPENSSL_VERSION);
  return os.str();
}

// --- Command line ------------------------------------------------------------

CLI::Validator RowValidator(std::function<bool(const std::string&)> row_exists,
                            const std::string& program) {
  return CLI::Validator(
      [row_exists = std::move(row_exists), program](std::string& name) -> std::string {
        if (row_exists(name)) return {};
        return "unknown row \"" + name + "\" (see `" + program + " list`)";
      },
      "");
}

void AddModeFlags(CLI::App& app, std::string* mode) {
  CLI::Option* quick = app.add_flag_callback(
      "--quick", [mode] { *mode = "quick"; }, "Quick run (the default)");
  CLI::Option* full = app.add_flag_callback(
      "--full", [mode] { *mode = "full"; }, "Full run: longer, more samples");
  quick->excludes(full);
}

void AddCommonOptions(CLI::App& app, CommonOptions* o,
                      std::function<bool(const std::string&)> row_exists) {
  AddModeFlags(app, &o->mode);
  app.add_option("--json", o->json_path, "Write the results as JSON to FILE")
      ->type_name("FILE")
      ->capture_default_str();
  app.add_option("--md", o->md_path, "Also write the Markdown tables to FILE")
      ->type_name("FILE");
  app.add_option("--rows", o->rows,
                 "Run only these rows, comma-separated (default: all; see `list`)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->type_name("ROW,ROW")
      ->check(RowValidator(std::move(row_exists), app.get_name()));
}

void AddListCommand(CLI::App& app, std::function<void()> print) {
  app.add_subcommand("list", "Print the row names and exit")->callback([print = std::move(print)] {
    print();
    throw CLI::Success();
  });
  app.require_subcommand(0, 1);
}

bool RowSelected(const CommonOptions& o, const std::string& row) {
  return o.rows.empty() || std::find(o.rows.begin(), o.rows.end(), row) != o.rows.end();
}

void WriteReports(const CommonOptions& o, const std::string& json, const std::string& md) {
  auto write = [](const std::string& path, const std::string& text) {
    if (path.empty()) return;
    std::ofstream f(path);
    f << text;
    if (!f) std::fprintf(stderr, "cannot write %s\n", path.c_str());
  };
  write(o.json_path, json + "\n");
  write(o.md_path, md);
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace tcpcrypt::bench
