#pragma once

// The bench's measured window: it opens when every connection is up (the load's on_start) and
// closes at the load's deadline, timed by a thread of its own, so that neither the connection
// setup nor the closing of thousands of connections after the deadline is counted. Over it: the
// server's system calls, its CPU time, and how busy each of the two pinned cores was.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>

#include <sys/types.h>

#include <aioloop/apps/bench.hpp>
#include <aioloop/loop.hpp>

namespace aioloop::apps::detail {

/// Jiffies of one core from /proc/stat: busy (user, nice, system, irq, softirq, steal), softirq
/// alone, and all (busy, idle and iowait).
struct core_times {
    std::uint64_t busy = 0;
    std::uint64_t softirq = 0;
    std::uint64_t total = 0;
};

/// Cores 0 and 1 (the server's and the load generator's with --pin); nullopt if unreadable.
std::optional<std::array<core_times, 2>> read_core_times();

/// How long the threads of `pid` (or the one thread `tid` of it) have waited, runnable, for a
/// CPU: the second field of /proc/PID/task/TID/schedstat, in ns; nullopt if unreadable.
std::optional<std::uint64_t> run_delay_ns(pid_t pid, pid_t tid = 0);

class window_meter {
public:
    /// `upstream`: a process of the bench's own behind the server (proxy), whose CPU time over
    /// the window is measured too; 0 for none.
    window_meter(syscall_counter& counter,
                 pid_t pid,
                 std::chrono::milliseconds length,
                 pid_t upstream = 0)
        : counter_(counter)
        , pid_(pid)
        , upstream_(upstream)
        , length_(length) {}

    /// Opens the window (the load's on_start, on the client's thread).
    void start() noexcept;
    /// Closes it at its deadline, or at once if `stop` comes first (the load ended early).
    void run(std::stop_token stop);

    bool started() const noexcept { return started_; }
    double seconds() const noexcept;
    /// The server's CPU time over the window.
    std::optional<std::uint64_t> cpu_ns() const noexcept;
    /// How busy core `core` (0 or 1) was, and in softirq alone, in percent; nullopt if unknown.
    std::optional<double> core_busy_percent(unsigned core) const noexcept;
    std::optional<double> core_softirq_percent(unsigned core) const noexcept;
    /// The share of the window the server's threads (summed) and the client's thread spent
    /// runnable but waiting for a CPU, percent: time that other processes took from them.
    std::optional<double> server_wait_percent() const noexcept;
    std::optional<double> client_wait_percent() const noexcept;
    /// The upstream's CPU time over the window as a share of it, percent; nullopt if none.
    std::optional<double> upstream_cpu_percent() const noexcept;

private:
    syscall_counter& counter_;
    pid_t pid_;
    pid_t upstream_;
    std::chrono::milliseconds length_;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    bool started_ = false;
    clock::time_point t0_, t1_;
    std::optional<std::uint64_t> cpu0_, cpu1_, upstream_cpu0_, upstream_cpu1_;
    std::optional<std::array<core_times, 2>> cores0_, cores1_;
    pid_t client_tid_ = 0;
    std::optional<std::uint64_t> server_wait0_, server_wait1_, client_wait0_, client_wait1_;
};

} // namespace aioloop::apps::detail
