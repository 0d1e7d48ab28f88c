#include <bit>
#include <numeric>

#include <fmt/format.h>

#include <aioloop/stats.hpp>

namespace aioloop {

std::string_view to_string(op_kind kind) noexcept {
    switch (kind) {
    case op_kind::recv:
        return "recv";
    case op_kind::send:
        return "send";
    case op_kind::poll:
        return "poll";
    case op_kind::read_at:
        return "read_at";
    case op_kind::write_at:
        return "write_at";
    }
    return "?";
}

std::string_view to_string(syscall_name name) noexcept {
    static constexpr std::string_view names[syscall_name_count] = {"io_submit",
                                                                   "io_getevents",
                                                                   "io_cancel",
                                                                   "epoll_wait",
                                                                   "epoll_ctl",
                                                                   "io_uring_enter",
                                                                   "read",
                                                                   "write",
                                                                   "accept4",
                                                                   "connect",
                                                                   "other"};
    auto i = static_cast<std::size_t>(name);
    return i < syscall_name_count ? names[i] : "?";
}

std::uint64_t loop_stats::total_syscalls() const noexcept {
    return std::accumulate(syscalls.begin(), syscalls.end(), std::uint64_t{0});
}

void loop_stats::count_batch(std::size_t n) noexcept {
    if (n == 0) {
        return;
    }
    std::size_t bucket = static_cast<std::size_t>(std::bit_width(n)) - 1;
    ++batch_sizes[bucket < batch_buckets ? bucket : batch_buckets - 1];
}

loop_stats& loop_stats::operator+=(const loop_stats& other) noexcept {
    turns += other.turns;
    blocking_waits += other.blocking_waits;
    for (std::size_t i = 0; i < op_kind_count; ++i) {
        ops_started[i] += other.ops_started[i];
        ops_completed[i] += other.ops_completed[i];
    }
    for (std::size_t i = 0; i < syscall_name_count; ++i) {
        syscalls[i] += other.syscalls[i];
    }
    iocbs_submitted += other.iocbs_submitted;
    events_from_ring += other.events_from_ring;
    events_from_syscall += other.events_from_syscall;
    eagain += other.eagain;
    cancels += other.cancels;
    stale_completions += other.stale_completions;
    timers_fired += other.timers_fired;
    longest_turn_ns = std::max(longest_turn_ns, other.longest_turn_ns);
    for (std::size_t i = 0; i < batch_buckets; ++i) {
        batch_sizes[i] += other.batch_sizes[i];
    }
    return *this;
}

std::string format_stats(const loop_stats& s) {
    std::string out;
    auto line = [&out](std::string_view name, std::uint64_t value) {
        out += fmt::format("{:<24} {}\n", name, value);
    };
    line("turns", s.turns);
    line("blocking_waits", s.blocking_waits);
    for (std::size_t i = 0; i < op_kind_count; ++i) {
        if (s.ops_started[i] != 0) {
            line(fmt::format("ops_{}", to_string(static_cast<op_kind>(i))), s.ops_started[i]);
        }
    }
    line("syscalls_total", s.total_syscalls());
    for (std::size_t i = 0; i < syscall_name_count; ++i) {
        if (s.syscalls[i] != 0) {
            line(fmt::format("syscall_{}", to_string(static_cast<syscall_name>(i))), s.syscalls[i]);
        }
    }
    line("iocbs_submitted", s.iocbs_submitted);
    line("events_from_ring", s.events_from_ring);
    line("events_from_syscall", s.events_from_syscall);
    line("eagain", s.eagain);
    line("cancels", s.cancels);
    line("stale_completions", s.stale_completions);
    line("timers_fired", s.timers_fired);
    line("longest_turn_us", s.longest_turn_ns / 1000);
    for (std::size_t i = 0; i < batch_buckets; ++i) {
        if (s.batch_sizes[i] == 0) {
            continue;
        }
        std::size_t low = std::size_t{1} << i;
        std::string range = i + 1 == batch_buckets ? fmt::format("{}+", low)
                                                   : fmt::format("{}-{}", low, (low << 1) - 1);
        line(fmt::format("batch[{}]", range), s.batch_sizes[i]);
    }
    return out;
}

} // namespace aioloop
