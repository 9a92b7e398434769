// cli_run.h: running the built `tcpcrypt` tool from a test and capturing
// what it prints (shared by the CLI integration tests).
#ifndef TCPCRYPT_TESTS_INTEGRATION_CLI_RUN_H_
#define TCPCRYPT_TESTS_INTEGRATION_CLI_RUN_H_

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace tcpcrypt::testing {

// Ran is a finished command: its exit code (-1 if it did not exit
// normally) and everything it printed.
struct Ran {
  int code = -1;
  std::string out;
};

// RunShell runs |cmd| through /bin/sh and collects its standard output
// (callers join stderr with "2>&1" when they want it).
inline Ran RunShell(const std::string& cmd) {
  Ran r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace tcpcrypt::testing

#endif  // TCPCRYPT_TESTS_INTEGRATION_CLI_RUN_H_
