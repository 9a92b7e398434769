// Shared pieces of the benchmark programs in bench/: CPU accounting,
// pinning, loopback sockets, the test PKI and the machine description that
// every JSON report carries. Not part of the SDK.
#ifndef TCPCRYPT_BENCH_HARNESS_H_
#define TCPCRYPT_BENCH_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace tcpcrypt::bench

#endif  // TCPCRYPT_BENCH_HARNESS_H_
