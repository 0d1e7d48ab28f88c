#pragma once

// What a loop did: turns, operations by kind, system calls by name, and the AIO figures that show
// whether batching worked (iocbs per io_submit, events read from the ring).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aioloop {

/// The kinds of operation a loop hands to its backend.
enum class op_kind : std::uint8_t {
    recv,     ///< read from a socket, up to len bytes; 0 is end of stream
    send,     ///< write to a socket: the whole buffer, or an error
    poll,     ///< wait until the fd is ready for `events` (POLLIN, POLLOUT...); result is revents
    read_at,  ///< read from a file at an offset
    write_at, ///< write to a file at an offset
};
inline constexpr std::size_t op_kind_count = 5;
std::string_view to_string(op_kind kind) noexcept;

/// The system calls a loop makes, by name, as counted by the loop itself.
enum class syscall_name : std::uint8_t {
    io_submit,
    io_getevents,
    io_cancel,
    epoll_wait,
    epoll_ctl,
    io_uring_enter,
    read,
    write,
    accept4,
    connect,
    other,
};
inline constexpr std::size_t syscall_name_count = 11;
std::string_view to_string(syscall_name name) noexcept;

inline constexpr std::size_t batch_buckets = 16;

struct loop_stats {
    std::uint64_t turns = 0;          ///< passes through the loop
    std::uint64_t blocking_waits = 0; ///< turns that slept in the kernel
    std::array<std::uint64_t, op_kind_count> ops_started{};
    std::array<std::uint64_t, op_kind_count> ops_completed{};
    std::array<std::uint64_t, syscall_name_count> syscalls{};
    std::uint64_t iocbs_submitted = 0;     ///< iocbs or SQEs handed to the kernel
    std::uint64_t events_from_ring = 0;    ///< completions read in user space
    std::uint64_t events_from_syscall = 0; ///< completions returned by a system call
    std::uint64_t eagain = 0;              ///< reads or writes the kernel answered with EAGAIN
    std::uint64_t cancels = 0;             ///< cancellations requested
    std::uint64_t stale_completions = 0;   ///< completions for a record already reused (a bug)
    std::uint64_t timers_fired = 0;
    std::uint64_t longest_turn_ns = 0; ///< the longest time spent running callbacks in one turn
    /// iocbs (or SQEs) per submission: bucket k counts batches of [2^k, 2^(k+1)).
    std::array<std::uint64_t, batch_buckets> batch_sizes{};

    void count(syscall_name name, std::uint64_t n = 1) noexcept {
        syscalls[static_cast<std::size_t>(name)] += n;
    }
    std::uint64_t total_syscalls() const noexcept;
    /// Records one submission of `n` >= 1 iocbs or SQEs.
    void count_batch(std::size_t n) noexcept;
    loop_stats& operator+=(const loop_stats& other) noexcept;
};

/// One `name value` per line, for --stats and SIGUSR1.
std::string format_stats(const loop_stats& stats);

} // namespace aioloop
