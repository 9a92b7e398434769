// Shared pieces of the benchmark programs in bench/: CPU accounting,
// pinning, loopback sockets, the test PKI and the machine description that
// every JSON report carries. Not part of the SDK.
#ifndef TCPCRYPT_BENCH_HARNESS_H_
#define TCPCRYPT_BENCH_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// GCC 12 reports a false "potential null pointer dereference" inside
// std::string code that CLI11's header instantiates (as in sdk/cli/main.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include "auth/x509_batch/test_pki.h"

namespace tcpcrypt::bench {

// User + system CPU time of this process (all threads), in microseconds.
double CpuMicros();
// Number of CPUs this process may run on.
int AllowedCpus();
// Pins the calling process to |cpu|; false if the kernel refused.
bool PinTo(int cpu);

// Blocking full reads and writes; false on error or end of stream.
bool WriteFull(int fd, const void* data, size_t n);
bool ReadFull(int fd, void* data, size_t n);

// close() then sends an RST instead of entering TIME_WAIT.
void SetLingerZero(int fd);
void SetNoDelay(int fd);

// A listening socket on 127.0.0.1 with a kernel-chosen port (backlog 1024).
int ListenLoopback(uint16_t* out_port);
// A connected TCP_NODELAY socket to 127.0.0.1:|port|, or -1.
int ConnectLoopback(uint16_t port);

// An ECDSA P-256 root CA and a leaf for 127.0.0.1 / localhost, made before
// fork() so both processes share it.
struct Pki {
  auth::x509::KeyAndCert ca;
  auth::x509::KeyAndCert leaf;
};
std::optional<Pki> MakePki(std::string* error);

// printf("%.*f").
std::string Fmt(double v, int prec);
// Kernel, CPUs, pinning, load average and OpenSSL version, for reports.
std::string MachineNote(bool pinned, int allowed_cpus);

// --- Command line (CLI11) ---------------------------------------------------

// The options every benchmark program has. Set json_path to the program's
// default report file before AddCommonOptions.
struct CommonOptions {
  std::string mode = "quick";  // "quick" or "full"
  std::string json_path;
  std::string md_path;
  std::vector<std::string> rows;  // empty: every row
};

// Checks a row name with |row_exists|; the error names the row and points
// at `PROGRAM list` (PROGRAM = |program|).
CLI::Validator RowValidator(std::function<bool(const std::string&)> row_exists,
                            const std::string& program);
// --quick and --full on |app| (mutually exclusive), setting *mode.
void AddModeFlags(CLI::App& app, std::string* mode);
// AddModeFlags plus --json FILE, --md FILE and --rows a,b,... (each row
// checked with |row_exists|).
void AddCommonOptions(CLI::App& app, CommonOptions* o,
                      std::function<bool(const std::string&)> row_exists);
// The row of |rows| called |name|, or nullptr. Row has a std::string name.
template <typename Row>
const Row* FindRowIn(const std::vector<Row>& rows, const std::string& name) {
  for (const Row& r : rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}
// The subcommand `list`: once the command line is parsed, runs |print| and
// makes ParseCommandLine return 0. Allows at most one subcommand on |app|.
void AddListCommand(CLI::App& app, std::function<void()> print);
// The same, printing "name<TAB>description" for each of |rows| (which must
// outlive the parse).
template <typename Row>
void AddListCommand(CLI::App& app, const std::vector<Row>& rows) {
  AddListCommand(app, [&rows] {
    for (const Row& r : rows) std::printf("%s\t%s\n", r.name.c_str(), r.description.c_str());
  });
}
// Whether |row| is to run (opts.rows empty, or naming it).
bool RowSelected(const CommonOptions& o, const std::string& row);
// Writes |json| (plus a newline) to o.json_path and |md| to o.md_path, each
// unless the path is empty; says on stderr when it cannot.
void WriteReports(const CommonOptions& o, const std::string& json, const std::string& md);
// app.parse(argc, argv): nullopt to go on, else the exit code (0 after
// --help, 2 after a usage error, which it has printed).
std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv);

}  // namespace tcpcrypt::bench

#endif  // TCPCRYPT_BENCH_HARNESS_H_
