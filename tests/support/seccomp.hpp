#pragma once

// Runs code in a forked child under a seccomp filter (libseccomp) that makes chosen system calls
// fail with a chosen errno and allows everything else: the way Docker's default profile refuses
// io_uring_setup with EPERM, or an old profile refused io_pgetevents. Tests of the probe and of the
// loop's backend fallback use it to see the real kernel answer a refused call.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace aioloop::testing {

/// One refused system call: `syscall` (a SYS_* number) fails with `errno_value`.
struct seccomp_refusal {
    int syscall;
    int errno_value;
};

/// How a child ended and what it wrote.
struct child_result {
    bool exited = false;    ///< ended by exit/_exit (then exit_code is valid)
    int exit_code = -1;     ///< exit status when exited
    int signal = 0;         ///< the signal that killed it, when it didn't exit
    bool timed_out = false; ///< killed with SIGKILL after the timeout
    std::string out;        ///< captured stdout
    std::string err;        ///< captured stderr

    /// Exited with status 0.
    bool ok() const noexcept { return exited && exit_code == 0; }
    /// One line for test failure messages: how it ended, and its stderr.
    std::string describe() const;
};

inline constexpr std::chrono::milliseconds default_child_timeout{20'000};

/// Forks; the child installs the filter, runs `body` and exits with its return value (127 when
/// the filter can't be installed, 126 when `body` throws). stdout and stderr are captured.
child_result run_in_child_with_seccomp(std::vector<seccomp_refusal> refusals,
                                       std::function<int()> body,
                                       std::chrono::milliseconds timeout = default_child_timeout);

/// The same with every call in `syscalls` failing with the same `errno_value`.
child_result run_in_child_with_seccomp(const std::vector<int>& syscalls,
                                       int errno_value,
                                       std::function<int()> body,
                                       std::chrono::milliseconds timeout = default_child_timeout);

/// Forks; the child installs the filter and execs argv (argv[0] a path). The filter survives
/// execve, so the program runs under it; exit code 127 when it can't start.
child_result exec_with_seccomp(std::vector<seccomp_refusal> refusals,
                               const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout = default_child_timeout);

/// The same with every call in `syscalls` failing with the same `errno_value`.
child_result exec_with_seccomp(const std::vector<int>& syscalls,
                               int errno_value,
                               const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout = default_child_timeout);

} // namespace aioloop::testing
