#pragma once

// A server program run under a seccomp filter until it says where it listens, then stopped with
// SIGTERM: for checking what a server prints when the filter refuses a backend's system calls.
// (seccomp.hpp's exec_with_seccomp waits for the program to exit by itself, which a server
// never does.)

#include <chrono>
#include <string>
#include <vector>

#include "support/seccomp.hpp"

namespace aioloop::testing {

struct seccomp_server_result {
    bool listened = false; ///< "listening on" appeared on stderr before the deadline
    int exit_code = -1;    ///< after SIGTERM; -1 when killed or not exited
    std::string err;       ///< all of stderr
};

/// Forks; the child installs the filter and execs argv (argv[0] a path). Waits up to `timeout`
/// for "listening on" on its stderr, sends SIGTERM, and collects the rest until it exits (or
/// kills it when `timeout` runs out).
seccomp_server_result run_server_with_seccomp(const std::vector<seccomp_refusal>& refusals,
                                              const std::vector<std::string>& argv,
                                              std::chrono::milliseconds timeout);

} // namespace aioloop::testing
