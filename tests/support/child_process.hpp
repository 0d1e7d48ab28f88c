#pragma once

// A program running beside the test (a server, socat, curl): its stderr is collected by a thread
// so that the child never blocks on a full pipe, and the test can wait for a line in it. The
// destructor kills and reaps whatever is still running.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace aioloop::testing {

class child_process {
public:
    /// Starts argv[0] (a path) with stdin and stdout from the given fds (-1: /dev/null and a
    /// collected pipe). Check running() for a failed start.
    explicit child_process(std::vector<std::string> argv, int stdin_fd = -1, int stdout_fd = -1);
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process();

    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0 && !status_; }

    /// Waits until stderr contains `needle` (true) or the child exits or time runs out (false).
    bool wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout);
    /// Waits until `needle` occurs `times` times in stderr.
    bool wait_for_stderr_count(const std::string& needle,
                               std::size_t times,
                               std::chrono::milliseconds timeout);
    std::string err() const;
    std::string out() const;

    void signal(int signo) const noexcept;
    /// Waits for the exit; the exit code, or nullopt when killed by a signal or out of time
    /// (then it is killed).
    std::optional<int> wait(std::chrono::milliseconds timeout);
    /// Whether it has exited by now (reaps it if so).
    bool exited();

private:
    void collect(int fd, std::string* into);

    pid_t pid_ = -1;
    std::optional<int> status_;
    mutable std::mutex mutex_;
    std::string err_;
    std::string out_;
    std::vector<std::thread> readers_;
};

/// The port in the first "listening on HOST:PORT" of an aioloop server's log; 0 if none.
std::uint16_t listening_port(const std::string& log);
/// The port of the first "at http://HOST:PORT/" in the log (the metrics line); 0 if none.
std::uint16_t metrics_port(const std::string& log);

/// Raises RLIMIT_NOFILE's soft limit to at least `n` (up to the hard limit); the limit reached.
std::uint64_t raise_fd_limit(std::uint64_t n);

/// Runs `command` with /bin/sh, waits for it, and returns what it wrote to stdout (empty when it
/// could not start): for short tools like curl and sha256sum whose output is the answer.
std::string shell_output(const std::string& command);

} // namespace aioloop::testing
